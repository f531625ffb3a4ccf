// KV cache types (issue 15 item 3): BELLOWS_KV_CACHE_TYPE reaches the runner, /api/ps shows
// the type and the real bytes per cell of it (q8_0 ~0.53 and q4_0 ~0.28 of f16: blocks of 32
// elements in 34 and 18 bytes), a model whose heads a block does not divide runs f16, and
// an unknown value stops the server at start with a clear message.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startServer, post, MODELS, BIN } from './helpers.mjs';

const LLAMA = join(MODELS, 'archs', 'llama-dense.gguf'); // tools/: the arch_models target; heads of 128
const tokens = (seed, n) => Array.from({ length: n }, (_, i) => (seed * 31 + i * 17) % 128);
const servers = [];
after(async () => { for (const s of servers) await s.stop(); });

// Loads the llama arch model on a server of kv type `type` and returns its /api/ps context.
async function psOf(type) {
  const srv = await startServer(type ? { BELLOWS_KV_CACHE_TYPE: type } : {});
  servers.push(srv);
  let r = await post(srv.url, '/api/create', { model: 'llama', from: LLAMA, stream: false });
  assert.equal(r.status, 200, await r.text());
  r = await post(srv.url, '/v1/completions', { model: 'llama', prompt: tokens(1, 48), max_tokens: 4, temperature: 0 });
  assert.equal(r.status, 200, await r.text());
  const ps = await (await fetch(srv.url + '/api/ps')).json();
  const m = ps.models.find((x) => x.name === 'llama:latest');
  assert.ok(m, JSON.stringify(ps));
  return { srv, c: m.context };
}

test('q8_0 and q4_0 pools hold ~1/2 and ~0.28 of f16 bytes per cell', { skip: !existsSync(LLAMA) && 'build the arch_models target' }, async () => {
  const f16 = (await psOf()).c;
  const q8 = (await psOf('q8_0')).c;
  const q4 = (await psOf('Q4_0')).c;
  assert.equal(f16.kv_cache_type, 'f16');
  assert.equal(q8.kv_cache_type, 'q8_0');
  assert.equal(q4.kv_cache_type, 'q4_0');
  assert.ok(f16.kv_bytes_per_token > 0);
  assert.equal(q8.kv_bytes_per_token * 64, f16.kv_bytes_per_token * 34);
  assert.equal(q4.kv_bytes_per_token * 64, f16.kv_bytes_per_token * 18);
  for (const c of [f16, q8, q4]) assert.equal(c.kv_bytes, c.pool_tokens * c.kv_bytes_per_token, JSON.stringify(c));
  assert.ok(q8.kv_bytes < f16.kv_bytes * 0.54 && q4.kv_bytes < f16.kv_bytes * 0.29);
});

test('a quantized type where it cannot be used runs f16: heads of 16, or flash attention off', async () => {
  for (const env of [{ BELLOWS_KV_CACHE_TYPE: 'q8_0' }, { BELLOWS_KV_CACHE_TYPE: 'q4_0', BELLOWS_FLASH_ATTENTION: '0' }]) {
    const srv = await startServer(env);
    servers.push(srv);
    const r = await post(srv.url, '/api/generate', { model: 'demo', prompt: 'hi', stream: false, options: { num_predict: 2 } });
    assert.equal(r.status, 200, await r.text());
    const m = (await (await fetch(srv.url + '/api/ps')).json()).models.find((x) => x.name === 'demo:latest');
    assert.equal(m.context.kv_cache_type, 'f16', JSON.stringify(env));
    if (env.BELLOWS_FLASH_ATTENTION) assert.match(srv.log(), /needs flash attention/);
  }
});

test('an unknown BELLOWS_KV_CACHE_TYPE stops the server at start; serve --help lists the variable', async () => {
  await assert.rejects(startServer({ BELLOWS_KV_CACHE_TYPE: 'q5_9' }),
    /BELLOWS_KV_CACHE_TYPE=q5_9: expected f16, q8_0, q4_0 or auto/);
  const help = spawnSync(BIN, ['serve', '--help'], { encoding: 'utf8' });
  assert.match(help.stdout + help.stderr, /BELLOWS_KV_CACHE_TYPE/);
});

// auto: q8_0 when one sequence of the maximum context (here the initial pool of 4096 cells:
// the model's context is 256) does not fit the budget in f16. This model's reserve is its
// ~4.6 MiB of weights + 2 x 64 MiB of compute + 2 x 4096 cells: 16 MiB of f16 KV, 8.5 MiB of
// q8_0 -- so a 146 MiB limit holds q8_0's and not f16's.
test('auto: q8_0 when the maximum context does not fit the memory limit in f16, else f16', { skip: !existsSync(LLAMA) && 'build the arch_models target' }, async () => {
  const plenty = (await psOf('auto')).c;
  assert.equal(plenty.kv_cache_type, 'f16');
  const srv = await startServer({ BELLOWS_KV_CACHE_TYPE: 'auto', BELLOWS_MEMORY_LIMIT: '146M' });
  servers.push(srv);
  let r = await post(srv.url, '/api/create', { model: 'llama', from: LLAMA, stream: false });
  assert.equal(r.status, 200, await r.text());
  r = await post(srv.url, '/v1/completions', { model: 'llama', prompt: tokens(2, 48), max_tokens: 4, temperature: 0 });
  assert.equal(r.status, 200, await r.text());
  const m = (await (await fetch(srv.url + '/api/ps')).json()).models.find((x) => x.name === 'llama:latest');
  assert.equal(m.context.kv_cache_type, 'q8_0', srv.log());
  assert.match(srv.log(), /cells of q8_0 \(auto\)/);
  // the same limit in f16 cannot load it at all
  const f16 = await startServer({ BELLOWS_MEMORY_LIMIT: '146M' });
  servers.push(f16);
  await post(f16.url, '/api/create', { model: 'llama', from: LLAMA, stream: false });
  r = await post(f16.url, '/v1/completions', { model: 'llama', prompt: tokens(2, 48), max_tokens: 4 });
  assert.notEqual(r.status, 200);
  assert.match(await r.text(), /requires .* GiB of memory/);
});
