// The native API through the `ollama` npm client, as applications use it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { startServer, DEMO_GGUF } from './helpers.mjs';

let srv, ollama;
before(async () => {
  srv = await startServer();
  ollama = new Ollama({ host: srv.url });
});
after(async () => { await srv?.stop(); });

const greedy = { temperature: 0, num_predict: 12 };

test('the demo model is in the store on first start', async () => {
  const { models } = await ollama.list();
  const demo = models.find((m) => m.name === 'demo:latest');
  assert.ok(demo, JSON.stringify(models));
  assert.equal(demo.details.family, 'qwen2');
  assert.equal(demo.details.quantization_level, 'Q8_0');
  assert.match(demo.digest, /^[0-9a-f]{64}$/);
  assert.ok(demo.size > 10e6);
});

test('chat, not streamed, reports the context it used', async () => {
  const r = await ollama.chat({ model: 'demo', messages: [{ role: 'user', content: 'Hello there' }], options: greedy });
  assert.equal(r.message.role, 'assistant');
  assert.ok(r.message.content.length > 0);
  assert.equal(r.done, true);
  assert.equal(r.done_reason, 'length');
  assert.equal(r.eval_count, 12);
  assert.ok(r.prompt_eval_count > 5);
  assert.equal(r.context_length, 4096);
  assert.equal(r.context_max, 32768);
  assert.equal(r.prompt_tokens, r.prompt_eval_count);
  assert.ok(r.request_id);
  assert.ok(r.total_duration >= r.eval_duration);
});

test('chat streamed: pieces concatenate to the non-streamed answer', async () => {
  const messages = [{ role: 'user', content: 'Tell me about bellows.' }];
  const whole = await ollama.chat({ model: 'demo', messages, options: greedy });
  const stream = await ollama.chat({ model: 'demo', messages, options: greedy, stream: true });
  let text = '', last;
  for await (const part of stream) { text += part.message.content; last = part; }
  assert.equal(text, whole.message.content);
  assert.equal(last.done, true);
  assert.equal(last.eval_count, 12);
  assert.ok(last.prompt_cache_tokens > 0, 'the second identical prompt reuses the prefix cache');
});

test('generate, streamed and not, with a system override and raw mode', async () => {
  const a = await ollama.generate({ model: 'demo', prompt: 'Why is the sky blue?', options: greedy });
  assert.ok(a.response.length > 0);
  assert.equal(a.done, true);
  let text = '';
  for await (const p of await ollama.generate({ model: 'demo', prompt: 'Why is the sky blue?', options: greedy, stream: true })) text += p.response;
  assert.equal(text, a.response);
  // The demo's template (Qwen2's) puts its own default system prompt in when there is none:
  // the request's system replaces it, so check what the model sees rather than a count.
  const sys = await ollama.generate({ model: 'demo', prompt: 'Why is the sky blue?', system: 'Answer in French.', options: greedy });
  assert.ok(sys.prompt_eval_count > 0);
  const seen = await (await fetch(`${srv.url}/api/generate`, {
    method: 'POST',
    body: JSON.stringify({ model: 'demo', prompt: 'Why is the sky blue?', system: 'Answer in French.', _debug_render_only: true }),
  })).json();
  assert.match(seen.debug_info.rendered_prompt, /^<\|im_start\|>system\nAnswer in French\.<\|im_end\|>\n<\|im_start\|>user\nWhy is the sky blue\?/,
    'the system message is part of the prompt, in place of the template\'s default');
  const raw = await ollama.generate({ model: 'demo', prompt: 'The sky is', raw: true, options: greedy });
  assert.ok(raw.prompt_eval_count < 6, 'raw prompts are not templated');
});

