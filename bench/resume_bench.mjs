#!/usr/bin/env node
// resume_bench.mjs -- bench/resume's driver (issue 15): a long conversation resumed after a
// server restart. Per size (tokens of history), time to first token of the next turn:
//
//   disk    a restarted server on the same store and KV directory: the history comes back
//           from the state the first server saved when it stopped (SIGTERM);
//   reeval  a server with the disk cache off (BELLOWS_KV_CACHE_DISK=0): the history is
//           evaluated again;
//   warm    the same server as `disk`, another question on the same history with as many
//           new tokens as the disk turn evaluated: the pool holds the history (the best
//           case, no disk).
//
// Every server is warmed up first (runner loaded, weights paged in: a 2-token "Hello"),
// so the times are the turn's own. TTFT is the client's: request sent -> first chunk with
// answer text. A benchmark, not a test: it records, it judges nothing. Node 20, built-ins
// only; servers bind 127.0.0.1 on free ports with a temporary store; every request has a
// time limit and the whole run stops at --limit-s (what was measured is still written).
//
//   node bench/resume_bench.mjs --bellows BIN --model GGUF --out FILE.json
//        [--sizes 4096,16384,30720] [--threads 2] [--answer 16] [--limit-s 2400]
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hfetch } from './http.mjs';
import net from 'node:net';

const argv = process.argv.slice(2);
const opt = { sizes: '4096,16384,30720', threads: 2, answer: 16, 'limit-s': 2400 };
for (let i = 0; i < argv.length; i += 2) {
  if (!argv[i].startsWith('--') || i + 1 >= argv.length) die(`bad argument ${argv[i]}`);
  opt[argv[i].slice(2)] = argv[i + 1];
}
for (const k of ['bellows', 'model', 'out']) if (!opt[k]) die(`--${k} is required`);
const sizes = String(opt.sizes).split(',').map(Number).filter((n) => n > 0);
const limitMs = Number(opt['limit-s']) * 1000;
const t0 = Date.now();
const left = () => limitMs - (Date.now() - t0);

function die(msg) {
  process.stderr.write(`resume: ${msg}\n`);
  process.exit(2);
}
const log = (msg) => process.stderr.write(`[resume ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// ---- servers --------------------------------------------------------------------------------

async function startServer(store, kvDir, env = {}) {
  const port = await freePort();
  let out = '';
  const proc = spawn(opt.bellows, ['serve'], {
    env: {
      ...process.env,
      BELLOWS_HOST: `127.0.0.1:${port}`,
      BELLOWS_MODELS: store,
      BELLOWS_KV_CACHE_DIR: kvDir,
      BELLOWS_KV_CACHE_DISK: '8G',
      BELLOWS_NUM_THREADS: String(opt.threads),
      BELLOWS_KEEP_ALIVE: '-1',
      BELLOWS_POOL_SHRINK_AFTER: '1h',
      https_proxy: 'http://127.0.0.1:9', http_proxy: 'http://127.0.0.1:9', no_proxy: '127.0.0.1,localhost',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300 && proc.exitCode === null; i++) {
    try {
      if ((await fetch(url + '/health', { signal: AbortSignal.timeout(2000) })).ok)
        return { url, proc, log: () => out };
    } catch { /* not up yet */ }
    await sleep(100);
  }
  proc.kill('SIGKILL');
  throw new Error(`bellows serve did not start:\n${out.slice(-2000)}`);
}

// SIGTERM: the runner saves its cached sequences (bounded by the server), then exits.
async function stopServer(h) {
  if (h.proc.exitCode !== null) return;
  h.proc.kill('SIGTERM');
  for (let i = 0; i < 600 && h.proc.exitCode === null && h.proc.signalCode === null; i++) await sleep(50);
  if (h.proc.exitCode === null && h.proc.signalCode === null) h.proc.kill('SIGKILL');
}

async function postJson(h, path, body, timeoutMs = 60000) {
  const r = await fetch(h.url + path, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${text}`);
  return text;
}

// One streamed chat turn, greedy. Returns { ttft_ms, total_ms, text, final }.
async function chat(h, messages, maxTokens) {
  const timeoutMs = Math.max(10000, left());
  const start = performance.now();
  // through node:http (http.mjs): the 30k history's first turn evaluates for longer than
  // fetch waits for a first byte
  const res = await hfetch(h.url + '/api/chat', { method: 'POST', timeoutMs, body: JSON.stringify({ model: 'bench', messages,
    stream: true, options: { temperature: 0, repeat_penalty: 1, num_predict: maxTokens } }) });
  if (!res.ok) throw new Error(`chat: HTTP ${res.status} ${await res.text()}`);
  const dec = new TextDecoder();
  let buf = '', text = '', ttft = null, final = null;
  for await (const chunk of res.body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      const o = JSON.parse(line);
      if (o.error) throw new Error(`chat stream error: ${o.error}`);
      const piece = o.message?.content ?? '';
      if (piece && ttft === null) ttft = performance.now() - start;
      text += piece;
      if (o.done) final = o;
    }
  }
  return { ttft_ms: ttft ?? performance.now() - start, total_ms: performance.now() - start, text, final };
}

