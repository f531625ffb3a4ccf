// Compatibility gaps found by a code read (issue 11, item 6), each through the clients people
// use: generate's `context` array, images on a model without vision, token-id inputs and
// unit vectors on the embeddings routes, `dimensions`, an array `prompt` on /v1/completions,
// keep_alive 0 on a model that is not loaded, and a pooled embedding model (BERT, made here
// by bellows-mkmodel --arch bert) with inputs longer than 512 tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { startServer, post, BIN } from './helpers.mjs';

const MKMODEL = process.env.BELLOWS_MKMODEL ?? join(dirname(BIN), '../tools/bellows-mkmodel');
const LLAMA = process.env.BELLOWS_LLAMA_DIR ?? new URL('../../build/_deps/llama.cpp', import.meta.url).pathname;

let srv, ollama, openai, dir;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bellows-compat-'));
  // A BERT encoder, mean-pooled, with a 2048-token window: the shape of nomic-embed / bge-m3.
  execFileSync(MKMODEL, ['--arch', 'bert', '--type', 'f16', '--layers', '2', '--hidden', '64', '--ffn', '128',
    '--heads', '4', '--kv-heads', '4', '--context-length', '2048',
    '--vocab', join(LLAMA, 'models/ggml-vocab-bert-bge.gguf'), '-o', join(dir, 'bert.gguf')]);
  srv = await startServer();
  ollama = new Ollama({ host: srv.url });
  openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const r = await post(srv.url, '/api/create', { model: 'bert', from: join(dir, 'bert.gguf'), stream: false });
  assert.equal(r.status, 200, await r.text());
});
after(async () => {
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const greedy = { temperature: 0, num_predict: 8 };
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const near = (a, b, eps = 1e-5) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) < eps);
const loaded = async () => (await ollama.ps()).models.map((m) => m.name);

// ---- keep_alive 0 ----------------------------------------------------------------------------
// First in the file: nothing is loaded yet.

test('keep_alive 0 on an empty request does not load a model that is not loaded', async () => {
  assert.deepEqual(await loaded(), []);
  const g = await ollama.generate({ model: 'demo', prompt: '', keep_alive: 0 });
  assert.equal(g.done_reason, 'unload');
  const c = await ollama.chat({ model: 'demo', messages: [], keep_alive: 0 });
  assert.equal(c.done_reason, 'unload');
  assert.deepEqual(await loaded(), []);
  assert.doesNotMatch(srv.log(), /sched loading .*demo/, 'no runner was started for it');
});

test('keep_alive 0 unloads a busy model once its request is done, not during it', async () => {
  // A streamed answer holds the model until its client has read it all: it is in flight
  // while the unload request comes and goes.
  const stream = await ollama.generate({ model: 'demo', prompt: 'Tell me a story', stream: true,
    options: { temperature: 0, num_predict: 64 } });
  const it = stream[Symbol.asyncIterator]();
  let part = (await it.next()).value;
  const unload = await ollama.generate({ model: 'demo', prompt: '', keep_alive: 0 });
  assert.equal(unload.done_reason, 'unload');
  assert.deepEqual(await loaded(), ['demo:latest'], 'not while a request is in flight');
  while (!part.done) part = (await it.next()).value;
  assert.equal(part.eval_count, 64, 'the request in flight ran to its end');
  let names = await loaded();
  for (let i = 0; i < 200 && names.length; i++) { // up to 10 s: the runner saves its cache as it stops
    await new Promise((res) => setTimeout(res, 50));
    names = await loaded();
  }
  assert.deepEqual(names, [], 'unloaded once the request was done');
});

// ---- /api/generate context ---------------------------------------------------------------------

test('generate returns the context (prompt + answer tokens) and takes it back as the prefix', async () => {
  const a = await ollama.generate({ model: 'demo', prompt: 'Hello there', options: greedy });
  assert.ok(Array.isArray(a.context), JSON.stringify(a));
  assert.equal(a.context.length, a.prompt_eval_count + a.eval_count, 'every prompt token, then every sampled one');
  const b = await ollama.generate({ model: 'demo', prompt: 'And then?', context: a.context, options: greedy });
  assert.deepEqual(b.context.slice(0, a.context.length), a.context, 'the new context extends the old one');
  assert.ok(b.prompt_eval_count > a.context.length, 'the new turn comes after the context');
  assert.ok(b.prompt_cache_tokens >= a.context.length - 1,
    `the same tokens hit the prefix cache: ${b.prompt_cache_tokens} of ${a.context.length}`);
  // What the model sees: the first exchange, then the new turn rendered by the template.
  const seen = await (await post(srv.url, '/api/generate',
    { model: 'demo', prompt: 'And then?', context: a.context, _debug_render_only: true })).json();
  const p = seen.debug_info.rendered_prompt;
  assert.ok(p.indexOf('Hello there') >= 0 && p.indexOf('Hello there') < p.indexOf('And then?'), p);
  assert.ok(p.includes(a.response), 'the earlier answer is part of the prompt');
  assert.equal(seen.debug_info.prompt_eval_count, b.prompt_eval_count);
});

