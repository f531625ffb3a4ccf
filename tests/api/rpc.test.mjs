// Models split across machines through ggml's RPC backend (issue 16), on loopback: two
// `bellows rpc-server` processes, and a server that places the demo model's layers on them
// (BELLOWS_RPC), against a server that keeps them here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { Ollama } from 'ollama';
import { startServer, post, freePort, BIN } from './helpers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const words = (n) => Array.from({ length: n }, (_, i) => `w${i % 10}`).join(' ');

const canConnect = (port) => new Promise((resolve) => {
  const s = net.connect(port, '127.0.0.1');
  s.on('connect', () => { s.destroy(); resolve(true); });
  s.on('error', () => resolve(false));
});

// A `bellows rpc-server` on a free loopback port, ready when its port accepts. Two threads,
// as the local runner (BELLOWS_NUM_THREADS=2 in helpers.mjs): ggml's CPU kernels round
// differently with another thread count once the context is long (a 5000-token turn gave
// another greedy answer with --threads 1), and these tests compare tokens exactly.
async function startRpc() {
  const port = await freePort();
  let log = '';
  const proc = spawn(BIN, ['rpc-server', '--port', String(port), '--threads', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  let up = false;
  for (let i = 0; i < 200 && !up; i++) {
    if (proc.exitCode !== null) break;
    up = /Starting RPC server/.test(log) && await canConnect(port);
    if (!up) await sleep(50);
  }
  if (!up) {
    proc.kill('SIGKILL');
    throw new Error(`bellows rpc-server did not start:\n${log}`);
  }
  return {
    port, endpoint: `127.0.0.1:${port}`, proc, log: () => log,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      for (let i = 0; i < 100 && proc.exitCode === null; i++) await sleep(20);
    },
  };
}

let rpcA, rpcB, local, split, cLocal, cSplit;
before(async () => {
  rpcA = await startRpc();
  rpcB = await startRpc();
  local = await startServer();
  split = await startServer({ BELLOWS_RPC: `${rpcA.endpoint},${rpcB.endpoint}` });
  cLocal = new Ollama({ host: local.url });
  cSplit = new Ollama({ host: split.url });
});
after(async () => {
  await split?.stop();
  await local?.stop();
  await rpcA?.stop();
  await rpcB?.stop();
});

const greedy = (n) => ({ temperature: 0, num_predict: n });

test('the demo model split over two RPC servers answers token for token as a local run', async () => {
  const messages = [{ role: 'user', content: 'Why is the sky blue?' }];
  const a = await cLocal.chat({ model: 'demo', messages, options: greedy(40) });
  const b = await cSplit.chat({ model: 'demo', messages, options: greedy(40) });
  assert.equal(b.eval_count, a.eval_count);
  assert.equal(b.message.content, a.message.content);
  // /api/ps shows where the layers are: both RPC servers hold some, the CPU the rest
  const { models } = await cSplit.ps();
  const devices = models[0].devices;
  const onA = devices.find((d) => d.endpoint === rpcA.endpoint);
  const onB = devices.find((d) => d.endpoint === rpcB.endpoint);
  assert.ok(onA?.layers > 0 && onB?.layers > 0, JSON.stringify(devices));
  assert.deepEqual([onA.name, onB.name], ['RPC0', 'RPC1']);
  assert.equal(devices[0].name, 'CPU');
  const localDevices = (await cLocal.ps()).models[0].devices;
  assert.deepEqual(localDevices.map((d) => d.name), ['CPU']);
  const total = (ds) => ds.reduce((s, d) => s + d.layers, 0);
  assert.equal(total(devices), total(localDevices));
  assert.match(split.log(), /layers on 2 device\(s\)/);
  // a second model cannot hold the servers at the same time (ggml serves one client)
  assert.equal(models.length, 1);
});

test('over RPC the pool grows and the prefix cache serves, with the tokens of a local run', async () => {
  const history = [{ role: 'user', content: 'Tell me a story.' }];
  const a1 = await cLocal.chat({ model: 'demo', messages: history, options: greedy(20) });
  const b1 = await cSplit.chat({ model: 'demo', messages: history, options: greedy(20) });
  assert.equal(b1.message.content, a1.message.content);
  // past the first pool (4096 cells): the pool grows, moving the history's KV state
  const long = [...history, a1.message, { role: 'user', content: words(5000) }];
  const a2 = await cLocal.chat({ model: 'demo', messages: long, options: greedy(20) });
  const b2 = await cSplit.chat({ model: 'demo', messages: long, options: greedy(20) });
  assert.equal(b2.message.content, a2.message.content);
  const ctx = (await cSplit.ps()).models[0].context;
  assert.ok(ctx.pool_growths >= 1 && ctx.pool_tokens > 4096, JSON.stringify(ctx));
  // the next turn evaluates only its new tokens
  const next = [...long, b2.message, { role: 'user', content: 'And then?' }];
  const a3 = await cLocal.chat({ model: 'demo', messages: next, options: greedy(20) });
  const b3 = await cSplit.chat({ model: 'demo', messages: next, options: greedy(20) });
  assert.equal(b3.message.content, a3.message.content);
  assert.ok(b3.prompt_cache_tokens >= b2.prompt_eval_count, `cached ${b3.prompt_cache_tokens} of ${b2.prompt_eval_count}`);
  assert.ok(b3.prompt_eval_count - b3.prompt_cache_tokens < 64, JSON.stringify(b3));
});

test('an RPC server killed mid-stream: that client gets an error line, the next request is served without it', async () => {
  const c = await startRpc();
  const d = await startRpc();
  const s = await startServer({ BELLOWS_RPC: `${c.endpoint},${d.endpoint}` });
  try {
    const client = new Ollama({ host: s.url });
    await client.generate({ model: 'demo', prompt: '' }); // loaded on both servers
    const res = await post(s.url, '/api/generate', { model: 'demo', prompt: 'talk', options: greedy(100000) });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    const first = await reader.read();
    assert.ok(!first.done);
    await d.stop();
    let rest = new TextDecoder().decode(first.value);
    for (let i = 0; i < 100000; i++) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    const last = rest.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)).at(-1);
    assert.ok(last.error, JSON.stringify(last));
    assert.match(last.error, /model runner stopped/);
    assert.ok(last.error.includes(d.endpoint), last.error);
    // the server is up, and the next request reloads on what is left
    const ok = await client.generate({ model: 'demo', prompt: 'again', options: greedy(3) });
    assert.equal(ok.done, true);
    assert.match(s.log(), /loading \S*demo:latest without it/);
    const devices = (await client.ps()).models[0].devices;
    assert.ok(devices.some((x) => x.endpoint === c.endpoint), JSON.stringify(devices));
    assert.ok(!devices.some((x) => x.endpoint === d.endpoint), JSON.stringify(devices));
  } finally {
    await s.stop();
    await c.stop();
    await d.stop();
  }
});

