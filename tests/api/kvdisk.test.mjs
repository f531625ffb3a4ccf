// KV saved to disk and restored by prefix (issue 15): a conversation survives a server
// restart and an eviction from a one-sequence pool, its next turn reuses the saved history
// and answers exactly as a cold run; the files are private (0600), a corrupt one is
// skipped and removed, and deleting the model removes its files. /api/cache lists the saved
// states by model and clears them, one model's or all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, post, DEMO_GGUF, CTX4K_GGUF } from './helpers.mjs';

const OPTS = { temperature: 0, seed: 42, num_predict: 24 };

// A long first message: a few thousand tokens of the demo model's vocabulary.
const LONG = Array.from({ length: 250 }, (_, i) =>
  `The forge ${i % 7} keeps the bellows ${i % 11} working while the anvil ${i % 5} rings.`).join(' ');

async function createPlain(url) {
  const r = await post(url, '/api/create', { model: 'plain', from: DEMO_GGUF, stream: false });
  assert.equal(r.status, 200, await r.text());
}

async function chat(url, messages) {
  const r = await post(url, '/api/chat', { model: 'plain', messages, options: OPTS, stream: false });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return JSON.parse(text);
}

const kvFiles = (dir) => readdirSync(dir).filter((f) => f.endsWith('.kv')).map((f) => join(dir, f));

function tempDirs() {
  const root = mkdtempSync(join(tmpdir(), 'bellows-kvdisk-'));
  return { root, store: join(root, 'store'), kv: join(root, 'kv') };
}

test('restart: the next turn restores the saved history from disk and equals a cold run', async (t) => {
  const d = tempDirs();
  let cold;
  try {
    cold = await startServer({ BELLOWS_KV_CACHE_DISK: '0' });
    // ---- first server: turn 1, then SIGTERM
    let s = await startServer({ BELLOWS_MODELS: d.store, BELLOWS_KV_CACHE_DIR: d.kv });
    const turn1 = [{ role: 'user', content: LONG }];
    let a1;
    try {
      await createPlain(s.url);
      a1 = await chat(s.url, turn1);
      assert.ok(a1.prompt_eval_count > 2000, `turn 1 has ${a1.prompt_eval_count} tokens`);
    } finally { await s.stop(); }
    const saved = kvFiles(d.kv);
    assert.ok(saved.length >= 1, 'the runner saved its cached sequence when it stopped');
    for (const f of saved) assert.equal(statSync(f).mode & 0o777, 0o600, `${f} is private`);

    // ---- second server on the same store and directory: turn 2 comes from disk
    const turn2 = [...turn1, a1.message, { role: 'user', content: 'And what does the anvil do?' }];
    s = await startServer({ BELLOWS_MODELS: d.store, BELLOWS_KV_CACHE_DIR: d.kv });
    let a2;
    try {
      a2 = await chat(s.url, turn2);
      assert.ok(a2.prompt_cache_tokens >= a1.prompt_eval_count,
        `cached ${a2.prompt_cache_tokens} of turn 1's ${a1.prompt_eval_count}\n${s.log()}`);
      assert.match(s.log(), /prompt cache from disk/);
      t.diagnostic(`turn 1: ${a1.prompt_eval_count} tokens; turn 2 after restart: ${a2.prompt_cache_tokens} of ` +
        `${a2.prompt_eval_count} from disk; ${(s.log().match(/prompt cache from disk[^\n]*/) ?? [''])[0]}`);
    } finally { await s.stop(); }

    // ---- the cold run: no disk cache at all
    await createPlain(cold.url);
    const c2 = await chat(cold.url, turn2);
    assert.equal(c2.prompt_cache_tokens ?? 0, 0);
    assert.equal(a2.message.content, c2.message.content);
    assert.equal(a2.eval_count, c2.eval_count);
    t.diagnostic(`time to first token: ${(a2.prompt_eval_duration / 1e6).toFixed(0)} ms prompt eval restored vs ` +
      `${(c2.prompt_eval_duration / 1e6).toFixed(0)} ms cold`);

    // ---- corrupt every saved state (bytes in the state part, at the end of the file)
    const before = kvFiles(d.kv);
    assert.ok(before.length >= 1);
    for (const f of before) {
      const b = readFileSync(f);
      for (let i = b.length - 64; i < b.length; i++) b[i] ^= 0x5a;
      writeFileSync(f, b);
    }
    s = await startServer({ BELLOWS_MODELS: d.store, BELLOWS_KV_CACHE_DIR: d.kv });
    try {
      const a2b = await chat(s.url, turn2);
      assert.equal(a2b.message.content, c2.message.content, 'a corrupt state is never loaded');
      assert.ok(a2b.prompt_cache_tokens < a1.prompt_eval_count, `cached ${a2b.prompt_cache_tokens}`);
      const gone = before.filter((f) => !kvFiles(d.kv).includes(f));
      assert.ok(gone.length >= 1, `the corrupt file was removed\n${s.log()}`);

      // ---- deleting the model removes its saved states (the runner saves again as it
      // unloads), but only once no other name uses the same weights: `demo` (added at the
      // store's first start) is the same GGUF blob as `plain`.
      const del = (model) => fetch(s.url + '/api/delete', { method: 'DELETE', body: JSON.stringify({ model }) });
      let r = await del('plain');
      assert.equal(r.status, 200, await r.text());
      assert.ok(kvFiles(d.kv).length >= 1, 'demo still uses the blob: its states stay');
      r = await del('demo');
      assert.equal(r.status, 200, await r.text());
      assert.deepEqual(kvFiles(d.kv), []);
    } finally { await s.stop(); }
  } finally {
    await cold?.stop();
    rmSync(d.root, { recursive: true, force: true });
  }
});

