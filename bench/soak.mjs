#!/usr/bin/env node
// soak.mjs -- bench/soak's driver (issue 13, item 9): many concurrent clients of mixed
// traffic against one `bellows serve`, for a fixed time; reports requests and errors by
// kind and the server's and runners' RSS over time. A benchmark, not a test: it judges
// nothing by the clock, it records. Node 20, built-ins only. The server binds 127.0.0.1 on
// a free port with a temporary store; every request has a time limit; the run is bounded.
//
//   node bench/soak.mjs --bellows BIN --models DIR --mkmodel BIN --llama LLAMA_SRC --out FILE.json
//        [--clients 64] [--seconds 600] [--warmup 60] [--sample 5]
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import net from 'node:net';

const argv = process.argv.slice(2);
const opt = { clients: 64, seconds: 600, warmup: 60, sample: 5 };
for (let i = 0; i < argv.length; i += 2) {
  if (!argv[i].startsWith('--') || i + 1 >= argv.length) die(`bad argument ${argv[i]}`);
  opt[argv[i].slice(2)] = argv[i + 1];
}
for (const k of ['clients', 'seconds', 'warmup', 'sample']) opt[k] = Number(opt[k]);
for (const k of ['bellows', 'models', 'mkmodel', 'llama', 'out']) if (!opt[k]) die(`--${k} is required`);

