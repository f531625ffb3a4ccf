#!/usr/bin/env node
// rpc_bench.mjs -- bench/rpc's driver (issue 16): the cost of placing a model's layers on
// RPC servers. The same model is served by two Bellows servers at once: `local` keeps
// every layer here, `split` places them on two `bellows rpc-server` processes on loopback
// (BELLOWS_RPC). Measured through the API, one request to each in turn (A B A B ...):
//
//   prefill  a raw prompt of ~P tokens, 1 token generated: prompt tokens / prompt time
//   decode   a 1-word raw prompt, N tokens generated: tokens / eval time
//   context  the same decode bytes after histories of 1, 1000 and 3000 tokens
//   bytes    what went through the RPC servers' connections, both ways (the kernel's TCP
//            counters, `ss -ti`) during each split request, per token; and during the
//            load (the weights go over once)
//
// Prompts differ per repetition (no prefix reuse). Loopback has no wire latency: on a real
// network each decode step adds a round trip per machine. A benchmark: it records, it
// judges nothing. Node 20, built-ins only; everything binds 127.0.0.1 on free ports.
//
//   node bench/rpc_bench.mjs --bellows BIN --model GGUF --out FILE.json
//        [--prompt 512] [--tokens 64] [--reps 3] [--threads 2]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';

const argv = process.argv.slice(2);
const opt = { prompt: 512, tokens: 64, reps: 3, threads: 2 };
for (let i = 0; i < argv.length; i += 2) {
  if (!argv[i].startsWith('--') || i + 1 >= argv.length) die(`bad argument ${argv[i]}`);
  opt[argv[i].slice(2)] = argv[i + 1];
}
for (const k of ['bellows', 'model', 'out']) if (!opt[k]) die(`--${k} is required`);
const P = Number(opt.prompt), N = Number(opt.tokens), R = Number(opt.reps);