test('eviction: a one-sequence pool brings a conversation back from disk, same tokens', async () => {
  let s, cold;
  try {
    s = await startServer({ BELLOWS_NUM_PARALLEL: '1' });
    cold = await startServer({ BELLOWS_KV_CACHE_DISK: '0' });
    await createPlain(s.url);
    await createPlain(cold.url);
    const a = [{ role: 'user', content: LONG }];
    const b = [{ role: 'user', content: 'Tell me about ' + LONG.slice(0, 4000).split(' ').reverse().join(' ') }];
    const a1 = await chat(s.url, a);
    const b1 = await chat(s.url, b); // takes the only sequence: A leaves the pool, to disk
    assert.ok(b1.prompt_cache_tokens < 64, `B shares little with A (${b1.prompt_cache_tokens})`);
    assert.ok(kvFiles(s.kvDir).length >= 1, 'A was saved when it left the pool');
    const a2m = [...a, a1.message, { role: 'user', content: 'And the bellows?' }];
    const a2 = await chat(s.url, a2m);
    assert.ok(a2.prompt_cache_tokens >= a1.prompt_eval_count,
      `cached ${a2.prompt_cache_tokens} of ${a1.prompt_eval_count}\n${s.log()}`);
    const c2 = await chat(cold.url, a2m);
    assert.equal(a2.message.content, c2.message.content);
    assert.equal(a2.eval_count, c2.eval_count);
  } finally {
    await s?.stop();
    await cold?.stop();
  }
});

// ---- /api/cache ------------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const getCache = async (url, headers = {}) => {
  const r = await fetch(url + '/api/cache', { headers });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return JSON.parse(text);
};
const clearCache = (url, body) =>
  fetch(url + '/api/cache', { method: 'DELETE', ...(body ? { body: JSON.stringify(body) } : {}) });
const statesOf = (list, name) => list.states.filter((st) => st.models.includes(name));