const counts = (r) => ({
  ttft_ms: +r.ttft_ms.toFixed(1),
  prompt_tokens: r.final?.prompt_eval_count ?? null,
  cached_tokens: r.final?.prompt_cache_tokens ?? 0,
  server_prompt_ms: r.final?.prompt_eval_duration != null ? +(r.final.prompt_eval_duration / 1e6).toFixed(1) : null,
});

// ---- the history ------------------------------------------------------------------------------

const WORDS = ('the forge keeps bellows working while anvil rings and smith turns iron over coal fire heat ' +
  'water steel hammer blade shape edge temper quench slow careful hand eye light dark morning evening ' +
  'village road river stone bridge market bread salt wool cloth rope cart horse field grain mill wheel').split(' ');

function text(nWords, seed) {
  let x = seed >>> 0;
  const out = [];
  for (let i = 0; i < nWords; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out.push(WORDS[x % WORDS.length]);
    if (i % 17 === 16) out.push('.');
  }
  return out.join(' ');
}

// A first message whose rendered prompt is about `target` tokens (the server counts them:
// _debug_render_only renders and tokenizes without generating).
async function historyOf(h, target, seed) {
  let words = Math.round(target * 0.75);
  let msg = text(words, seed), tokens = 0;
  for (let i = 0; i < 3; i++) {
    const d = JSON.parse(await postJson(h, '/api/chat',
      { model: 'bench', messages: [{ role: 'user', content: msg }], _debug_render_only: true, stream: false }));
    tokens = d.debug_info.prompt_tokens;
    if (Math.abs(tokens - target) <= target * 0.01) break;
    words = Math.max(16, Math.round(words * target / tokens));
    msg = text(words, seed);
  }
  return { msg, tokens };
}

// ---- one size -----------------------------------------------------------------------------------

async function measure(size, store, gguf, created) {
  const kvDir = mkdtempSync(join(tmpdir(), 'bellows-resume-kv-'));
  const row = { size, limit_hit: false };
  let h;
  try {
    // 1. the conversation's first turn, then a stop: the runner saves the sequence.
    h = await startServer(store, kvDir);
    if (!created.done) {
      await postJson(h, '/api/create', { model: 'bench', from: gguf, stream: false }, 300000);
      created.done = true;
    }
    await chat(h, [{ role: 'user', content: 'Hello' }], 2);
    const hist = await historyOf(h, size, size);
    const first = [{ role: 'user', content: hist.msg }];
    const a1 = await chat(h, first, Number(opt.answer));
    row.history_tokens = a1.final?.prompt_eval_count ?? hist.tokens;
    row.first_turn = counts(a1);
    log(`${size}: turn 1, ${row.history_tokens} tokens evaluated, ttft ${a1.ttft_ms.toFixed(0)} ms`);
    const tStop = performance.now();
    await stopServer(h);
    row.stop_ms = +(performance.now() - tStop).toFixed(0);
    const files = readdirSync(kvDir).filter((f) => f.endsWith('.kv'));
    row.saved_files = files.length;
    row.saved_bytes = files.reduce((n, f) => n + statSync(join(kvDir, f)).size, 0);
    log(`${size}: stopped in ${row.stop_ms} ms; ${files.length} state(s), ${(row.saved_bytes / 1048576).toFixed(1)} MiB on disk`);

    const history = [...first, { role: 'assistant', content: a1.text }];
    const q2 = [...history, { role: 'user', content: 'What does the smith do with the iron next?' }];

    // 2. restarted on the same store and directory: the turn from disk, then a warm one.
    if (left() < 0) throw Object.assign(new Error('time limit'), { limit: true });
    h = await startServer(store, kvDir);
    const tLoad = performance.now();
    await chat(h, [{ role: 'user', content: 'Hello' }], 2);
    row.load_ms = +(performance.now() - tLoad).toFixed(0);
    const d = await chat(h, q2, Number(opt.answer));
    row.disk = counts(d);
    row.disk_log = (h.log().match(/prompt cache from disk[^\n]*/) ?? [null])[0];
    log(`${size}: after restart, ttft ${d.ttft_ms.toFixed(0)} ms (${row.disk.cached_tokens} of ${row.disk.prompt_tokens} from ${row.disk_log ? 'disk' : 'nowhere'})`);
    // The warm turn: another question on the same history, the pool holding it, with as
    // many new tokens to evaluate as the disk turn had (that one also evaluates the first
    // answer's last token, sampled but never evaluated, and the turn markers): the question
    // is padded until the counts match (a few short tries, each branching from the history).
    const needed = row.disk.prompt_tokens - row.disk.cached_tokens;
    let pad = 0, w;
    for (let i = 0; i < 4; i++) {
      const q = 'Where does the miller take the grain after that?' + (pad > 0 ? ' ' + text(pad, 977 + i) : '');
      w = await chat(h, [...history, { role: 'user', content: q }], Number(opt.answer));
      const got = (w.final?.prompt_eval_count ?? 0) - (w.final?.prompt_cache_tokens ?? 0);
      if (got === needed) break;
      pad = Math.max(0, pad + needed - got);
    }
    row.warm = counts(w);
    row.disk.new_tokens = needed;
    row.warm.new_tokens = row.warm.prompt_tokens - row.warm.cached_tokens;
    log(`${size}: warm in-pool hit, ttft ${w.ttft_ms.toFixed(0)} ms (${row.warm.cached_tokens} cached, ${row.warm.new_tokens} new; disk: ${needed} new)`);
    await stopServer(h);

    // 3. the disk cache off: the history is evaluated again.
    if (left() < 0) throw Object.assign(new Error('time limit'), { limit: true });
    h = await startServer(store, kvDir, { BELLOWS_KV_CACHE_DISK: '0' });
    await chat(h, [{ role: 'user', content: 'Hello' }], 2);
    const r = await chat(h, q2, Number(opt.answer));
    row.reeval = counts(r);
    log(`${size}: re-evaluated, ttft ${r.ttft_ms.toFixed(0)} ms (${row.reeval.cached_tokens} cached)`);
    await stopServer(h);
    h = null;
    row.reeval_over_disk = +(row.reeval.ttft_ms / row.disk.ttft_ms).toFixed(2);
    row.disk_over_warm = +(row.disk.ttft_ms / row.warm.ttft_ms).toFixed(2);
    row.same_answer = d.text === r.text;
  } catch (e) {
    row.error = e.message.slice(0, 2000);
    row.limit_hit = !!e.limit || left() < 0;
    log(`${size}: ${row.limit_hit ? 'stopped at the time limit' : 'FAILED'}: ${e.message.split('\n')[0]}`);
  } finally {
    if (h) await stopServer(h);
    rmSync(kvDir, { recursive: true, force: true });
  }
  return row;
}