test('generate streamed: the final chunk carries the context; raw prompts get none', async () => {
  let last;
  for await (const part of await ollama.generate({ model: 'demo', prompt: 'Hello there', options: greedy, stream: true })) last = part;
  assert.equal(last.done, true);
  assert.equal(last.context.length, last.prompt_eval_count + last.eval_count);
  const raw = await ollama.generate({ model: 'demo', prompt: 'The sky is', raw: true, options: greedy });
  assert.equal(raw.context, undefined, 'Ollama returns no context for raw prompts');
});

test('a bad context is a 400', async () => {
  const cases = [
    [{ context: 'not tokens' }, /context must be an array of token ids/],
    [{ context: [1, 'a'] }, /context\[1\] must be a token id/],
    [{ context: [99999999] }, /token id 99999999 is outside the model's vocabulary/],
    [{ context: [1, 2], raw: true }, /raw mode does not support template, system, or context/],
  ];
  for (const [extra, re] of cases) {
    const r = await post(srv.url, '/api/generate', { model: 'demo', prompt: 'x', stream: false, ...extra });
    assert.equal(r.status, 400, JSON.stringify(extra));
    assert.match((await r.json()).error, re);
  }
});

// ---- images ------------------------------------------------------------------------------------

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const NO_VISION = /"demo" does not support images: this model is missing data required for image input/;

test('images on a model without vision are a 400 on /api/chat, /api/generate and /v1, never dropped', async () => {
  await assert.rejects(ollama.chat({ model: 'demo', messages: [{ role: 'user', content: 'What is this?', images: [PNG] }] }),
    (e) => e.status_code === 400 && NO_VISION.test(e.error));
  await assert.rejects(ollama.generate({ model: 'demo', prompt: 'What is this?', images: [PNG] }),
    (e) => e.status_code === 400 && NO_VISION.test(e.error));
  await assert.rejects(openai.chat.completions.create({
    model: 'demo',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] }],
  }), (e) => e.status === 400 && NO_VISION.test(e.message));
  // An image earlier in the conversation counts too; no image, no refusal.
  const r = await post(srv.url, '/api/chat', { model: 'demo', stream: false, messages: [
    { role: 'user', content: 'Look', images: [PNG] }, { role: 'assistant', content: 'ok' }, { role: 'user', content: 'Well?' }] });
  assert.equal(r.status, 400);
  const ok = await ollama.chat({ model: 'demo', messages: [{ role: 'user', content: 'Hi', images: [] }], options: greedy });
  assert.equal(ok.done, true);
});

// ---- embeddings ----------------------------------------------------------------------------------

test('/api/embed and /v1/embeddings return unit vectors; the legacy /api/embeddings stays raw', async () => {
  const e = await ollama.embed({ model: 'demo', input: ['first text', 'second text'] });
  for (const v of e.embeddings) assert.ok(Math.abs(norm(v) - 1) < 1e-5, `norm ${norm(v)}`);
  const legacy = await ollama.embeddings({ model: 'demo', prompt: 'first text' });
  const n = norm(legacy.embedding);
  assert.ok(Math.abs(n - 1) > 0.01, `the legacy vector is the model's own (norm ${n})`);
  assert.ok(near(legacy.embedding.map((x) => x / n), e.embeddings[0]), 'same direction');
  const v1 = await openai.embeddings.create({ model: 'demo', input: 'first text' }); // base64, decoded by the SDK
  assert.ok(near(v1.data[0].embedding, e.embeddings[0]));
});

test('dimensions keeps the first N values and normalizes again, on both routes', async () => {
  const full = (await ollama.embed({ model: 'demo', input: 'first text' })).embeddings[0];
  const head = full.slice(0, 16), hn = norm(head);
  const cut = (await ollama.embed({ model: 'demo', input: 'first text', dimensions: 16 })).embeddings[0];
  assert.equal(cut.length, 16);
  assert.ok(near(cut, head.map((x) => x / hn)));
  const v1 = await openai.embeddings.create({ model: 'demo', input: 'first text', dimensions: 16 });
  assert.ok(near(v1.data[0].embedding, cut));
  const all = (await ollama.embed({ model: 'demo', input: 'first text', dimensions: 10000 })).embeddings[0];
  assert.ok(near(all, full), 'more dimensions than the model has: the whole vector, as Ollama does');
  const bad = await post(srv.url, '/api/embed', { model: 'demo', input: 'x', dimensions: -3 });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /dimensions must be a positive integer/);
});

