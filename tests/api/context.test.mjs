// The context policy through the HTTP API: spec/context.md's worked values, read from
// `context_length` in final responses; the named tests of the plan this project grew out of.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { startServer, post, CTX4K_GGUF, DEMO_GGUF } from './helpers.mjs';

let srv, ollama;
before(async () => {
  srv = await startServer();
  ollama = new Ollama({ host: srv.url });
  // Models without PARAMETER layers: the demo model's defaults (num_predict) would change R.
  await createPlain(srv.url);
  const c = await post(srv.url, '/api/create', { model: 'ctx4k', from: CTX4K_GGUF, stream: false });
  assert.equal(c.status, 200, await c.text());
});
after(async () => { await srv?.stop(); });

// A prompt of exactly n tokens after templating is hard to hit by text; the spec's values
// are about L, so each case asks the server to render only and reads L and D back, then
// runs the same request for real where generation matters.
const words = (n) => Array.from({ length: n }, (_, i) => `w${i % 10}`).join(' ');

async function renderChat(model, content, options = {}) {
  const r = await post(srv.url, '/api/chat', { model, messages: [{ role: 'user', content }], options, _debug_render_only: true });
  assert.equal(r.status, 200);
  return (await r.json()).debug_info;
}

async function renderGenerate(model, prompt, options = {}, extra = {}) {
  const r = await post(srv.url, '/api/generate', { model, prompt, options, _debug_render_only: true, ...extra });
  assert.equal(r.status, 200);
  return (await r.json()).debug_info;
}

async function createPlain(url) {
  const r = await post(url, '/api/create', { model: 'plain', from: DEMO_GGUF, stream: false });
  assert.equal(r.status, 200, await r.text());
}

const D = (L, R, cmax) => Math.min(cmax, Math.max(4096, Math.ceil((L + R) / 1024) * 1024));

test('dynamic_num_ctx_calculation: the worked values of spec/context.md through /api/chat', async () => {
  // L=1-ish (the smallest chat) -> 4096
  let d = await renderChat('plain', 'hi');
  assert.equal(d.context_length, 4096);
  assert.equal(d.context_max, 32768);
  // short prompt, num_predict 512 -> 4096
  d = await renderChat('plain', 'hello there', { num_predict: 512 });
  assert.equal(d.context_length, 4096);
  // long prompts: D follows L + R with R = L
  for (const n of [1100, 1600, 5200, 11000]) {
    d = await renderChat('plain', words(n));
    assert.equal(d.context_length, D(d.prompt_tokens, d.prompt_tokens, 32768), `L=${d.prompt_tokens}`);
  }
  // num_predict 8000 with a short prompt: R = 8000
  d = await renderChat('plain', words(50), { num_predict: 8000 });
  assert.equal(d.context_length, D(d.prompt_tokens, 8000, 32768));
  assert.ok(d.context_length >= 9216 - 1024 && d.context_length <= 9216);
  // capped at the model maximum
  d = await renderChat('plain', words(12000));
  assert.ok(d.prompt_tokens > 16384);
  assert.equal(d.context_length, 32768);
  // a client's num_ctx is ignored for sizing, small or huge
  assert.equal((await renderChat('plain', 'hi', { num_ctx: 2048 })).context_length, 4096);
  assert.equal((await renderChat('plain', 'hi', { num_ctx: 131072 })).context_length, 4096);
});

test('dynamic_num_ctx_generate_handler: the same through /api/generate, plus the ctx4k model and the operator cap', async () => {
  const r = await ollama.generate({ model: 'plain', prompt: 'hi', options: { num_predict: 4, num_ctx: 2048 } });
  assert.equal(r.context_length, 4096);
  assert.equal(r.context_max, 32768);
  let d = await renderGenerate('plain', words(1600));
  assert.equal(d.context_length, D(d.prompt_tokens, d.prompt_tokens, 32768));
  // model maximum 4096: L=~3000 -> 4096
  d = await renderGenerate('ctx4k', words(1500));
  assert.ok(d.prompt_tokens >= 2900, `L=${d.prompt_tokens}`);
  assert.equal(d.context_length, 4096);
  assert.equal(d.context_max, 4096);
  // the operator's cap
  const capped = await startServer({ BELLOWS_CONTEXT_LENGTH: '8192' });
  try {
    await createPlain(capped.url);
    const r2 = await post(capped.url, '/api/generate', { model: 'plain', prompt: words(5000), _debug_render_only: true });
    const d2 = (await r2.json()).debug_info;
    assert.ok(d2.prompt_tokens >= 9000);
    assert.equal(d2.context_max, 8192);
    assert.equal(d2.context_length, 8192);
  } finally { await capped.stop(); }
});

test('num_ctx_not_scaled_by_num_parallel: one request on num_parallel=4 allocates about D', async () => {
  const r = await ollama.chat({ model: 'plain', messages: [{ role: 'user', content: 'one word' }], options: { num_predict: 4 } });
  assert.equal(r.context_length, 4096);
  const { models } = await ollama.ps();
  const m = models.find((x) => x.name === 'plain:latest');
  assert.equal(m.context.num_parallel, 4);
  assert.ok(m.context.pool_tokens < 2 * r.context_length, `pool ${m.context.pool_tokens}`);
});