// ---- main ------------------------------------------------------------------------------------------

const store = mkdtempSync(join(tmpdir(), 'bellows-resume-'));
const result = {
  test: 'resume after restart (issue 15)',
  model: opt.model,
  threads: Number(opt.threads),
  answer_tokens: Number(opt.answer),
  machine: { cpu: cpus()[0]?.model ?? '?', cores: cpus().length, loadavg_start: loadavg().map((x) => +x.toFixed(2)) },
  started_at: new Date().toISOString(),
  limit_s: limitMs / 1000,
  sizes: [],
};
const created = { done: false };
try {
  for (const size of sizes) {
    if (left() < 0) {
      result.sizes.push({ size, skipped: 'the run reached its time limit' });
      continue;
    }
    result.sizes.push(await measure(size, store, opt.model, created));
    writeFileSync(opt.out, JSON.stringify(result, null, 2) + '\n');
  }
} finally {
  rmSync(store, { recursive: true, force: true });
}
result.loadavg_end = loadavg().map((x) => +x.toFixed(2));
result.total_s = +((Date.now() - t0) / 1000).toFixed(1);
writeFileSync(opt.out, JSON.stringify(result, null, 2) + '\n');
process.stderr.write('\nsize    history  ttft disk  reeval     warm   reeval/disk  disk/warm  state MiB\n');
for (const r of result.sizes) {
  if (!r.disk || !r.reeval) {
    process.stderr.write(`${String(r.size).padEnd(8)}${r.skipped ?? r.error?.split('\n')[0] ?? 'incomplete'}\n`);
    continue;
  }
  process.stderr.write(`${String(r.size).padEnd(8)}${String(r.history_tokens).padStart(7)}  ${r.disk.ttft_ms.toFixed(0).padStart(7)} ms` +
    `${r.reeval.ttft_ms.toFixed(0).padStart(7)} ms${r.warm.ttft_ms.toFixed(0).padStart(7)} ms${String(r.reeval_over_disk).padStart(12)}x` +
    `${String(r.disk_over_warm).padStart(10)}x${(r.saved_bytes / 1048576).toFixed(1).padStart(11)}\n`);
}
process.stderr.write(`\nresume: ${result.total_s} s in all (limit ${limitMs / 1000} s); results in ${opt.out}\n`);