test('an empty generate loads the model; keep_alive 0 unloads it', async () => {
  const load = await ollama.generate({ model: 'demo', prompt: '' });
  assert.equal(load.done_reason, 'load');
  let ps = await ollama.ps();
  assert.ok(ps.models.some((m) => m.name === 'demo:latest'));
  const unload = await ollama.generate({ model: 'demo', prompt: '', keep_alive: 0 });
  assert.equal(unload.done_reason, 'unload');
  for (let i = 0; i < 50; i++) {
    ps = await ollama.ps();
    if (!ps.models.length) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(ps.models.length, 0);
});

test('embed and legacy embeddings', async () => {
  const e = await ollama.embed({ model: 'demo', input: ['first text', 'second text'] });
  assert.equal(e.embeddings.length, 2);
  assert.equal(e.embeddings[0].length, 256); // the demo's n_embd
  assert.notDeepEqual(e.embeddings[0], e.embeddings[1]);
  const legacy = await ollama.embeddings({ model: 'demo', prompt: 'first text' });
  assert.equal(legacy.embedding.length, 256);
  // /api/embed normalizes (as Ollama does), the legacy route returns the raw vector: same direction.
  const n = Math.sqrt(legacy.embedding.reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(legacy.embedding[0] / n - e.embeddings[0][0]) < 1e-5);
});

test('show reads GGUF metadata', async () => {
  const s = await ollama.show({ model: 'demo' });
  assert.equal(s.details.family, 'qwen2');
  assert.equal(s.model_info['general.architecture'], 'qwen2');
  assert.equal(s.model_info['qwen2.context_length'], 32768);
  assert.ok(s.capabilities.includes('completion'));
  assert.match(s.template, /im_start/);
  assert.match(s.parameters, /stop/);
});

test('ps shows the runner and its context pool', async () => {
  await ollama.chat({ model: 'demo', messages: [{ role: 'user', content: 'Hi' }], options: greedy });
  const { models } = await ollama.ps();
  const m = models.find((x) => x.name === 'demo:latest');
  assert.ok(m);
  assert.ok(m.runner_pid > 0);
  assert.equal(m.context.pool_tokens, 4096);
  assert.equal(m.context.num_parallel, 4);
  assert.ok(m.context.used_tokens > 0);
});

test('create from an uploaded blob (files) and from another model, with parameters and system; copy; delete', async () => {
  // ollama-js has no blob upload: applications POST /api/blobs/<digest> themselves
  const bytes = readFileSync(DEMO_GGUF);
  const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
  assert.equal((await fetch(`${srv.url}/api/blobs/${digest}`, { method: 'HEAD' })).status, 200, 'the demo blob is there already');
  const wrong = await fetch(`${srv.url}/api/blobs/sha256:${'0'.repeat(64)}`, { method: 'POST', body: bytes.subarray(0, 1000) });
  assert.equal(wrong.status, 400);
  let statuses = [];
  for await (const p of await ollama.create({ model: 'mine', files: { 'demo.gguf': digest }, system: 'You are terse.', parameters: { temperature: 0.1, stop: ['END'] }, stream: true })) statuses.push(p.status);
  assert.equal(statuses.at(-1), 'success');
  let s = await ollama.show({ model: 'mine' });
  assert.equal(s.system, 'You are terse.');
  assert.match(s.parameters, /temperature\s+0.1/);
  const derived = await ollama.create({ model: 'mine-derived', from: 'mine', system: 'Another system.' });
  assert.equal(derived.status, 'success');
  s = await ollama.show({ model: 'mine-derived' });
  assert.equal(s.system, 'Another system.');
  assert.match(s.parameters, /temperature/, 'parameters are inherited');
  await ollama.copy({ source: 'mine', destination: 'mine-copy:v2' });
  let names = (await ollama.list()).models.map((m) => m.name);
  assert.ok(names.includes('mine:latest') && names.includes('mine-copy:v2'));
  await ollama.delete({ model: 'mine' });
  names = (await ollama.list()).models.map((m) => m.name);
  assert.ok(!names.includes('mine:latest'));
  const chat = await ollama.chat({ model: 'mine-copy:v2', messages: [{ role: 'user', content: 'x' }], options: { num_predict: 3 } });
  assert.equal(chat.done, true);
  await assert.rejects(ollama.show({ model: 'mine' }), /not found/);
  await assert.rejects(ollama.delete({ model: 'mine' }), /not found/);
});

test('create from a local GGUF path (what `bellows create` sends) streams progress', async () => {
  const r = await fetch(`${srv.url}/api/create`, { method: 'POST', body: JSON.stringify({ model: 'frompath', from: DEMO_GGUF }) });
  assert.equal(r.status, 200);
  const lines = (await r.text()).trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.at(-1).status, 'success');
  assert.ok(lines.some((l) => l.total > 0 && l.completed === l.total), JSON.stringify(lines));
  assert.ok((await ollama.list()).models.some((m) => m.name === 'frompath:latest'));
});

test('format "json" constrains the answer to JSON; a schema too (structured.test.mjs has more)', async () => {
  let complete = 0;
  for (let seed = 1; seed <= 4; seed++) {
    const r = await ollama.generate({ model: 'demo', prompt: 'Give me JSON', format: 'json', options: { seed, num_predict: 200 } });
    assert.equal(r.response.trimStart()[0], '{', JSON.stringify(r.response.slice(0, 40)));
    if (r.done_reason === 'stop') {
      JSON.parse(r.response); // an answer that ended by itself is a whole JSON object
      complete++;
    }
  }
  assert.ok(complete >= 1, 'at least one answer closed its object');
  const r = await ollama.generate({ model: 'demo', prompt: 'x', format: { type: 'object', properties: { ok: { type: 'boolean' } },
    required: ['ok'], additionalProperties: false }, options: { num_predict: 64 } });
  assert.equal(typeof JSON.parse(r.response).ok, 'boolean');
});
