#!/usr/bin/env node
// serve_bench.mjs -- the server-side measurements of bench/run: conversation (TTFT per
// turn), memory (RSS and KV), concurrency (4 streams) and the HTTP path, for Bellows
// (`bellows serve`, Ollama API) and llama.cpp's `llama-server` (OpenAI API). Node 20,
// built-ins only. Every server binds 127.0.0.1 on a free port; every wait and loop is
// bounded; each measurement writes one JSON file. The conversation and the concurrency
// bursts are paired (issue 17): both servers are up at once and take turns, one working
// while the other is idle (waitIdle), so each pair of figures saw the same machine.
//
//   node bench/serve_bench.mjs [options] <conv|conv-aa|conv-short|mem|conc|http> --out FILE --model GGUF
//        --bellows BIN --llama-server BIN [--threads 2] [--quick]
//        [--perf-dir DIR]   conv: profile one more late turn of each server with perf
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import net from 'node:net';
import { hfetch } from './http.mjs';

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

// The assistant's side of the paired conversation: fixed text that neither server
// generated, so both see the same history whatever each one would have answered (the
// random-weight model's greedy answers differ between the two engines after a few tokens).
function assistantText(rand, words, turn) {
  return userText(rand, words, turn).replace(/^Turn \d+\./, `Answer ${turn}.`).replace(/ What do you think\?$/, '');
}

// ---- pairing: one server works while the other is idle ----------------------------------

// CPU time (utime + stime, clock ticks) of processes, all their threads included.
function cpuTicks(pids) {
  let t = 0;
  for (const pid of pids) {
    try {
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // fields from the 3rd on
      t += Number(f[11]) + Number(f[12]);
    } catch { /* gone */ }
  }
  return t;
}

// Waits until the processes have been idle for two 50 ms windows in a row (at most one clock
// tick of CPU, i.e. ~10 ms, in each), at most limitMs. Between the two halves of a pair this
// keeps one server's after-work (Bellows growing its pool ahead of the next turn, a thread
// pool still spinning, llama-server saving its slot) out of the other's measurement.
// Returns the wait in ms, or null when they never went quiet.
async function waitIdle(pids, limitMs = 10000) {
  const t0 = now();
  let prev = cpuTicks(pids), quiet = 0;
  while (now() - t0 < limitMs) {
    await sleep(50);
    const c = cpuTicks(pids);
    quiet = c - prev <= 1 ? quiet + 1 : 0;
    prev = c;
    if (quiet >= 2) return now() - t0;
  }
  return null;
}

// perf (Debian's linux-perf) sampling the given processes, every thread, until stop() is
// called; stop() then writes the hottest symbols to txtFile (perf report --sort dso,symbol)
// and returns them, or null when perf is missing or failed. For the late-turn profile of
// the conversation (issue 17): where one turn's time goes on each server.
function perfRecord(pidList, txtFile) {
  const data = txtFile.replace(/\.txt$/, '') + '.data';
  let proc;
  try {
    proc = spawn('perf', ['record', '-q', '-F', '999', '-p', pidList.join(','), '-o', data], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch { return { started: sleep(0), stop: async () => null }; }
  let failed = false;
  proc.on('error', () => { failed = true; });
  return {
    started: sleep(400), // perf attaches to every thread before the turn is sent
    async stop() {
      if (failed || proc.exitCode !== null) return null;
      proc.kill('SIGINT');
      for (let i = 0; i < 200 && proc.exitCode === null && proc.signalCode === null; i++) await sleep(50);
      try {
        const rep = execFileSync('perf', ['report', '-i', data, '--sort', 'dso,symbol', '--stdio'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20, timeout: 120000 });
        const top = rep.split('\n').filter((l) => /^ +[0-9.]+%/.test(l)).slice(0, 30)
          .map((l) => l.replace(/\s+$/, '').replace(/\s{2,}/g, '  ').trim());
        writeFileSync(txtFile, top.join('\n') + '\n');
        return top;
      } catch { return null; } finally { rmSync(data, { force: true }); rmSync(data + '.old', { force: true }); }
    },
  };
}

// Bellows' pool counters from /metrics (issue 17): growths made on the path of a request and
// ahead of one (while idle after a turn), the pool's cells and the growths' total time. The
// scrape asks the runner for its status, so it is answered after a growth ahead in progress.
async function bellowsPool(h) {
  const t = await (await hfetch(h.url + '/metrics', { timeoutMs: 30000 })).text();
  const num = (re) => { const m = re.exec(t); return m ? Number(m[1]) : null; };
  return {
    growths_ahead: num(/^bellows_kv_pool_growths_total\{[^}]*when="ahead"[^}]*\}\s+([\d.e+]+)/m),
    growths_on_request: num(/^bellows_kv_pool_growths_total\{[^}]*when="on_request"[^}]*\}\s+([\d.e+]+)/m),
    growth_s: num(/^bellows_kv_pool_growth_seconds_total\{[^}]*\}\s+([\d.e+]+)/m),
    pool_cells: num(/^bellows_kv_pool_tokens\{[^}]*\}\s+([\d.e+]+)/m),
  };
}
const pids = (h) => [h.proc.pid, ...(h.runner_pid ? [h.runner_pid] : [])];