function die(msg) {
  process.stderr.write(`rpc: ${msg}\n`);
  process.exit(2);
}
const t0 = Date.now();
const log = (msg) => process.stderr.write(`[rpc ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null; };

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}
const canConnect = (port) => new Promise((resolve) => {
  const s = net.connect(port, '127.0.0.1');
  s.on('connect', () => { s.destroy(); resolve(true); });
  s.on('error', () => resolve(false));
});

const procs = [];
async function startRpc() {
  const port = await freePort();
  const proc = spawn(opt.bellows, ['rpc-server', '--port', String(port), '--threads', String(opt.threads)],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  procs.push(proc);
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) die('bellows rpc-server exited');
    if (await canConnect(port)) return { endpoint: `127.0.0.1:${port}`, port };
    await sleep(50);
  }
  die('bellows rpc-server did not start');
}

async function startServer(store, env) {
  const port = await freePort();
  let out = '';
  const proc = spawn(opt.bellows, ['serve'], {
    env: { ...process.env, BELLOWS_HOST: `127.0.0.1:${port}`, BELLOWS_MODELS: store, BELLOWS_KV_CACHE_DISK: '0',
      BELLOWS_NUM_THREADS: String(opt.threads), BELLOWS_KEEP_ALIVE: '-1',
      https_proxy: 'http://127.0.0.1:9', http_proxy: 'http://127.0.0.1:9', no_proxy: '127.0.0.1,localhost', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(proc);
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300 && proc.exitCode === null; i++) {
    try { if ((await fetch(url + '/health')).ok) return { url, log: () => out }; } catch { /* not yet */ }
    await sleep(100);
  }
  die(`bellows serve did not start:\n${out.slice(-2000)}`);
}

async function post(h, path, body) {
  const r = await fetch(h.url + path, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(600000) });
  const text = await r.text();
  if (!r.ok) die(`${path}: HTTP ${r.status} ${text}`);
  return JSON.parse(text);
}

// Bytes through the RPC servers' connections: the kernel's TCP counters of each accepted
// socket (`ss -ti`: bytes_sent + bytes_received), both directions.
const tcpBytes = (port) => {
  const out = execFileSync('ss', ['-tinH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  let n = 0;
  for (const m of out.matchAll(/bytes_(?:sent|received):(\d+)/g)) n += Number(m[1]);
  return n;
};
let rpcPorts = [];
const rpcBytes = () => rpcPorts.reduce((s, p) => s + tcpBytes(p), 0);

const WORDS = 'the of and to in is was for on with as by at from this that be are it an or not but had have has'.split(' ');
const prompt = (n, seed) => Array.from({ length: n }, (_, i) => WORDS[(i * 7 + seed * 13) % WORDS.length]).join(' ');

async function generate(h, text, n, extra = {}) {
  return post(h, '/api/generate', { model: 'bench', prompt: text, raw: true, stream: false,
    options: { temperature: 0, repeat_penalty: 1, num_predict: n, ...extra } });
}

async function main() {
  const a = await startRpc(), b = await startRpc();
  rpcPorts = [a.port, b.port];
  const storeL = mkdtempSync(join(tmpdir(), 'bellows-rpcb-')), storeS = mkdtempSync(join(tmpdir(), 'bellows-rpcb-'));
  const local = await startServer(storeL, {});
  const split = await startServer(storeS, { BELLOWS_RPC: `${a.endpoint},${b.endpoint}` });
  for (const h of [local, split]) await post(h, '/api/create', { model: 'bench', from: opt.model, stream: false });
  const before = rpcBytes();
  await generate(local, 'Hello', 1);
  const tLoad = performance.now();
  await generate(split, 'Hello', 1);
  const load = { ms: +(performance.now() - tLoad).toFixed(0), rpc_bytes: rpcBytes() - before };
  log(`split load: ${load.ms} ms, ${(load.rpc_bytes / 1048576).toFixed(1)} MiB over RPC`);
  const ps = await (await fetch(split.url + '/api/ps')).json();
  const rows = {};
  const measure = async (runs, reps, seed0) => {
    for (const [name] of runs) rows[name] = { prefill: [], decode: [], prefill_bytes: [], decode_bytes: [] };
    for (let rep = 0; rep < reps; rep++) {
      for (const [name, h, extra] of runs) {
        const b0 = rpcBytes();
        const p = await generate(h, prompt(P, seed0 + rep * 3 + runs.findIndex((r) => r[0] === name)), 1, extra);
        const b1 = rpcBytes();
        const d = await generate(h, WORDS[(rep * 3 + 1) % WORDS.length], N, extra);
        const b2 = rpcBytes();
        rows[name].prefill.push(p.prompt_eval_count / (p.prompt_eval_duration / 1e9));
        rows[name].decode.push(d.eval_count / (d.eval_duration / 1e9));
        rows[name].prefill_bytes.push((b1 - b0) / p.prompt_eval_count);
        rows[name].decode_bytes.push((b2 - b1) / d.eval_count);
        log(`rep ${rep} ${name}: prefill ${rows[name].prefill.at(-1).toFixed(1)} t/s (${p.prompt_eval_count} tokens), decode ${rows[name].decode.at(-1).toFixed(1)} t/s`);
      }
    }
  };
  await measure([['local', local, {}], ['split', split, {}]], R, 0);
  // The same split with the output layer kept here (num_gpu = the blocks only): the logits
  // (vocabulary x 4 bytes a token) then never cross the network. A reload first.
  const blocks = ps.models[0].devices.reduce((n, d) => n + d.layers, 0) - 1;
  await generate(split, 'Hello', 1, { num_gpu: blocks });
  const psOut = await (await fetch(split.url + '/api/ps')).json();
  // Decode bytes by context length (the history is cached: only the answer's steps count)
  const byContext = [];
  for (const n of [1, 1000, 3000]) {
    const pr = prompt(n, 7);
    await generate(split, pr, 1);
    const b1 = rpcBytes();
    const d = await generate(split, pr + ' the', 32);
    byContext.push({ context_tokens: d.prompt_eval_count, decode_bytes_per_token: Math.round((rpcBytes() - b1) / d.eval_count),
      decode_tps: +(d.eval_count / (d.eval_duration / 1e9)).toFixed(1) });
    log(`context ${d.prompt_eval_count}: ${byContext.at(-1).decode_bytes_per_token} bytes a decoded token`);
  }
  await measure([['local', local, {}], ['split_output_here', split, { num_gpu: blocks }]], R, 100);
  const m = (xs) => +median(xs).toFixed(1);
  const result = {
    date: new Date().toISOString(), model: opt.model, threads: Number(opt.threads), prompt_tokens: P, decode_tokens: N, reps: R,
    cpus: cpus().length, loadavg_at_start: loadavg(),
    rpc_servers: 2, transport: 'TCP over loopback', placement: ps.models?.[0]?.devices,
    load,
    placement_output_here: psOut.models?.[0]?.devices,
    split_decode_by_context: byContext,
    raw: rows,
  };
  for (const k of Object.keys(rows)) {
    result[k] = { prefill_tps: m(rows[k].prefill), decode_tps: m(rows[k].decode) };
    if (k !== 'local') Object.assign(result[k], { prefill_bytes_per_token: Math.round(median(rows[k].prefill_bytes)),
      decode_bytes_per_token: Math.round(median(rows[k].decode_bytes)) });
  }
  result.ratio = {};
  for (const k of ['split', 'split_output_here'])
    result.ratio[k] = { prefill: +(result[k].prefill_tps / result.local.prefill_tps).toFixed(3), decode: +(result[k].decode_tps / result.local.decode_tps).toFixed(3) };
  writeFileSync(opt.out, JSON.stringify(result, null, 2) + '\n');
  const row = (name, r, q) => `  ${name.padEnd(24)} ${String(r.prefill_tps).padStart(11)} ${String(r.decode_tps).padStart(11)}` +
    (q ? `   ${String(q.prefill).padStart(6)} ${String(q.decode).padStart(6)}   ${r.prefill_bytes_per_token}, ${r.decode_bytes_per_token}` : '') + '\n';
  process.stderr.write(`\n  ${''.padEnd(24)} prefill t/s  decode t/s   ratio (prefill, decode)   RPC bytes/token (prefill, decode)\n` +
    row('local', result.local) + row('split over 2', result.split, result.ratio.split) +
    row('split, output layer here', result.split_output_here, result.ratio.split_output_here) + `written ${opt.out}\n`);
  for (const s of [storeL, storeS]) rmSync(s, { recursive: true, force: true });
}

// The servers' pipes keep node's loop alive: stop them, then exit.
process.on('exit', () => { for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL'); });
main().then(() => process.exit(0), (e) => { process.stderr.write(`rpc: ${e.stack ?? e}\n`); process.exit(1); });
