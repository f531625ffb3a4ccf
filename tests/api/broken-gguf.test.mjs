// Broken GGUF files over HTTP (issue 13 item 7): made from a valid tiny GGUF (the fuzz seed
// fuzz/corpus/gguf/tiny) and from the ctx4k test model -- truncated at many offsets, bad
// magic and version, huge counts, bad value and tensor types, wrong tensor offsets. Each
// /api/create answers 400 "... is not a GGUF file (...)", no model appears, and the server
// stays up: the demo model still answers afterwards. A well-formed file that is no model
// (the tiny GGUF has no vocabulary) is created, and a request on it fails with an error
// instead of a crash. tests/unit/test_gguf_broken.c tries the same kinds one by one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, CTX4K_GGUF } from './helpers.mjs';

const TINY = new URL('../../fuzz/corpus/gguf/tiny', import.meta.url).pathname;
let srv, dir;
before(async () => {
  srv = await startServer();
  dir = mkdtempSync(join(tmpdir(), 'bellows-broken-'));
});
after(async () => {
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const post = (path, body) => fetch(srv.url + path, { method: 'POST', body: JSON.stringify(body) });

function variants(good) {
  const out = [];
  const edit = (what, fn) => { const b = Buffer.from(good); fn(b); out.push([what, b]); };
  for (let cut = 0; cut < good.length; cut += 7) out.push([`truncated at ${cut}`, good.subarray(0, cut)]);
  for (const m of ['GGUX', 'gguf', 'GGML', '\0\0\0\0']) edit(`magic ${JSON.stringify(m)}`, (b) => b.write(m, 0, 'latin1'));
  for (const v of [0, 1, 4, 0xffffffff]) edit(`version ${v}`, (b) => b.writeUInt32LE(v, 4));
  for (const n of [1n << 40n, 1n << 62n, 0xffffffffffffffffn]) {
    edit(`n_tensors ${n}`, (b) => b.writeBigUInt64LE(n, 8));
    edit(`n_kv ${n}`, (b) => b.writeBigUInt64LE(n, 16));
    edit(`first key length ${n}`, (b) => b.writeBigUInt64LE(n, 24));
  }
  // the first key/value: general.architecture (8 + 20 bytes of key, then its u32 type)
  for (const t of [13, 99, 0xffffffff]) edit(`value type ${t}`, (b) => b.writeUInt32LE(t, 24 + 8 + 20));
  // the last tensor info ends 12 bytes before the padding: u32 type, u64 offset
  const ti = good.lastIndexOf(Buffer.from('output_norm.weight')) + 18 + 4 + 8;
  for (const t of [99, 1000]) edit(`tensor type ${t}`, (b) => b.writeUInt32LE(t, ti));
  for (const o of [1n, 4096n, 1n << 40n, 0xffffffffffffffe0n]) edit(`tensor offset ${o}`, (b) => b.writeBigUInt64LE(o, ti + 4));
  return out;
}

test('broken GGUF files: /api/create refuses each with a clear error, the server stays up', async () => {
  const good = readFileSync(TINY);
  const cases = variants(good);
  // the real model, cut inside its header, its tokenizer and its tensor data
  const size = statSync(CTX4K_GGUF).size;
  for (const cut of [16, 1000, 300000, Math.floor(size / 2), size - 1]) {
    const b = Buffer.alloc(cut);
    const fd = openSync(CTX4K_GGUF, 'r');
    readSync(fd, b, 0, cut, 0);
    closeSync(fd);
    cases.push([`ctx4k truncated at ${cut}`, b]);
  }
  let i = 0;
  for (const [what, bytes] of cases) {
    const path = join(dir, `case-${i}.gguf`);
    writeFileSync(path, bytes);
    const r = await post('/api/create', { model: `broken${i}`, from: path, stream: false });
    const text = await r.text();
    assert.equal(r.status, 400, `${what}: ${r.status} ${text}`);
    assert.match(JSON.parse(text).error, /is not a GGUF file \(.+\)/, what);
    rmSync(path);
    i++;
  }
  console.log(`broken GGUF files tried over /api/create: ${cases.length}`);
  const tags = await (await fetch(srv.url + '/api/tags')).json();
  assert.deepEqual(tags.models.map((m) => m.name), ['demo:latest']);
  const g = await post('/api/generate', { model: 'demo', prompt: 'hi', stream: false, options: { num_predict: 2 } });
  assert.equal(g.status, 200, await g.clone().text());
  assert.equal((await g.json()).done, true);
});

test('a well-formed GGUF that is no model: created, then loading it fails cleanly', async () => {
  const path = join(dir, 'tiny.gguf');
  writeFileSync(path, readFileSync(TINY));
  const c = await post('/api/create', { model: 'tiny', from: path, stream: false });
  assert.equal(c.status, 200, await c.text());
  const r = await post('/api/generate', { model: 'tiny', prompt: 'hi', stream: false });
  const text = await r.text();
  assert.ok(r.status >= 400, `${r.status} ${text}`);
  assert.ok(JSON.parse(text).error.length > 0, text);
  // the server is still up and still serves the model that works
  const g = await post('/api/generate', { model: 'demo', prompt: 'hi', stream: false, options: { num_predict: 2 } });
  assert.equal(g.status, 200, await g.clone().text());
});
