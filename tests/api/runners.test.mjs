// The scheduler: one runner per model, runner death, corrupt models.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import { startServer, post, ndjson, DEMO_GGUF } from './helpers.mjs';

let srv, ollama;
before(async () => {
  srv = await startServer();
  ollama = new Ollama({ host: srv.url });
});
after(async () => { await srv?.stop(); });

const pidOf = async (name) => (await ollama.ps()).models.find((m) => m.name === name)?.runner_pid;

test('two concurrent chats on one model are served by one runner', async () => {
  const chat = (content, num_ctx) => ollama.chat({ model: 'demo', messages: [{ role: 'user', content }], options: { num_predict: 20, num_ctx } });
  const [a, b] = await Promise.all([chat('first', 2048), chat('second', 8192)]);
  assert.equal(a.done && b.done, true);
  const pid = await pidOf('demo:latest');
  assert.ok(pid > 0);
  const { models } = await ollama.ps();
  assert.equal(models.length, 1);
  assert.equal(models[0].loads, 1);
});

test('killing the runner mid-stream gives that client an error; the next request succeeds', async () => {
  await ollama.generate({ model: 'demo', prompt: '' }); // loaded
  const pid = await pidOf('demo:latest');
  // temperature 0: the demo model's greedy answers never end by themselves (test_demo_words)
  const res = await post(srv.url, '/api/generate', { model: 'demo', prompt: 'talk', options: { num_predict: 100000, temperature: 0 } });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  const first = await reader.read(); // headers and a first chunk are out
  assert.ok(!first.done);
  process.kill(pid, 'SIGKILL');
  let rest = new TextDecoder().decode(first.value);
  for (let i = 0; i < 100000; i++) {
    const { done, value } = await reader.read();
    if (done) break;
    rest += new TextDecoder().decode(value);
  }
  const lines = rest.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  const last = lines.at(-1);
  assert.ok(last.error, JSON.stringify(last));
  assert.match(last.error, /model runner stopped/);
  const ok = await ollama.generate({ model: 'demo', prompt: 'again', options: { num_predict: 3 } });
  assert.equal(ok.done, true);
  const newPid = await pidOf('demo:latest');
  assert.ok(newPid > 0 && newPid !== pid);
});

test('a corrupt GGUF created as a model gives an error, not a crash', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bellows-corrupt-'));
  try {
    // random bytes: rejected at create
    const junk = join(dir, 'junk.gguf');
    writeFileSync(junk, Buffer.from('this is not a gguf file at all'));
    const r = await post(srv.url, '/api/create', { model: 'junk', from: junk, stream: false });
    assert.equal(r.status, 400);
    assert.match((await r.json()).error, /not a GGUF/);
    // a truncated real model: the header reads, the tensor data is missing
    const whole = readFileSync(DEMO_GGUF);
    const cut = join(dir, 'cut.gguf');
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    const c = await post(srv.url, '/api/create', { model: 'cut', from: cut, stream: false });
    if (c.status === 200) {
      const g = await post(srv.url, '/api/generate', { model: 'cut', prompt: 'x', stream: false });
      assert.ok(g.status >= 400, `status ${g.status}`);
      assert.ok((await g.json()).error);
    } else {
      assert.equal(c.status, 400);
    }
    // the server is still serving
    const ok = await ollama.generate({ model: 'demo', prompt: 'still here', options: { num_predict: 2 } });
    assert.equal(ok.done, true);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('only a load-time option reloads the model: use_mmap does, num_ctx does not', async () => {
  const ask = (options) => ollama.chat({ model: 'demo', messages: [{ role: 'user', content: 'x' }], options: { num_predict: 2, ...options } });
  await ask({ num_ctx: 1024 });
  const pid = await pidOf('demo:latest');
  const loads = (await ollama.ps()).models[0].loads;
  await ask({ num_ctx: 32768 });
  assert.equal(await pidOf('demo:latest'), pid, 'num_ctx never reloads');
  await ask({ use_mmap: false });
  const pid2 = await pidOf('demo:latest');
  assert.notEqual(pid2, pid, 'use_mmap changed: a new runner');
  assert.equal((await ollama.ps()).models[0].loads, loads + 1);
  await ask({ use_mmap: false, num_ctx: 2048 });
  assert.equal(await pidOf('demo:latest'), pid2);
  const bad = await post(srv.url, '/api/chat', { model: 'demo', messages: [{ role: 'user', content: 'x' }], options: { use_mmap: 'no' } });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /use_mmap/);
});
