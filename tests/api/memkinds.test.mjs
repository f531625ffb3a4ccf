// /api/ps shows each model's memory by kind (issue 18 item 4): what grows with the pool
// (kv_bytes_per_token), the sliding-window and recurrent parts that do not, and the host
// memory of state checkpoints (taken once a hybrid model has served a prompt).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, post, MODELS } from './helpers.mjs';

const HYBRID = join(MODELS, 'archs', 'qwen35-dense.gguf'); // tools/: the arch_models target

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

const ps = async (name) => (await (await fetch(srv.url + '/api/ps')).json()).models.find((m) => m.name === name);
const tokens = (seed, n) => Array.from({ length: n }, (_, i) => (seed * 31 + i * 17) % 128);

test('full attention: KV grows with the pool, nothing recurrent, no checkpoints', async () => {
  const r = await post(srv.url, '/api/generate', { model: 'demo', prompt: 'hi', stream: false, options: { num_predict: 2 } });
  assert.equal(r.status, 200, await r.text());
  const m = await ps('demo:latest');
  assert.ok(m, 'demo is loaded');
  const c = m.context;
  assert.equal(c.memory_kind, 'full');
  assert.ok(c.kv_bytes_per_token > 0);
  assert.equal(c.kv_bytes, c.pool_tokens * c.kv_bytes_per_token);
  assert.equal(c.recurrent_bytes, 0);
  assert.equal(c.swa_bytes, 0);
  assert.equal(c.checkpoint_bytes, 0);
  assert.equal(c.checkpoints, 0);
});

test('hybrid: a recurrent state per sequence, and checkpoints once a turn is served', { skip: !existsSync(HYBRID) && 'build the arch_models target' }, async () => {
  let r = await post(srv.url, '/api/create', { model: 'hybrid', from: HYBRID, stream: false });
  assert.equal(r.status, 200, await r.text());
  // a token prompt (this random model has no vocabulary): OpenAI's token-id prompt
  r = await post(srv.url, '/v1/completions', { model: 'hybrid', prompt: tokens(1, 64), max_tokens: 4, temperature: 0 });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  assert.equal(JSON.parse(text).usage.prompt_tokens, 64, text);
  const c = (await ps('hybrid:latest')).context;
  assert.equal(c.memory_kind, 'hybrid');
  assert.ok(c.recurrent_bytes > 0, JSON.stringify(c));
  assert.equal(c.recurrent_bytes % c.num_parallel, 0);
  assert.ok(c.kv_bytes_per_token > 0);
  assert.equal(c.kv_bytes, c.pool_tokens * c.kv_bytes_per_token);
  assert.equal(c.swa_bytes, 0);
  assert.ok(c.checkpoints > 0 && c.checkpoint_bytes > 0, JSON.stringify(c));
});

test('a model without a tokenizer: /api/generate serves an empty prompt with a token `context`, text 400s', { skip: !existsSync(HYBRID) && 'build the arch_models target' }, async () => {
  let r = await post(srv.url, '/api/create', { model: 'hybrid', from: HYBRID, stream: false });
  assert.equal(r.status, 200, await r.text());
  const ctx = tokens(2, 40);
  r = await post(srv.url, '/api/generate', { model: 'hybrid', prompt: '', context: ctx, stream: false,
    options: { num_predict: 3, temperature: 0 } });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  const g = JSON.parse(text);
  assert.notEqual(g.done_reason, 'load', text);
  assert.equal(g.prompt_eval_count, 40, text);
  assert.equal(g.eval_count, 3, text);
  assert.deepEqual(g.context.slice(0, 40), ctx); // the prompt's tokens, then the answer's
  assert.equal(g.context.length, 43, text);
  r = await post(srv.url, '/api/generate', { model: 'hybrid', prompt: 'hello', stream: false });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error, /no tokenizer/);
});