// ---- measurements ---------------------------------------------------------------------------

const Q = opt.quick;

// The conversation, paired (issue 17): Bellows and llama-server (with its prompt cache) are
// up at once; each turn goes to one, then -- once that one is idle again -- the same turn to
// the other (Bellows first on odd turns, llama-server first on even ones), then the next turn
// once both are idle. Answers are one token and
// the history carries fixed assistant text instead, so both evaluate the same new tokens
// every turn (the previous answer and the new user message) on the same cached history.
// Per turn: each server's TTFT and counts, and Bellows' pool growths during the turn (on
// the request's path) and right after it (ahead of the next turn). llama-server without its
// cache then runs the first conversation alone, on the same messages, as the reference that
// re-reads the whole history every turn (its budget stops it before a turn past the limit).
//
// aa (conv-aa): the calibration of that pairing -- a second llama-server, the same program
// and build as its peer, takes Bellows' place on the last conversation, so the spread of
// per-turn ratios that two identical servers give on this machine stands next to Bellows'.
// conv-short: the conversation of short turns on a long history alone (part of conv).
async function conversation(aa = false, shortOnly = false) {
  const cfg = Q
    ? { convs: [{ name: '3-turn', turns: 3, seed: 1, nocache: true }], words: 40, answer_words: 8, budget_s: 60 }
    : { convs: [{ name: '10-turn', turns: 10, seed: 1, nocache: true },
      // Short turns on a long history (issue 17): a one-line message after ~13k tokens, where
      // the work outside the evaluation (tokenizing the whole chat again) is a real share.
      { name: '12-turn short on a long history', turns: 12, seed: 3, words: 12, answer_words: 8,
        history: { exchanges: 24, words: 220 } },
      { name: '30-turn', turns: 30, seed: 2 }],
      words: 170, answer_words: 28, budget_s: 240 };
  if (aa) cfg.convs = cfg.convs.slice(-1).map((c) => ({ ...c, nocache: false }));
  if (shortOnly) cfg.convs = cfg.convs.filter((c) => c.history); // conv-short: that conversation alone
  const nameA = aa ? 'llama-server A, cache' : 'bellows', logA = aa ? 'llama-server A' : 'bellows';
  const maxTokens = 1;
  const result = { test: aa ? 'conversation-aa' : 'conversation', quick: Q, paired: true, words_per_turn: cfg.words,
    assistant_words: cfg.answer_words, answer_tokens: maxTokens, runs: [] };
  const ttftOf = (r) => ({ ttft_ms: r.ttft_ms ?? r.total_ms, ttft_at: r.ttft_ms != null ? 'text' : 'end' });
  const script = (conv) => {
    const rand = rng(conv.seed), arand = rng(conv.seed + 1000);
    const words = conv.words ?? cfg.words, answerWords = conv.answer_words ?? cfg.answer_words;
    return Array.from({ length: conv.turns }, (_, i) => ({
      user: userText(rand, words, i + 1), assistant: assistantText(arand, answerWords, i + 1) }));
  };
  const save = () => writeFileSync(opt.out, JSON.stringify({ ...result, partial: true }, null, 1) + '\n');
  // An explicit system message: without one, a template's default system prompt (Qwen2.5's
  // Jinja template has one; libllama's chatml rendering, llama-server's --no-jinja, has none)
  // would give the two servers histories ~10 tokens apart.
  const system = { role: 'system', content: 'You are a helpful assistant.' };
  // Warm-up: 2 tokens, then a 2-turn chat of the conversation's shape on other text, so the
  // first prompt of full size and the first prefix-cache hit (one-off costs: buffers sized
  // and touched, first reuse) are paid before turn 1 on both sides.
  const warmUp = async (h, cachePrompt) => {
    await chat(h, [{ role: 'user', content: 'Hello' }], { maxTokens: 2, cachePrompt });
    const rand = rng(777), arand = rng(778);
    const m = [{ role: 'user', content: userText(rand, cfg.words, 0) }]; // no system message: nothing to share with turn 1
    await chat(h, m, { maxTokens, cachePrompt });
    m.push({ role: 'assistant', content: assistantText(arand, cfg.answer_words, 0) }, { role: 'user', content: userText(rand, cfg.words, 0) });
    await chat(h, m, { maxTokens, cachePrompt });
  };
  for (const conv of cfg.convs) {
    const turns = script(conv);
    const b = aa ? await startLlama(['--cache-prompt']) : await startBellows();
    let l = null;
    const rb = { server: nameA, conversation: conv.name, turns_planned: conv.turns, paired_with: 'llama-server, cache', turns: [] };
    const rl = { server: 'llama-server, cache', conversation: conv.name, turns_planned: conv.turns, paired_with: nameA, turns: [] };
    const poolOf = async () => (aa ? {} : bellowsPool(b));
    try {
      if (!aa) b.runner_pid = (await bellowsPs(b.url))?.runner_pid ?? null;
      l = await startLlama(['--cache-prompt']);
      await warmUp(b, true);
      await waitIdle(pids(b));
      await warmUp(l, true);
      await waitIdle([...pids(b), ...pids(l)]);
      const messages = [system];
      if (conv.history) {
        // The history before turn 1, evaluated once by each side, not timed.
        const rand = rng(conv.seed + 2000);
        for (let i = 0; i < conv.history.exchanges; i++)
          messages.push({ role: 'user', content: userText(rand, conv.history.words, -i - 1) },
            { role: 'assistant', content: assistantText(rand, conv.history.words, -i - 1) });
        for (const [h, opts] of [[b, {}], [l, { cachePrompt: true }]]) {
          const r = await chat(h, [...messages, { role: 'user', content: 'Hello' }], { maxTokens, ...opts });
          log(`${conv.name}: a history of ${turnCounts(h, r).prompt_tokens ?? '?'} tokens evaluated (${h === b ? logA : 'llama-server'}), not timed`);
          await waitIdle([...pids(b), ...pids(l)]);
        }
        rb.history_messages = rl.history_messages = messages.length - 1;
      }
      let pool = await poolOf();
      for (let turn = 1; turn <= conv.turns; turn++) {
        messages.push({ role: 'user', content: turns[turn - 1].user });
        // The order alternates (A B, then B A): whichever side goes first in a pair was
        // measurably slower on this machine (+1.6% in the calibration with A always first).
        let r1, r2, after, wb, wl;
        const runA = async () => {
          r1 = await chat(b, messages, { maxTokens });
          after = await poolOf(); // answered once a growth ahead is done
          wb = await waitIdle(pids(b));
        };
        const runB = async () => {
          r2 = await chat(l, messages, { maxTokens, cachePrompt: true });
          wl = await waitIdle(pids(l));
        };
        if (turn % 2) { await runA(); await runB(); } else { await runB(); await runA(); }
        const d = (k) => (after[k] != null && pool[k] != null ? after[k] - pool[k] : null);
        const growth = { on_request: d('growths_on_request'), ahead: d('growths_ahead'),
          growth_ms: d('growth_s') != null ? d('growth_s') * 1000 : null, pool_cells: after.pool_cells };
        pool = after;
        const row1 = { turn, ...ttftOf(r1), total_ms: r1.total_ms, ...turnCounts(b, r1), pool: growth, idle_wait_ms: wb };
        const row2 = { turn, ...ttftOf(r2), total_ms: r2.total_ms, ...turnCounts(l, r2), idle_wait_ms: wl };
        rb.turns.push(row1);
        rl.turns.push(row2);
        messages.push({ role: 'assistant', content: turns[turn - 1].assistant });
        const g = [growth.on_request ? `pool grew on the request (${growth.pool_cells} cells)` : null,
          growth.ahead ? `pool grew ahead (${growth.pool_cells} cells)` : null].filter(Boolean).join(', ');
        log(`${conv.name} turn ${turn}: ${logA} ${row1.ttft_ms?.toFixed(0)} ms (prompt ${row1.prompt_tokens}, cached ${row1.cached_tokens}), ` +
          `llama-server ${row2.ttft_ms?.toFixed(0)} ms (prompt ${row2.prompt_tokens}, cached ${row2.cached_tokens}), ` +
          `ratio ${(row1.ttft_ms / row2.ttft_ms).toFixed(3)}${g ? `; ${g}` : ''}`);
      }
      // The late-turn profile (issue 17): one more turn to each side, not counted above, with
      // perf sampling that server's processes, so where a late turn's time goes can be set
      // side by side for the same new and cached tokens.
      if (opt.perf_dir && !aa && conv === cfg.convs[cfg.convs.length - 1]) {
        const rand = rng(conv.seed + 5000);
        messages.push({ role: 'user', content: userText(rand, cfg.words, conv.turns + 1) });
        result.late_turn_profile = { conversation: conv.name, turn: conv.turns + 1 };
        for (const [h, side] of [[b, 'bellows'], [l, 'llama-server']]) {
          await waitIdle([...pids(b), ...pids(l)]);
          const file = join(opt.perf_dir, `perf-late-turn-${side}.txt`);
          const p = perfRecord(pids(h), file);
          await p.started;
          const r = await chat(h, messages, { maxTokens, cachePrompt: true });
          const top = await p.stop();
          result.late_turn_profile[side] = { ...ttftOf(r), ...turnCounts(h, r), perf: top ? basename(file) : null };
          log(`late-turn profile, ${side}: ${r.ttft_ms?.toFixed(0)} ms${top ? `; ${top.slice(0, 3).join(' | ')}` : ' (no perf)'}`);
        }
      }
    } finally {
      if (l) { rl.server_info = llamaKv(l.log()); await l.stop(); }
      if (aa) rb.server_info = llamaKv(b.log());
      await b.stop();
    }
    result.runs.push(rb, rl);
    save();
    if (!conv.nocache) continue;
    // The reference without a prompt cache, alone, on the same messages.
    const h = await startLlama(['--no-cache-prompt']);
    const rn = { server: 'llama-server, no cache', conversation: conv.name, turns_planned: conv.turns, paired_with: null,
      budget_s: cfg.budget_s, turns: [] };
    try {
      await warmUp(h, false);
      const messages = [system];
      const t0 = now();
      let lastMs = 0;
      for (let turn = 1; turn <= conv.turns; turn++) {
        const next = turn > 1 ? lastMs * turn / (turn - 1) : 0; // predicted from the last turn
        if (now() - t0 + next > cfg.budget_s * 1000) {
          rn.stopped_at_budget = true;
          log(`llama-server, no cache ${conv.name}: stopping after turn ${turn - 1}: turn ${turn} would end past the ${cfg.budget_s} s budget`);
          break;
        }
        const tTurn = now();
        messages.push({ role: 'user', content: turns[turn - 1].user });
        const r = await chat(h, messages, { maxTokens, cachePrompt: false });
        messages.push({ role: 'assistant', content: turns[turn - 1].assistant });
        lastMs = now() - tTurn;
        const row = { turn, ...ttftOf(r), total_ms: r.total_ms, ...turnCounts(h, r) };
        rn.turns.push(row);
        log(`llama-server, no cache ${conv.name} turn ${turn}: ttft ${row.ttft_ms?.toFixed(0)} ms, prompt ${row.prompt_tokens} (cached ${row.cached_tokens})`);
      }
    } finally {
      rn.server_info = llamaKv(h.log());
      await h.stop();
    }
    result.runs.push(rn);
    save();
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

// Paired bursts of 4 simultaneous streams (issue 17): both servers up at once, llama-server
// with the same total context Bellows' four reservations take. A first burst on each, not
// compared, also pays for Bellows' pool growing to hold four reservations (4096 -> 18432
// cells); then pairs: a burst on one, then -- once it is idle -- the other's burst on the same
// prompts (Bellows first on odd pairs, llama-server first on even ones), new prompts each
// pair. The per-pair ratio of aggregate tokens/s is the figure. When llama-server's chat parser cuts one of its streams short (see chat()) the
// pair did unequal work: it is kept in the data but left out of the ratios, and one more pair
// is run (at most 8 extra).
async function concurrency() {
  // 64 tokens a stream: at 128, llama-server's parser cut 5 of 7 pairs (a longer gibberish
  // answer more often holds what it rejects), leaving 2 to judge on.
  const n = 4, maxTokens = Q ? 16 : 64, words = Q ? 10 : 40, pairsWanted = Q ? 2 : 4, extraSets = Q ? 3 : 8, seed = 99;
  // llama-server's own count of generated tokens (a stream cut by its parser has no final chunk).
  const predicted = async (h) => {
    const t = await (await hfetch(h.url + '/metrics', { timeoutMs: 10000 })).text();
    const m = /^llamacpp:tokens_predicted_total\s+([\d.e+]+)/m.exec(t);
    return m ? Number(m[1]) : null;
  };
  const burst = async (h, b) => {
    const rand = rng(seed);
    for (let skip = 0; skip < b * n; skip++) userText(rand, words, 0); // advance to this burst's prompts
    const prompts = Array.from({ length: n }, (_, i) => userText(rand, words, b * n + i + 1));
    const before = h.kind === 'llama' ? await predicted(h) : 0;
    const t0 = now();
    // An explicit system message, as in the conversation: the same prompt tokens on both.
    const sys = { role: 'system', content: 'You are a helpful assistant.' };
    const res = await Promise.all(prompts.map((p) => chat(h, [sys, { role: 'user', content: p }], { maxTokens })));
    const wall = now() - t0;
    const streams = res.map((r) => ({ ttft_ms: r.ttft_ms, total_ms: r.total_ms, ...turnCounts(h, r) }));
    const tokens = h.kind === 'llama' ? (await predicted(h)) - before
      : streams.reduce((a, r) => a + (r.answer_tokens ?? 0), 0);
    await waitIdle(pids(h));
    return { prompt_set: b, wall_ms: wall, tokens, aggregate_tps: tokens / (wall / 1000), streams,
      mean_ttft_ms: streams.reduce((a, s) => a + (s.ttft_ms ?? 0), 0) / n, cut: streams.some((x) => x.parse_error) };
  };
  const configs = {
    bellows: 'BELLOWS_NUM_PARALLEL=4 (elastic pool)',
    'llama-server': '-np 4 --kv-unified -c 16384',
  };
  const l = await startLlama(['-np', '4', '--kv-unified', '-c', '16384', '--metrics']);
  let b = null;
  const out = { test: 'concurrency', quick: Q, paired: true, streams_n: n, max_tokens: maxTokens, configs, first: {}, pairs: [] };
  const desc = (x) => `${x.tokens} tokens in ${(x.wall_ms / 1000).toFixed(2)} s = ${x.aggregate_tps.toFixed(2)} tok/s`;
  try {
    b = await startBellows({ BELLOWS_NUM_PARALLEL: '4' });
    b.runner_pid = (await bellowsPs(b.url))?.runner_pid ?? null;
    await chat(b, [{ role: 'user', content: 'Hello' }], { maxTokens: 2 });
    await chat(l, [{ role: 'user', content: 'Hello' }], { maxTokens: 2 });
    await waitIdle([...pids(b), ...pids(l)]);
    out.first.bellows = await burst(b, 0);
    out.first['llama-server'] = await burst(l, 0);
    log(`first bursts: bellows ${desc(out.first.bellows)}; llama-server ${desc(out.first['llama-server'])}`);
    let ok = 0;
    for (let set = 1; ok < pairsWanted && set <= pairsWanted + extraSets; set++) {
      // the order alternates, as in the conversation: Bellows first on odd sets
      let xb, xl;
      if (set % 2) { xb = await burst(b, set); xl = await burst(l, set); } else { xl = await burst(l, set); xb = await burst(b, set); }
      const pair = { prompt_set: set, bellows: xb, 'llama-server': xl, cut: xl.cut,
        ratio: xl.cut ? null : xb.aggregate_tps / xl.aggregate_tps };
      out.pairs.push(pair);
      if (!pair.cut) ok++;
      log(`pair ${out.pairs.length} (prompt set ${set}): bellows ${desc(xb)}; llama-server ${desc(xl)}` +
        (pair.cut ? ' (a llama-server stream was cut by its parser: left out)' : `; ratio ${pair.ratio.toFixed(3)}`));
    }
    out.ps = (await bellowsPs(b.url))?.context ?? null;
    out.server_info = llamaKv(l.log());
  } finally {
    if (b) await b.stop();
    await l.stop();
  }
  return out;
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

const tests = { conv: () => conversation(false), 'conv-aa': () => conversation(true),
  'conv-short': () => conversation(false, true), mem: memory, conc: concurrency, http: httpPath };
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