test('/api/cache: lists the saved states by model and clears one model only; that model then re-evaluates', async () => {
  const s = await startServer();
  try {
    await createPlain(s.url);
    let r = await post(s.url, '/api/create', { model: 'other', from: CTX4K_GGUF, stream: false });
    assert.equal(r.status, 200, await r.text());
    const empty = await getCache(s.url);
    assert.deepEqual(empty.states, []);
    assert.equal(empty.total_bytes, 0);
    assert.ok(empty.budget_bytes > 0, 'the default budget is a share of the free space');
    assert.equal(empty.dir, s.kvDir);

    const text = LONG.slice(0, 3000);
    const turn1 = [{ role: 'user', content: text }];
    const p1 = await chat(s.url, turn1);
    const o1r = await post(s.url, '/api/chat', { model: 'other', messages: turn1, options: OPTS, stream: false });
    const o1 = JSON.parse(await o1r.text());
    assert.equal(o1r.status, 200);
    assert.ok(p1.prompt_eval_count > 200 && o1.prompt_eval_count > 200, `${p1.prompt_eval_count}, ${o1.prompt_eval_count}`);
    // Unloading saves each runner's cached sequence.
    for (const model of ['plain', 'other'])
      await post(s.url, '/api/generate', { model, prompt: '', keep_alive: 0, stream: false });
    let list;
    for (let i = 0; i < 100; i++) {
      list = await getCache(s.url);
      if (statesOf(list, 'plain:latest').length && statesOf(list, 'other:latest').length) break;
      await sleep(100);
    }
    const plain = statesOf(list, 'plain:latest'), other = statesOf(list, 'other:latest');
    assert.equal(plain.length, 1, JSON.stringify(list));
    assert.equal(other.length, 1, JSON.stringify(list));
    // `demo` (added at the store's first start) is the same GGUF as `plain`: they share states.
    assert.deepEqual([...plain[0].models].sort(), ['demo:latest', 'plain:latest']);
    assert.ok(['demo:latest', 'plain:latest'].includes(plain[0].model));
    assert.equal(other[0].model, 'other:latest');
    // The sequence holds the prompt and the answer.
    assert.ok(plain[0].tokens >= p1.prompt_eval_count && plain[0].tokens <= p1.prompt_eval_count + p1.eval_count,
      `${plain[0].tokens} tokens saved for a ${p1.prompt_eval_count}-token prompt`);
    assert.match(plain[0].digest, /^sha256:[0-9a-f]{64}$/);
    assert.notEqual(plain[0].digest, other[0].digest);
    assert.equal(plain[0].kv_type, 'f16');
    assert.ok(!Number.isNaN(Date.parse(plain[0].modified_at)));
    const files = kvFiles(s.kvDir);
    assert.equal(list.total_bytes, files.reduce((n, f) => n + statSync(f).size, 0));
    assert.equal(list.total_bytes, plain[0].bytes + other[0].bytes);

    r = await clearCache(s.url, { model: 'nope' });
    assert.equal(r.status, 404, await r.text());
    r = await clearCache(s.url, { model: 'plain' });
    const cleared = JSON.parse(await r.text());
    assert.equal(r.status, 200);
    assert.deepEqual(cleared, { removed: 1, freed_bytes: plain[0].bytes });
    list = await getCache(s.url);
    assert.deepEqual(list.states.map((st) => st.model), ['other:latest'], 'only plain\'s state went');

    // plain's next turn re-evaluates its history; other's comes back from disk.
    const turn2 = (a) => [...turn1, a.message, { role: 'user', content: 'And what does the anvil do?' }];
    const p2 = await chat(s.url, turn2(p1));
    assert.ok(p2.prompt_cache_tokens < 64, `plain cached ${p2.prompt_cache_tokens} after the clear`);
    const o2r = await post(s.url, '/api/chat', { model: 'other', messages: turn2(o1), options: OPTS, stream: false });
    const o2 = JSON.parse(await o2r.text());
    assert.ok(o2.prompt_cache_tokens >= o1.prompt_eval_count, `other cached ${o2.prompt_cache_tokens}\n${s.log()}`);

    // No body: every model's states.
    for (const model of ['plain', 'other'])
      await post(s.url, '/api/generate', { model, prompt: '', keep_alive: 0, stream: false });
    for (let i = 0; i < 100 && !statesOf(await getCache(s.url), 'plain:latest').length; i++) await sleep(100);
    const before = await getCache(s.url);
    // other's turn-1 state may stay beside its turn-2 state: the template renders the
    // answer back with other tokens than the model wrote, so neither holds the other.
    assert.ok(before.states.length >= 2, JSON.stringify(before));
    r = await clearCache(s.url);
    assert.deepEqual(JSON.parse(await r.text()), { removed: before.states.length, freed_bytes: before.total_bytes });
    assert.deepEqual(kvFiles(s.kvDir), []);
    r = await clearCache(s.url, { model: '' });
    assert.equal(r.status, 400, 'an empty name never means every model');
  } finally { await s.stop(); }
});

test('/api/cache needs the API key when one is set', async () => {
  const s = await startServer({ BELLOWS_API_KEY: 'sekrit' });
  try {
    let r = await fetch(s.url + '/api/cache');
    assert.equal(r.status, 401);
    r = await clearCache(s.url);
    assert.equal(r.status, 401);
    const list = await getCache(s.url, { authorization: 'Bearer sekrit' });
    assert.deepEqual(list.states, []);
  } finally { await s.stop(); }
});
