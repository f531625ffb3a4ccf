#!/usr/bin/env node
// serve_bench.mjs -- the server-side measurements of bench/run: conversation (TTFT per
// turn), memory (RSS and KV), concurrency (4 streams) and the HTTP path, for Bellows
// (`bellows serve`, Ollama API) and llama.cpp's `llama-server` (OpenAI API). Node 20,
// built-ins only. Every server binds 127.0.0.1 on a free port and runs alone; every wait
// and loop is bounded; each measurement writes one JSON file.
//
//   node bench/serve_bench.mjs [options] <conv|mem|conc|http> --out FILE --model GGUF
//        --bellows BIN --llama-server BIN [--threads 2] [--quick]
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';
import http from 'node:http';

// ---- arguments ------------------------------------------------------------------------

const argv = process.argv.slice(2);
let cmd = null;
const opt = { threads: 2, quick: false };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--quick') opt.quick = true;
  else if (a.startsWith('--') && i + 1 < argv.length) opt[a.slice(2).replace(/-/g, '_')] = argv[++i];
  else if (!a.startsWith('-') && cmd === null) cmd = a;
  else die(`unknown argument ${a}`);
}
opt.threads = Number(opt.threads);
for (const k of ['out', 'model', 'bellows', 'llama_server']) if (!opt[k]) die(`--${k.replace(/_/g, '-')} is required`);
opt.model = resolve(opt.model);

function die(msg) {
  process.stderr.write(`serve_bench: ${msg}\n`);
  process.exit(2);
}
const log = (msg) => process.stderr.write(`serve_bench: ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

// ---- HTTP ----------------------------------------------------------------------------------

// A small fetch over node:http with a new connection per request (agent: false). Both servers
// close connections after some responses (cpp-httplib after a stream), and a pooled
// keep-alive socket closed under the client fails the next request ("other side closed").
// timeoutMs bounds the whole exchange, body included.
function hfetch(url, { method = 'GET', headers = {}, body, timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, agent: false,
      headers: { ...(body != null ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}), ...headers } });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${u.pathname}: no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    timer.unref(); // bounds the request; never keeps the process alive by itself
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.on('response', (res) => {
      res.on('end', () => clearTimeout(timer));
      res.on('close', () => clearTimeout(timer));
      const readAll = async () => { let t = ''; for await (const c of res) t += c; return t; };
      resolve({ ok: res.statusCode >= 200 && res.statusCode < 300, status: res.statusCode, body: res,
        text: readAll, json: async () => JSON.parse(await readAll()) });
    });
    if (body != null) req.write(body);
    req.end();
  });
}

// ---- processes --------------------------------------------------------------------------

function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function waitHealthy(url, proc, what, limitMs) {
  const t0 = now();
  while (now() - t0 < limitMs) {
    if (proc.exitCode !== null) break;
    try {
      const r = await hfetch(url + '/health', { timeoutMs: 2000 });
      await r.text();
      if (r.ok) return;
    } catch { /* not up yet */ }
    await sleep(100);
  }
  throw new Error(`${what} did not become healthy within ${limitMs / 1000} s`);
}

async function stopProc(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  for (let i = 0; i < 100 && proc.exitCode === null && proc.signalCode === null; i++) await sleep(50);
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  for (let i = 0; i < 40 && proc.exitCode === null && proc.signalCode === null; i++) await sleep(50);
}

// Bellows: `bellows serve` with a temporary store; the model is registered with
// /api/create and loaded with an empty chat. Returns a handle.
async function startBellows(env = {}) {
  const port = await freePort();
  const store = mkdtempSync(join(tmpdir(), 'bellows-bench-'));
  let out = '';
  const proc = spawn(opt.bellows, ['serve'], {
    env: {
      ...process.env,
      BELLOWS_HOST: `127.0.0.1:${port}`,
      BELLOWS_MODELS: store,
      BELLOWS_KV_CACHE_DIR: join(store, 'kv'), // the bench's own, removed with its store
      BELLOWS_NUM_THREADS: String(opt.threads),
      BELLOWS_KEEP_ALIVE: '-1',
      BELLOWS_POOL_SHRINK_AFTER: '1h',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const url = `http://127.0.0.1:${port}`;
  const h = {
    kind: 'bellows', url, proc, log: () => out,
    async stop() { await stopProc(proc); rmSync(store, { recursive: true, force: true }); },
  };
  try {
    await waitHealthy(url, proc, 'bellows serve', 30000);
    const c = await hfetch(url + '/api/create', {
      method: 'POST', body: JSON.stringify({ model: 'bench', from: opt.model, stream: false }),
      timeoutMs: 120000,
    });
    const ct = await c.text();
    if (!c.ok) throw new Error(`/api/create: ${c.status} ${ct}`);
    const t0 = now();
    const l = await hfetch(url + '/api/chat', {
      method: 'POST', body: JSON.stringify({ model: 'bench', messages: [], stream: false }),
      timeoutMs: 120000,
    });
    if (!l.ok) throw new Error(`load: ${l.status} ${await l.text()}`);
    await l.text();
    h.load_ms = now() - t0;
  } catch (e) {
    await h.stop();
    throw new Error(`${e.message}\n--- bellows log:\n${out.slice(-3000)}`);
  }
  return h;
}