test('requests_same_model_same_request: different num_ctx, concurrent then sequential, one runner and one load', async () => {
  const s = await startServer();
  try {
    await createPlain(s.url);
    const c = new Ollama({ host: s.url });
    const ask = (num_ctx) => c.chat({ model: 'plain', messages: [{ role: 'user', content: `ctx ${num_ctx}` }], options: { num_ctx, num_predict: 8 } });
    await Promise.all([ask(1024), ask(16384)]);
    const pid = (await c.ps()).models[0].runner_pid;
    await ask(2048);
    await ask(65536);
    const { models } = await c.ps();
    assert.equal(models.length, 1);
    assert.equal(models[0].runner_pid, pid);
    assert.equal(models[0].loads, 1);
  } finally { await s.stop(); }
});

test('elastic_growth_same_tokens: a pool that grows answers like one that did not', async () => {
  // Same conversation on two servers: one whose first request fixes a large pool, one
  // that starts at 4096 and grows.
  const big = await startServer();
  try {
    await createPlain(big.url);
    const cb = new Ollama({ host: big.url });
    const warm = await cb.chat({ model: 'plain', messages: [{ role: 'user', content: words(9000) }], options: { num_predict: 1, temperature: 0 } });
    assert.ok(warm.context_length > 16384);
    const history = [{ role: 'user', content: 'Tell me a story.' }];
    const t1 = await ollama.chat({ model: 'plain', messages: history, options: { temperature: 0, num_predict: 30 } });
    const b1 = await cb.chat({ model: 'plain', messages: history, options: { temperature: 0, num_predict: 30 } });
    assert.equal(t1.message.content, b1.message.content);
    const long = [...history, t1.message, { role: 'user', content: words(3000) }];
    const t2 = await ollama.chat({ model: 'plain', messages: long, options: { temperature: 0, num_predict: 30 } });
    const b2 = await cb.chat({ model: 'plain', messages: long, options: { temperature: 0, num_predict: 30 } });
    assert.ok(t2.context_length > 4096);
    assert.equal(t2.message.content, b2.message.content);
    const { models } = await ollama.ps();
    assert.ok(models.find((m) => m.name === 'plain:latest').context.pool_growths >= 1);
  } finally { await big.stop(); }
});

test('prefix_reuse: turn 2 evaluates only the new tokens and equals a cold run', async () => {
  const s = await startServer();
  try {
    await createPlain(s.url);
    const c = new Ollama({ host: s.url });
    const turn1 = [{ role: 'user', content: 'What is a forge?' }];
    const a1 = await c.chat({ model: 'plain', messages: turn1, options: { temperature: 0, num_predict: 20 } });
    const turn2 = [...turn1, a1.message, { role: 'user', content: 'And an anvil?' }];
    const a2 = await c.chat({ model: 'plain', messages: turn2, options: { temperature: 0, num_predict: 20 } });
    assert.ok(a2.prompt_cache_tokens >= a1.prompt_eval_count, `cached ${a2.prompt_cache_tokens} of turn 1's ${a1.prompt_eval_count}`);
    assert.ok(a2.prompt_eval_count - a2.prompt_cache_tokens < 25);
    const cold = await ollama.chat({ model: 'plain', messages: turn2, options: { temperature: 0, num_predict: 20 } });
    assert.equal(cold.message.content, a2.message.content);
  } finally { await s.stop(); }
});

test('a long conversation on ctx4k: grows to 4096 without reload, then cuts visibly and keeps the first message', async () => {
  const first = { role: 'user', content: 'FIRST-MESSAGE remember this' };
  const messages = [first];
  let sawCut = false;
  let pid;
  for (let turn = 0; turn < 12; turn++) {
    const r = await ollama.chat({ model: 'ctx4k', messages, options: { temperature: 0, num_predict: 16 } });
    assert.equal(r.context_max, 4096);
    assert.ok(r.context_length <= 4096);
    const p = (await ollama.ps()).models.find((m) => m.name === 'ctx4k:latest');
    pid ??= p.runner_pid;
    assert.equal(p.runner_pid, pid, 'no reload');
    if (r.truncated_messages) sawCut = true;
    else assert.ok(!sawCut, 'once the cut starts it is reported in every response');
    messages.push(r.message, { role: 'user', content: `turn ${turn} ` + words(300) });
  }
  assert.ok(sawCut, 'the conversation outgrew 4096 tokens');
  const r = await post(srv.url, '/api/chat', { model: 'ctx4k', messages, _debug_render_only: true });
  const d = (await r.json()).debug_info;
  assert.ok(d.truncated_messages > 0);
  assert.match(d.rendered_prompt, /FIRST-MESSAGE remember this/);
  assert.match(d.rendered_prompt, /Earlier messages were omitted to fit the context window/);
  assert.ok(d.prompt_eval_count <= 4096);
});