function die(msg) {
  process.stderr.write(`soak: ${msg}\n`);
  process.exit(2);
}
const log = (msg) => process.stderr.write(`soak: ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// One request on its own connection; resolves { status, body } or rejects (network error,
// timeout). abortAfterBytes: drop the connection once that many response bytes came (a
// client that goes away mid-stream).
function request(port, method, path, body, { timeoutMs = 120000, abortAfterBytes = 0 } = {}) {
  return new Promise((resolve, reject) => {
    const data = body == null ? null : JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false,
      headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} });
    const timer = setTimeout(() => req.destroy(new Error('timeout')), timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.on('response', (res) => {
      let got = 0, text = '';
      res.on('data', (c) => {
        got += c.length;
        if (text.length < 65536) text += c;
        if (abortAfterBytes && got >= abortAfterBytes) {
          clearTimeout(timer);
          req.destroy();
          resolve({ status: res.statusCode, body: text, dropped: true });
        }
      });
      res.on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode, body: text }); });
      res.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
    if (data) req.write(data);
    req.end();
  });
}

function rssKiB(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)/m);
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}

// The server's children (runners), from /proc.
function children(pid) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

// ---- the traffic ------------------------------------------------------------------------------

const words = ['context', 'window', 'breathes', 'pool', 'grows', 'tokens', 'cache', 'model', 'prompt', 'answer'];
const sentence = (n) => Array.from({ length: n }, (_, i) => words[(i * 7 + n) % words.length]).join(' ');

// Each kind: a weight and a function returning the request to send.
const KINDS = [
  ['chat_stream', 25, () => ['POST', '/api/chat', { model: 'demo', messages: [{ role: 'user', content: sentence(12) }],
    options: { num_predict: 24 } }]],
  ['chat', 15, () => ['POST', '/api/chat', { model: 'demo', stream: false, messages: [
    { role: 'system', content: 'Be brief.' }, { role: 'user', content: sentence(30) },
    { role: 'assistant', content: sentence(20) }, { role: 'user', content: sentence(8) }], options: { num_predict: 16 } }]],
  ['generate', 15, () => ['POST', '/api/generate', { model: 'demo', prompt: sentence(20), stream: false,
    options: { num_predict: 16 } }]],
  ['v1_chat_stream', 10, () => ['POST', '/v1/chat/completions', { model: 'demo', stream: true, max_tokens: 16,
    messages: [{ role: 'user', content: sentence(10) }] }]],
  ['embed', 10, () => ['POST', '/api/embed', { model: 'embed', input: [sentence(6), sentence(9)] }]],
  ['tags', 8, () => ['GET', '/api/tags', null]],
  ['ps', 5, () => ['GET', '/api/ps', null]],
  ['disconnect', 10, () => ['POST', '/api/chat', { model: 'demo', messages: [{ role: 'user', content: sentence(15) }],
    options: { num_predict: 200 } }, { abortAfterBytes: 200 }]],
  ['bad_json', 2, () => ['POST', '/api/chat', '{"model": "demo", "messages": [']],
];
const totalWeight = KINDS.reduce((a, k) => a + k[1], 0);

function pick(rng) {
  let x = rng() * totalWeight;
  for (const k of KINDS) if ((x -= k[1]) < 0) return k;
  return KINDS[0];
}

function lcg(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296);
}

// ---- the run ------------------------------------------------------------------------------------

const port = await freePort();
const store = mkdtempSync(join(tmpdir(), 'bellows-soak-'));
const embedGguf = join(store, 'embed.gguf');
execFileSync(opt.mkmodel, ['--arch', 'bert', '--type', 'f16', '--layers', '2', '--hidden', '64', '--ffn', '128',
  '--heads', '4', '--kv-heads', '4', '--context-length', '2048', '--vocab', join(opt.llama, 'models/ggml-vocab-bert-bge.gguf'),
  '-o', embedGguf], { stdio: 'ignore' });
let serverLog = '';
const srv = spawn(opt.bellows, ['serve'], {
  env: { ...process.env, BELLOWS_HOST: `127.0.0.1:${port}`, BELLOWS_MODELS: join(store, 'models'), BELLOWS_KV_CACHE_DIR: join(store, 'kv'),
    BELLOWS_DEMO_MODEL: join(opt.models, 'demo.gguf'), BELLOWS_NUM_THREADS: '2' },
  stdio: ['ignore', 'pipe', 'pipe'],
});
srv.stdout.on('data', (d) => { serverLog = (serverLog + d).slice(-20000); });
srv.stderr.on('data', (d) => { serverLog = (serverLog + d).slice(-20000); });
let serverExit = null;
srv.on('exit', (code, sig) => { serverExit = { code, sig }; });
for (let i = 0; i < 200; i++) {
  try { if ((await request(port, 'GET', '/health', null, { timeoutMs: 1000 })).status === 200) break; } catch { /* not yet */ }
  await sleep(50);
}
const created = await request(port, 'POST', '/api/create', { model: 'embed', from: embedGguf, stream: false });
if (created.status !== 200) die(`creating the embedding model failed: ${created.body}`);

const counts = {}; // kind -> { ok, by status / error }
const note = (kind, what) => {
  const c = (counts[kind] ??= { total: 0, outcomes: {} });
  c.total++;
  c.outcomes[what] = (c.outcomes[what] ?? 0) + 1;
};
const samples = [];
const t0 = Date.now();
const end = t0 + opt.seconds * 1000;
const sampler = setInterval(() => {
  const runners = children(srv.pid);
  samples.push({ t: Math.round((Date.now() - t0) / 1000), server_kib: rssKiB(srv.pid),
    runners_kib: runners.reduce((a, p) => a + rssKiB(p), 0), runners: runners.length });
}, opt.sample * 1000);

async function client(id) {
  const rng = lcg(id * 7919 + 1);
  while (Date.now() < end && serverExit === null) {
    const [kind, , make] = pick(rng);
    const [method, path, body, o] = make();
    try {
      const raw = typeof body === 'string';
      const r = raw ? await rawPost(path, body) : await request(port, method, path, body, o);
      note(kind, r.dropped ? 'dropped' : String(r.status));
    } catch (e) {
      note(kind, `error:${e.code ?? e.message}`);
    }
  }
}
function rawPost(path, text) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } });
    req.on('error', reject);
    req.on('response', (res) => { res.resume(); res.on('end', () => resolve({ status: res.statusCode })); });
    req.end(text);
  });
}

log(`${opt.clients} clients for ${opt.seconds} s on 127.0.0.1:${port}`);
await Promise.all(Array.from({ length: opt.clients }, (_, i) => client(i)));
clearInterval(sampler);
const metrics = await request(port, 'GET', '/metrics', null).catch(() => ({ body: '' }));
const ps = await request(port, 'GET', '/api/ps', null).catch(() => ({ body: '{}' }));
const deaths = Number((metrics.body.match(/^bellows_runner_deaths_total (\d+)/m) ?? [0, -1])[1]);
const exitedDuringRun = serverExit;
srv.kill('SIGTERM');
for (let i = 0; i < 100 && serverExit === null; i++) await sleep(50);
if (serverExit === null) srv.kill('SIGKILL');
rmSync(store, { recursive: true, force: true });

const warm = samples.filter((s) => s.t >= opt.warmup);
const first = warm[0] ?? samples[0], last = samples.at(-1);
let fivexx = 0, requests = 0;
for (const c of Object.values(counts)) {
  requests += c.total;
  for (const [k, n] of Object.entries(c.outcomes)) if (/^5\d\d$/.test(k) && k !== '503') fivexx += n;
}
const usedTokens = (JSON.parse(ps.body || '{}').models ?? []).reduce((a, m) => a + (m.context?.used_tokens ?? 0), 0);
const result = {
  clients: opt.clients, seconds: opt.seconds, warmup_s: opt.warmup, requests, counts,
  five_xx_other_than_503: fivexx, runner_deaths: deaths,
  server_exit_during_run: exitedDuringRun,
  rss_after_warmup: first, rss_at_end: last, samples, used_tokens_at_end: usedTokens,
};
writeFileSync(opt.out, JSON.stringify(result, null, 2));
log(`${requests} requests, ${fivexx} 5xx other than 503, ${deaths} runner deaths; server RSS ` +
    `${first?.server_kib} -> ${last?.server_kib} KiB, runners ${first?.runners_kib} -> ${last?.runners_kib} KiB`);
if (exitedDuringRun) log(`the server exited during the run: ${JSON.stringify(serverExit)}\n${serverLog}`);