async function bellowsPs(url) {
  const r = await hfetch(url + '/api/ps', { timeoutMs: 30000 });
  const j = await r.json();
  return j.models?.[0] ?? null;
}

// llama-server from build-peers/, args appended to the common ones. --no-jinja: chats are
// rendered by libllama's llama_chat_apply_template, as Bellows renders them, so both servers
// see the same prompt tokens. Chats go through /apply-template + /completion rather than
// /v1/chat/completions, whose output parser rejects the random-weight model's gibberish
// ("does not match the expected ... format") when it happens to contain template markers.
async function startLlama(args = []) {
  const port = await freePort();
  let out = '';
  const all = ['-m', opt.model, '--host', '127.0.0.1', '--port', String(port), '-t', String(opt.threads), '--no-jinja', ...args];
  const proc = spawn(opt.llama_server, all, { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const url = `http://127.0.0.1:${port}`;
  const h = { kind: 'llama', url, proc, args: all, log: () => out, async stop() { await stopProc(proc); } };
  const t0 = now();
  try {
    await waitHealthy(url, proc, 'llama-server', 180000);
  } catch (e) {
    await h.stop();
    throw new Error(`${e.message}\n--- llama-server log:\n${out.slice(-3000)}`);
  }
  h.load_ms = now() - t0;
  return h;
}

// The KV size llama-server logs at -lv 4 (info lines of libllama): "llama_kv_cache: size =
// 384.00 MiB ( 32768 cells, ...", and what flash attention "auto" resolved to.
function llamaKv(logText) {
  const m = /llama_kv_cache: size =\s*([\d.]+) MiB \(\s*(\d+) cells/.exec(logText);
  const fa = /resolve_fused_ops: Flash Attention (\w+)/.exec(logText) ?? /flash_attn\s*=\s*(\w+)/.exec(logText);
  return m ? { kv_bytes: Math.round(Number(m[1]) * 1048576), kv_cells: Number(m[2]), flash_attn: fa?.[1] ?? null }
    : { kv_bytes: null, kv_cells: null, flash_attn: fa?.[1] ?? null };
}

// ---- streaming chat clients ---------------------------------------------------------------

// One streamed chat turn, greedy with no repeat penalty on both servers (llama-server's
// default; Ollama's is 1.1), so both follow the same tokens and do the same sampling work.
// Returns { ttft_ms, total_ms, text, n_chunks, chunk_ms[], final }.
// TTFT: from sending the request to the first chunk that carries answer text.
async function chat(h, messages, opts) {
  try {
    return await chatOnce(h, messages, opts);
  } catch (e) {
    await sleep(200);
    const st = h.proc.exitCode !== null ? `exited with ${h.proc.exitCode}` : h.proc.signalCode ? `killed by ${h.proc.signalCode}` : 'running';
    throw new Error(`${h.kind} (${st}): ${e.message}${e.cause ? ` (${e.cause.message ?? e.cause})` : ''}\n--- its log, last lines:\n${h.log().slice(-2500)}`);
  }
}

async function chatOnce(h, messages, { maxTokens, cachePrompt = true, timeoutMs = 600000 }) {
  let t0 = now();
  let res;
  if (h.kind === 'bellows') {
    res = await hfetch(h.url + '/api/chat', {
      method: 'POST',
      body: JSON.stringify({ model: 'bench', messages, stream: true, options: { temperature: 0, repeat_penalty: 1, num_predict: maxTokens } }),
      timeoutMs: timeoutMs,
    });
  } else {
    // llama-server: the chat is rendered by its /apply-template (not timed), then streamed
    // from /completion, which passes the model's text through as is.
    const tr = await hfetch(h.url + '/apply-template', {
      method: 'POST', body: JSON.stringify({ messages }),
      timeoutMs: 30000,
    });
    if (!tr.ok) throw new Error(`llama-server /apply-template: HTTP ${tr.status} ${await tr.text()}`);
    const { prompt } = await tr.json();
    t0 = now();
    res = await hfetch(h.url + '/completion', {
      method: 'POST',
      body: JSON.stringify({ prompt, stream: true, temperature: 0, repeat_penalty: 1, n_predict: maxTokens, cache_prompt: cachePrompt }),
      timeoutMs: timeoutMs,
    });
  }
  if (!res.ok) throw new Error(`${h.kind} chat: HTTP ${res.status} ${await res.text()}`);
  const dec = new TextDecoder();
  let buf = '', text = '', ttft = null, final = null, nChunks = 0, parseError = false;
  const chunkMs = [];
  const onObj = (o) => {
    let piece = '';
    if (h.kind === 'bellows') {
      if (o.error) throw new Error(`bellows stream error: ${o.error}`);
      piece = o.message?.content ?? '';
      if (o.done) final = o;
    } else {
      if (o.error) {
        // llama-server parses every answer with its chat parser, which rejects text holding
        // invalid UTF-8 -- the random-weight model's gibberish sometimes does. The tokens were
        // generated and streamed; only the final chunk with the timings is lost.
        if (!/does not match the expected/.test(o.error.message ?? '')) throw new Error(`llama-server stream error: ${JSON.stringify(o.error)}`);
        parseError = true;
        return;
      }
      piece = o.content ?? '';
      if (o.stop) final = o;
    }
    if (piece) {
      const t = now() - t0;
      if (ttft === null) ttft = t;
      chunkMs.push(t);
      nChunks++;
      text += piece;
    }
  };
  for await (const chunk of res.body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      let line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      if (h.kind !== 'bellows') {
        if (!line.startsWith('data:')) continue;
        line = line.slice(5).trim();
        if (line === '[DONE]') continue;
      }
      onObj(JSON.parse(line));
    }
  }
  const total = now() - t0;
  return { ttft_ms: ttft, total_ms: total, text, n_chunks: nChunks, chunk_ms: chunkMs, final, parse_error: parseError };
}

// Server-side counts of a finished turn, named the same for both servers.
function turnCounts(h, r) {
  const f = r.final ?? {};
  if (h.kind === 'bellows') {
    return {
      prompt_tokens: f.prompt_eval_count ?? null, cached_tokens: f.prompt_cache_tokens ?? null,
      answer_tokens: f.eval_count ?? null, server_prompt_ms: f.prompt_eval_duration != null ? f.prompt_eval_duration / 1e6 : null,
      server_eval_ms: f.eval_duration != null ? f.eval_duration / 1e6 : null, context_length: f.context_length ?? null,
    };
  }
  const t = f.timings ?? {};
  if (r.parse_error) return { prompt_tokens: null, cached_tokens: null, answer_tokens: null, answer_chunks: r.n_chunks,
    server_prompt_ms: null, server_eval_ms: null, context_length: null, parse_error: true };
  return {
    prompt_tokens: t.prompt_n != null ? t.prompt_n + (t.cache_n ?? 0) : f.tokens_evaluated ?? null,
    cached_tokens: t.cache_n ?? null, answer_tokens: t.predicted_n ?? f.tokens_predicted ?? null,
    server_prompt_ms: t.prompt_ms ?? null, server_eval_ms: t.predicted_ms ?? null, context_length: null,
  };
}

// ---- user text ------------------------------------------------------------------------------

const WORDS = ('the river city morning light garden window market letter school family forest summer winter ' +
  'number system people country small large long great little old right high different early important public ' +
  'same able open second free young local water house music paper table story road field village friend ' +
  'mountain station kitchen bridge teacher doctor student question answer problem reason moment evening ' +
  'history science language picture garden animal weather journey machine travel dinner holiday harbor island ' +
  'walk write read bring carry follow listen remember explain describe consider imagine build grow turn keep ' +
  'quiet bright heavy simple careful sudden gentle strange ancient modern northern southern distant narrow').split(/\s+/);

function rng(seed) {
  let x = (seed * 2654435761) >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >> 17; x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
}

// About `words` words of plain sentences (~1.1 tokens a word with the qwen2 tokenizer).
function userText(rand, words, turn) {
  const out = [`Turn ${turn}.`];
  let n = 0;
  while (n < words) {
    const len = 8 + Math.floor(rand() * 10);
    const s = [];
    for (let i = 0; i < len && n < words; i++, n++) s.push(WORDS[Math.floor(rand() * WORDS.length)]);
    s[0] = s[0][0].toUpperCase() + s[0].slice(1);
    out.push(s.join(' ') + (rand() < 0.2 ? ',' : '.'));
  }
  out.push('What do you think?');
  return out.join(' ');
}

// ---- measurements ---------------------------------------------------------------------------

const Q = opt.quick;

async function conversation() {
  const cfg = Q
    ? { convs: [{ name: '3-turn', turns: 3, seed: 1 }], words: 40, answer: 8, budget_s: { default: 60 } }
    : { convs: [{ name: '10-turn', turns: 10, seed: 1 }, { name: '30-turn', turns: 30, seed: 2 }], words: 170, answer: 32,
      // llama-server without its cache re-reads the whole history every turn (turn 30: ~7000
      // tokens, ~60 s here): its 30-turn run stops at this budget and records the turns it
      // reached (its 10-turn run shows the same climb in full). The others never get near theirs.
      budget_s: { default: 420, 'llama-server, no cache:30-turn': 120, 'llama-server, no cache:10-turn': 240 } };
  const servers = [
    { name: 'bellows', start: () => startBellows() },
    { name: 'llama-server, cache', start: () => startLlama(['--cache-prompt']), cachePrompt: true },
    { name: 'llama-server, no cache', start: () => startLlama(['--no-cache-prompt']), cachePrompt: false },
  ];
  const result = { test: 'conversation', quick: Q, words_per_turn: cfg.words, answer_tokens: cfg.answer, runs: [] };
  for (const conv of cfg.convs) {
    for (const s of servers) {
      const budget = (cfg.budget_s[`${s.name}:${conv.name}`] ?? cfg.budget_s.default) * 1000;
      const h = await s.start();
      const run = { server: s.name, conversation: conv.name, turns_planned: conv.turns, budget_s: budget / 1000, turns: [] };
      try {
        // Warm-up outside the conversation (llama-server warms up at start; the runner's
        // first request would otherwise pay for paging the weights in).
        await chat(h, [{ role: 'user', content: 'Hello' }], { maxTokens: 2, cachePrompt: s.cachePrompt });
        const rand = rng(conv.seed);
        const messages = [];
        const t0 = now();
        let lastMs = 0;
        for (let turn = 1; turn <= conv.turns; turn++) {
          // Stop before a turn that would end past the budget, predicting it from the last one.
          const next = turn > 1 ? lastMs * turn / (turn - 1) : 0;
          if (now() - t0 + next > budget) {
            run.stopped_at_budget = true;
            log(`${s.name} ${conv.name}: stopping after turn ${turn - 1}: turn ${turn} would end past the ${budget / 1000} s budget`);
            break;
          }
          const tTurn = now();
          messages.push({ role: 'user', content: userText(rand, cfg.words, turn) });
          const r = await chat(h, messages, { maxTokens: cfg.answer, cachePrompt: s.cachePrompt });
          messages.push({ role: 'assistant', content: r.text });
          lastMs = now() - tTurn;
          const row = { turn, ttft_ms: r.ttft_ms, total_ms: r.total_ms, ...turnCounts(h, r) };
          run.turns.push(row);
          log(`${s.name} ${conv.name} turn ${turn}: ttft ${r.ttft_ms?.toFixed(0)} ms, prompt ${row.prompt_tokens} (cached ${row.cached_tokens}), answer ${row.answer_tokens}`);
        }
      } finally {
        if (h.kind === 'llama') run.server_info = llamaKv(h.log());
        await h.stop();
      }
      result.runs.push(run);
      writeFileSync(opt.out, JSON.stringify({ ...result, partial: true }, null, 1) + '\n'); // kept if the step is killed
    }
  }
  return result;
}

async function memory() {
  const word = { maxTokens: Q ? 4 : 16 };
  const rows = [];
  // Bellows: the runner holds the model and the KV pool; serve is the HTTP front.
  {
    const h = await startBellows();
    try {
      let ps = await bellowsPs(h.url);
      const pid = ps.runner_pid;
      const row = { server: 'bellows', config: 'default (elastic pool)', runner_pid: pid };
      row.after_load = { rss_kib: rssKiB(pid), serve_rss_kib: rssKiB(h.proc.pid), kv_bytes: ps.context?.kv_bytes ?? null,
        pool_cells: ps.context?.pool_tokens ?? null };
      const r = await chat(h, [{ role: 'user', content: 'Hello' }], word);
      ps = await bellowsPs(h.url);
      row.after_chat = { rss_kib: rssKiB(pid), serve_rss_kib: rssKiB(h.proc.pid), kv_bytes: ps.context?.kv_bytes ?? null,
        pool_cells: ps.context?.pool_tokens ?? null, answer_tokens: r.final?.eval_count ?? null };
      rows.push(row);
    } finally { await h.stop(); }
  }
  for (const [config, args] of [['default context (model max)', []], ['-c 4096', ['-c', '4096']]]) {
    const h = await startLlama([...args, '-lv', '4']); // -lv 4: libllama's KV line
    try {
      const pid = h.proc.pid;
      const kv = llamaKv(h.log());
      const row = { server: 'llama-server', config, args: h.args.slice(2).join(' '), flash_attn: kv.flash_attn,
        n_ctx: kv.kv_cells };
      row.after_load = { rss_kib: rssKiB(pid), kv_bytes: kv.kv_bytes, pool_cells: kv.kv_cells };
      const r = await chat(h, [{ role: 'user', content: 'Hello' }], word);
      row.after_chat = { rss_kib: rssKiB(pid), kv_bytes: kv.kv_bytes, pool_cells: kv.kv_cells,
        answer_tokens: r.final?.timings?.predicted_n ?? null };
      rows.push(row);
    } finally { await h.stop(); }
  }
  for (const r of rows) log(`${r.server} ${r.config}: RSS ${r.after_load.rss_kib} -> ${r.after_chat.rss_kib} KiB, KV ${r.after_chat.kv_bytes} B`);
  return { test: 'memory', quick: Q, rows };
}

// Two bursts of 4 simultaneous streams per server: the first also pays for Bellows' pool
// growing to hold four reservations (4096 -> 18432 cells); the second, with new prompts, is
// the steady state the target compares. llama-server runs first: when its chat parser cuts
// a stream short (see chat()), that burst did less work, so the prompt set is replaced
// (up to 6 sets) until all its streams run to the end; Bellows then gets the same prompts.
async function concurrency() {
  const n = 4, maxTokens = Q ? 16 : 128, words = Q ? 10 : 40;
  const servers = [
    { name: 'llama-server', config: '-np 4 --kv-unified -c 16384', start: () => startLlama(['-np', '4', '--kv-unified', '-c', '16384', '--metrics']) },
    { name: 'bellows', config: 'BELLOWS_NUM_PARALLEL=4 (elastic pool)', start: () => startBellows({ BELLOWS_NUM_PARALLEL: '4' }) },
  ];
  // llama-server's own count of generated tokens (a stream cut by its parser has no final chunk).
  const predicted = async (h) => {
    const t = await (await hfetch(h.url + '/metrics', { timeoutMs: 10000 })).text();
    const m = /^llamacpp:tokens_predicted_total\s+([\d.e+]+)/m.exec(t);
    return m ? Number(m[1]) : null;
  };
  const burst = async (h, seed, b) => {
    const rand = rng(seed);
    for (let skip = 0; skip < b * n; skip++) userText(rand, words, 0); // advance to this burst's prompts
    const prompts = Array.from({ length: n }, (_, i) => userText(rand, words, b * n + i + 1));
    const before = h.kind === 'llama' ? await predicted(h) : 0;
    const t0 = now();
    const res = await Promise.all(prompts.map((p) => chat(h, [{ role: 'user', content: p }], { maxTokens })));
    const wall = now() - t0;
    const streams = res.map((r) => ({ ttft_ms: r.ttft_ms, total_ms: r.total_ms, ...turnCounts(h, r) }));
    const tokens = h.kind === 'llama' ? (await predicted(h)) - before
      : streams.reduce((a, r) => a + (r.answer_tokens ?? 0), 0);
    return { wall_ms: wall, tokens, aggregate_tps: tokens / (wall / 1000), streams, cut: streams.some((x) => x.parse_error) };
  };
  const rows = [];
  let seed = 99, attempts = 0;
  for (const s of servers) {
    const h = await s.start();
    try {
      await chat(h, [{ role: 'user', content: 'Hello' }], { maxTokens: 2 });
      let bursts;
      for (;;) {
        bursts = [await burst(h, seed, 0), await burst(h, seed, 1)];
        bursts.forEach((x, b) => log(`${s.name} burst ${b + 1} (prompt set ${seed}): ${x.tokens} tokens in ${(x.wall_ms / 1000).toFixed(2)} s = ${x.aggregate_tps.toFixed(2)} tok/s${x.cut ? ' (a stream was cut by the parser)' : ''}`));
        attempts++;
        if (s.name !== 'llama-server' || !bursts.some((x) => x.cut) || attempts >= 6) break;
        seed++;
      }
      const last = bursts[bursts.length - 1];
      const row = { server: s.name, config: s.config, streams_n: n, max_tokens: maxTokens, prompt_set: seed,
        wall_ms: last.wall_ms, tokens: last.tokens, aggregate_tps: last.aggregate_tps, streams: last.streams,
        cut_streams: bursts.some((x) => x.cut), first_burst: bursts[0] };
      if (h.kind === 'llama') row.server_info = llamaKv(h.log());
      else row.ps = (await bellowsPs(h.url))?.context ?? null;
      rows.push(row);
    } finally { await h.stop(); }
  }
  return { test: 'concurrency', quick: Q, rows: rows.reverse(), prompt_sets_replaced: seed - 99 };
}

// The HTTP path (issue 4): per-token streaming cost of HTTP over the runner's own timing,
// and /api/tags latency under 64 connections with wrk when it is installed.
async function httpPath() {
  const h = await startBellows();
  const out = { test: 'http', quick: Q };
  try {
    const maxTokens = Q ? 16 : 64;
    await chat(h, [{ role: 'user', content: 'Hello' }], { maxTokens: 2 });
    const samples = [];
    for (let i = 0; i < (Q ? 1 : 3); i++) {
      const r = await chat(h, [{ role: 'user', content: `Tell me a story number ${i}.` }], { maxTokens });
      const f = r.final ?? {};
      const n = r.chunk_ms.length;
      // Client: first text chunk to last; runner: eval_duration over its eval_count - 1 steps.
      const clientPerTok = n > 1 ? (r.chunk_ms[n - 1] - r.chunk_ms[0]) / (n - 1) : null;
      const runnerPerTok = f.eval_count > 1 ? f.eval_duration / 1e6 / (f.eval_count - 1) : null;
      samples.push({ chunks: n, eval_count: f.eval_count, client_ms_per_token: clientPerTok, runner_ms_per_token: runnerPerTok,
        overhead_ms_per_token: clientPerTok != null && runnerPerTok != null ? clientPerTok - runnerPerTok : null });
    }
    out.stream = samples;
    try {
      execFileSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' });
      const dur = Q ? '2s' : '5s';
      const txt = execFileSync('wrk', ['-t2', '-c64', `-d${dur}`, '--latency', `${h.url}/api/tags`],
        { encoding: 'utf8', timeout: 60000 });
      const lat = (p) => { const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(txt); return m ? Number(m[1]) * { us: 1e-3, ms: 1, s: 1e3 }[m[2]] : null; };
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(txt);
      out.tags = { connections: 64, duration: dur, p50_ms: lat(50), p99_ms: lat(99), requests_per_s: rps ? Number(rps[1]) : null };
    } catch (e) {
      out.tags = { skipped: `wrk not available or failed: ${String(e.message).split('\n')[0]}` };
    }
  } finally { await h.stop(); }
  log(`http: ${JSON.stringify(out)}`);
  return out;
}

// ---- main ----------------------------------------------------------------------------------

const tests = { conv: conversation, mem: memory, conc: concurrency, http: httpPath };
if (!tests[cmd]) die(`usage: serve_bench.mjs <${Object.keys(tests).join('|')}> --out FILE ...`);
const t0 = now();
try {
  const r = await tests[cmd]();
  r.elapsed_s = (now() - t0) / 1000;
  r.model = opt.model;
  r.threads = opt.threads;
  writeFileSync(opt.out, JSON.stringify(r, null, 1) + '\n');
  log(`${cmd}: done in ${r.elapsed_s.toFixed(1)} s -> ${opt.out}`);
  if (process.env.BENCH_DEBUG) log(`active: ${process.getActiveResourcesInfo().join(", ")}`);
} catch (e) {
  log(`${cmd} failed: ${e.stack ?? e}`);
  process.exit(1);
}