test('/v1/embeddings takes token ids: one array, or an array of arrays (as LangChain sends them)', async () => {
  const many = await openai.embeddings.create({ model: 'demo', input: [[9707, 1879], [15, 16, 17]] });
  assert.deepEqual(many.data.map((d) => d.index), [0, 1]);
  assert.equal(many.usage.prompt_tokens, 5, 'the ids are used as they are: no BOS, no re-tokenizing');
  for (const d of many.data) assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-5);
  assert.ok(!near(many.data[0].embedding, many.data[1].embedding));
  const one = await openai.embeddings.create({ model: 'demo', input: [9707, 1879] });
  assert.equal(one.data.length, 1);
  assert.ok(near(one.data[0].embedding, many.data[0].embedding));
  const bad = [
    [[[1, 2], 'text'], /input\[1\] must be a non-empty array of token ids/],
    [[1, -2], /token ids must be integers from 0/],
    [[99999999], /outside the model's vocabulary/],
  ];
  for (const [input, re] of bad) {
    await assert.rejects(openai.embeddings.create({ model: 'demo', input }), (e) => e.status === 400 && re.test(e.message));
  }
  // The native route keeps Ollama's input types.
  const native = await post(srv.url, '/api/embed', { model: 'demo', input: [1, 2] });
  assert.equal(native.status, 400);
});

test('a pooled embedding model takes inputs past 512 tokens, up to its maximum; truncate decides past it', async () => {
  const show = await ollama.show({ model: 'bert' });
  assert.ok(show.capabilities.includes('embedding'));
  const text = 'hello world '.repeat(600); // 1202 tokens with [CLS] and [SEP]
  const e = await ollama.embed({ model: 'bert', input: text });
  assert.equal(e.prompt_eval_count, 1202);
  assert.equal(e.embeddings[0].length, 64);
  assert.ok(Math.abs(norm(e.embeddings[0]) - 1) < 1e-5);
  const again = await openai.embeddings.create({ model: 'bert', input: text, encoding_format: 'float' });
  assert.ok(near(again.data[0].embedding, e.embeddings[0]), 'the same vector on /v1');
  const tooLong = 'word '.repeat(3000);
  const cut = await ollama.embed({ model: 'bert', input: tooLong });
  assert.equal(cut.prompt_eval_count, 2048, 'cut to the model maximum (spec/context.md rule 7)');
  await assert.rejects(ollama.embed({ model: 'bert', input: tooLong, truncate: false }),
    (err) => err.status_code === 400 && /input is 3002 tokens, the model's context is 2048/.test(err.error));
});

// ---- /v1/completions prompt arrays ---------------------------------------------------------------

test('/v1/completions: several prompts give several choices, each as if sent alone', async () => {
  const opts = { model: 'demo', max_tokens: 6, temperature: 0 };
  const both = await openai.completions.create({ ...opts, prompt: ['Once upon a time', 'The sky is'] });
  assert.deepEqual(both.choices.map((c) => c.index), [0, 1]);
  const first = await openai.completions.create({ ...opts, prompt: 'Once upon a time' });
  const second = await openai.completions.create({ ...opts, prompt: ['The sky is'] });
  assert.equal(second.choices.length, 1);
  assert.equal(both.choices[0].text, first.choices[0].text);
  assert.equal(both.choices[1].text, second.choices[0].text);
  assert.equal(both.usage.completion_tokens, 12);
  assert.equal(both.usage.prompt_tokens, first.usage.prompt_tokens + second.usage.prompt_tokens);
  // Token ids are the model's own, given to it as they are (not templated).
  const ids = await openai.completions.create({ ...opts, prompt: [[9707, 1879], [785, 12884, 374]] });
  assert.deepEqual(ids.choices.map((c) => c.index), [0, 1]);
  const one = await openai.completions.create({ ...opts, prompt: [785, 12884, 374] });
  assert.equal(one.usage.prompt_tokens, 3);
  assert.equal(one.choices[0].text, ids.choices[1].text);
  await assert.rejects(openai.completions.create({ ...opts, prompt: ['a', 'b'], stream: true }),
    (e) => e.status === 400 && /more than one prompt/.test(e.message));
  await assert.rejects(openai.completions.create({ ...opts, prompt: [] }), (e) => e.status === 400);
});
