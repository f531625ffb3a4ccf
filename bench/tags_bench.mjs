#!/usr/bin/env node
// tags_bench.mjs -- latency of GET /api/tags under concurrent keep-alive connections
// (issue #13 item 3). Starts `bellows serve` on 127.0.0.1 with a temporary store, adds
// copies of the demo model so the listing has something to read, then runs CONN
// connections that each send requests back to back until TOTAL are done. Prints one JSON
// line: requests, connections, p50/p90/p99/max in ms, requests per second. Node 20,
// built-ins only; every wait is bounded.
//
// Closed loop (default): every connection sends its next request as soon as the last one
// is answered, so 64 requests are always in flight and latency is 64 / throughput (Little's
// law): it measures saturation, client included. --rate R paces the connections to R
// requests per second in all (open loop): latency is then the server's time per request
// plus the wait behind the others, what a client sees when the server is not saturated.
//
//   node bench/tags_bench.mjs [--bin build/src/bellows] [--demo build/models/demo.gguf]
//        [--conn 64] [--total 20000] [--models 20] [--url http://127.0.0.1:PORT]
// With --url an already running server is measured instead (nothing is added to it).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import http from 'node:http';
import net from 'node:net';

const argv = process.argv.slice(2);
const opt = { bin: 'build/src/bellows', demo: 'build/models/demo.gguf', conn: 64, total: 20000, models: 20, url: null, rate: 0 };
for (let i = 0; i < argv.length; i += 2) {
  const k = argv[i].replace(/^--/, '');
  if (!(k in opt) || i + 1 >= argv.length) {
    process.stderr.write(`tags_bench: unknown or incomplete argument ${argv[i]}\n`);
    process.exit(2);
  }
  opt[k] = typeof opt[k] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

async function start() {
  const port = await freePort();
  const store = mkdtempSync(join(tmpdir(), 'bellows-tags-bench-'));
  const proc = spawn(resolve(opt.bin), ['serve'], {
    env: { ...process.env, BELLOWS_HOST: `127.0.0.1:${port}`, BELLOWS_MODELS: store, BELLOWS_KV_CACHE_DISK: '0',
           BELLOWS_DEMO_MODEL: resolve(opt.demo), https_proxy: 'http://127.0.0.1:9', http_proxy: 'http://127.0.0.1:9' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(url + '/health')).ok) break; } catch { await sleep(50); }
  }
  for (let i = 1; i < opt.models; i++) {
    const r = await fetch(url + '/api/copy', { method: 'POST', body: JSON.stringify({ source: 'demo', destination: `bench-${i}` }) });
    if (!r.ok) throw new Error(`copy failed: ${r.status}`);
  }
  return { url, stop: () => { proc.kill('SIGTERM'); rmSync(store, { recursive: true, force: true }); } };
}

function get(agent, url) {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const req = http.get(url + '/api/tags', { agent }, (r) => {
      r.on('data', () => {});
      r.on('end', () => (r.statusCode === 200 ? res(Number(process.hrtime.bigint() - t0) / 1e6) : rej(new Error(`status ${r.statusCode}`))));
    });
    req.on('error', rej);
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
  });
}

const srv = opt.url ? { url: opt.url, stop: () => {} } : await start();
const agent = new http.Agent({ keepAlive: true, maxSockets: opt.conn });
const lat = [];
let next = 0;
const gap = opt.rate > 0 ? (opt.conn / opt.rate) * 1000 : 0; // ms between one connection's requests
const worker = async (k) => {
  let due = performance.now() + (gap * k) / opt.conn; // spread the connections' phases
  while (next++ < opt.total) {
    if (gap) {
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      due += gap;
    }
    lat.push(await get(agent, srv.url));
  }
};
for (let i = 0; i < 200; i++) await get(agent, srv.url); // warm-up: connections and caches
const t0 = performance.now();
await Promise.all(Array.from({ length: opt.conn }, (_, k) => worker(k)));
const secs = (performance.now() - t0) / 1000;
agent.destroy();
srv.stop();
lat.sort((a, b) => a - b);
const q = (p) => +lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(3);
console.log(JSON.stringify({ requests: lat.length, connections: opt.conn, rate: opt.rate || 'closed loop', models: opt.models, p50_ms: q(0.5), p90_ms: q(0.9),
                             p99_ms: q(0.99), max_ms: +lat[lat.length - 1].toFixed(3), rps: Math.round(lat.length / secs) }));