test('generate and generate_chat: the handler behaviours of spec/context.md', async () => {
  // empty prompt loads; system override; raw; streaming and not; missing model is 404
  assert.equal((await ollama.generate({ model: 'plain', prompt: '' })).done_reason, 'load');
  assert.equal((await ollama.chat({ model: 'plain', messages: [] })).done_reason, 'load');
  const notFound = await post(srv.url, '/api/chat', { model: 'absent', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(notFound.status, 404);
  const sys = await renderGenerate('plain', 'hi', {}, { system: 'SYSTEM-OVERRIDE' });
  assert.ok(sys.prompt_tokens > 0);
  const rendered = await post(srv.url, '/api/generate', { model: 'plain', prompt: 'hi', system: 'SYSTEM-OVERRIDE', _debug_render_only: true });
  assert.match((await rendered.json()).debug_info.rendered_prompt, /SYSTEM-OVERRIDE/);
  const raw = await post(srv.url, '/api/generate', { model: 'plain', prompt: 'plain words', raw: true, _debug_render_only: true });
  assert.equal((await raw.json()).debug_info.rendered_prompt, 'plain words');
  const both = await post(srv.url, '/api/generate', { model: 'plain', prompt: 'x', raw: true, system: 'no' });
  assert.equal(both.status, 400);
  // raw cut on ctx4k: the head and the newest tokens survive
  const d = await renderGenerate('ctx4k', 'HEAD ' + words(5000) + ' TAIL', {}, { raw: true });
  assert.ok(d.truncated_tokens > 0);
  assert.equal(d.prompt_eval_count, 4096 - Math.min(d.prompt_tokens, 1024));
  assert.match(d.rendered_prompt, /TAIL$/);
  // ... and the head is num_keep tokens: the default 4 keep "HEAD" but not the words after
  // the first few, num_keep 30 keeps all of them
  const head = 'HEAD alpha beta gamma delta epsilon zeta eta theta iota kappa ';
  const d4 = await renderGenerate('ctx4k', head + words(5000) + ' TAIL', {}, { raw: true });
  assert.match(d4.rendered_prompt, /^HEAD/);
  assert.doesNotMatch(d4.rendered_prompt, /iota kappa/);
  const d30 = await renderGenerate('ctx4k', head + words(5000) + ' TAIL', { num_keep: 30 }, { raw: true });
  assert.match(d30.rendered_prompt, /^HEAD alpha beta gamma delta epsilon zeta eta theta iota kappa /);
  assert.match(d30.rendered_prompt, /TAIL$/);
  assert.equal(d30.prompt_eval_count, d4.prompt_eval_count, 'the same budget, whatever the head');
  // a chat that cannot fit even after the cut is a 400 with the counts
  const huge = await post(srv.url, '/api/chat', { model: 'ctx4k', messages: [{ role: 'user', content: words(6000) }] });
  assert.equal(huge.status, 400);
  assert.match((await huge.json()).error, /prompt is \d+ tokens, the model's context is 4096/);
});

// The cut puts a system marker after the first message; real templates may refuse a system
// message (Gemma 2) or insist that roles alternate (Mistral). The cut must still render
// with the model's own template: without the marker, and with a kept suffix the template
// accepts, never a template error.
test('a long chat is cut and still renders with templates that refuse system messages or need alternation', async () => {
  const dir = new URL('../../build/_deps/llama.cpp/models/templates/', import.meta.url).pathname;
  const { readFileSync } = await import('node:fs');
  const msgs = [];
  for (let i = 0; i < 40; i++) {
    msgs.push({ role: 'user', content: `question ${i} ${words(60)}` });
    msgs.push({ role: 'assistant', content: `answer ${i} ${words(60)}` });
  }
  msgs.push({ role: 'user', content: 'the last question' });
  for (const [name, file, marker] of [['cut-gemma2', 'google-gemma-2-2b-it.jinja', false],
    ['cut-mistral', 'mistralai-Mistral-Nemo-Instruct-2407.jinja', null]]) {
    const c = await post(srv.url, '/api/create', { model: name, from: CTX4K_GGUF, template: readFileSync(dir + file, 'utf8'), stream: false });
    assert.equal(c.status, 200, await c.text());
    const r = await post(srv.url, '/api/chat', { model: name, messages: msgs, _debug_render_only: true });
    const body = await r.text();
    assert.equal(r.status, 200, body);
    const d = JSON.parse(body).debug_info;
    assert.ok(d.truncated_messages > 0 && d.prompt_eval_count <= 4096 - 1024, JSON.stringify({ ...d, rendered_prompt: undefined }));
    assert.match(d.rendered_prompt, /question 0 /, 'the first message is kept');
    assert.match(d.rendered_prompt, /the last question/);
    assert.doesNotMatch(d.rendered_prompt, /question 1 /, 'the oldest middle messages are gone');
    if (marker === false) assert.doesNotMatch(d.rendered_prompt, /Earlier messages were omitted/);
  }
});