test('an RPC server that is not there fails the load in seconds, naming it', async () => {
  const port = await freePort(); // nobody listens
  const s = await startServer({ BELLOWS_RPC: `127.0.0.1:${port}` });
  // one that accepts and never answers (a wrong port, a hung machine)
  const silent = net.createServer(() => {});
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  const quiet = `127.0.0.1:${silent.address().port}`;
  const t = await startServer({ BELLOWS_RPC: quiet });
  try {
    for (const [srv, endpoint, why] of [[s, `127.0.0.1:${port}`, /does not answer/], [t, quiet, /did not answer HELLO/]]) {
      const t0 = Date.now();
      const r = await post(srv.url, '/api/generate', { model: 'demo', prompt: 'hi', options: { num_predict: 2 } });
      const took = Date.now() - t0;
      assert.equal(r.status, 500);
      const body = await r.json();
      assert.ok(body.error.includes(endpoint), body.error);
      assert.match(body.error, why);
      assert.ok(took < 15000, `took ${took} ms`);
      // the server stays up
      assert.equal((await fetch(srv.url + '/api/tags')).status, 200);
    }
    assert.match(s.log(), /does not answer/); // said at start, too
  } finally {
    await s.stop();
    await t.stop();
    silent.close();
  }
});

test('a bad BELLOWS_RPC or --rpc stops serve at start with a clear message', async () => {
  for (const [args, env, want] of [[['serve'], { BELLOWS_RPC: 'gpu-box' }, /BELLOWS_RPC=gpu-box.*host:port/],
    [['serve', '--rpc', '127.0.0.1:0'], {}, /--rpc=127\.0\.0\.1:0.*host:port/]]) {
    const p = spawn(BIN, args, { env: { ...process.env, BELLOWS_HOST: `127.0.0.1:${await freePort()}`, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (x) => { err += x; });
    const code = await new Promise((r) => p.on('exit', r));
    assert.equal(code, 2);
    assert.match(err, want);
  }
});

test('bellows rpc-server refuses a busy port, and warns when bound where other machines reach it', async () => {
  const busy = await startRpc();
  try {
    const p = spawn(BIN, ['rpc-server', '--port', String(busy.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (x) => { err += x; });
    const code = await new Promise((r) => p.on('exit', r));
    assert.equal(code, 1);
    assert.match(err, /cannot listen on 127\.0\.0\.1:\d+: Address already in use/);
  } finally { await busy.stop(); }
  // Tests bind loopback only: an address of a documentation network (RFC 5737), which no
  // machine has, shows the warning and then the failure to listen.
  const p = spawn(BIN, ['rpc-server', '--host', '192.0.2.1', '--port', String(await freePort())], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (x) => { err += x; });
  const code = await new Promise((r) => p.on('exit', r));
  assert.equal(code, 1);
  assert.match(err, /WARNING: listening on 192\.0\.2\.1:\d+, reachable from other machines.*no authentication/s);
  assert.match(err, /cannot listen on 192\.0\.2\.1:\d+: Cannot assign requested address/);
});
