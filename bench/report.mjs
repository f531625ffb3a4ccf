#!/usr/bin/env node
// report.mjs -- turns the raw results of one bench/run into the results page: a table per
// measurement (Bellows, peer, ratio, target, met), CSV files, and gnuplot PNGs.
//
//   node bench/report.mjs --raw DIR --md FILE
//
// DIR holds what bench/run wrote: meta.json, engine-<type>.json (bellows-bench),
// llama-bench-<type>.json (llama-bench -o json), conv.json, mem.json, conc.json, http.json,
// templates.md / templates.json / templates.csv (bellows-template-bench).
// Missing files are reported as "not measured". CSVs, .dat/.gp files and PNGs go into DIR;
// the page links them relative to its own folder.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { basename, dirname, join, relative } from 'node:path';

const args = process.argv.slice(2);
const opt = {};
for (let i = 0; i < args.length; i += 2) opt[args[i].replace(/^--/, '')] = args[i + 1];
if (!opt.raw || !opt.md) {
  process.stderr.write('usage: report.mjs --raw DIR --md FILE\n');
  process.exit(2);
}
const raw = opt.raw;
const rel = (f) => relative(dirname(opt.md), join(raw, f));
const load = (f) => {
  const p = join(raw, f);
  if (!existsSync(p)) return null;
  try { return JSON.parse(readFileSync(p, 'utf8')); } catch { return null; }
};

const meta = load('meta.json') ?? {};
const fmt = (x, d = 1) => (x == null || Number.isNaN(x) ? '–' : Number(x).toFixed(d));
const ratio = (a, b) => (a == null || b == null || b === 0 ? null : a / b);
const met = (r, ok) => (r == null ? '–' : ok(r) ? '**yes**' : '**no**');
const mib = (b) => (b == null ? null : b / 1048576);
const md = [];
const csv = (name, header, rows) => {
  writeFileSync(join(raw, name), [header.join(','), ...rows.map((r) => r.map((v) => (v == null ? '' : typeof v === 'string' && /[,"]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v)).join(','))].join('\n') + '\n');
};
const summary = []; // [target, value, met]

md.push(`# Bellows benchmark — ${meta.date ?? '?'} on ${meta.machine ?? '?'}`);
md.push('');
if (meta.quick) {
  md.push('> **Quick run** (`bench/run --quick`): the tiny demo model, few turns and tokens. A smoke test of the');
  md.push('> benchmark itself — its figures say nothing about Bellows\' speed.');
  md.push('');
}
md.push('| | |');
md.push('|---|---|');
md.push(`| Bellows commit | \`${meta.commit ?? '?'}\`${meta.dirty ? ' (with uncommitted changes)' : ''} |`);
md.push(`| llama.cpp (peers and engine) | \`${meta.llama_commit ?? '?'}\` |`);
md.push(`| CPU | ${meta.cpu ?? '?'} (${meta.nproc ?? '?'} cores online) |`);
md.push(`| memory | ${meta.mem ?? '?'} |`);
md.push(`| threads | ${meta.threads ?? 2} |`);
md.push(`| models | ${(meta.models ?? []).map((m) => `\`${m}\``).join(', ')} |`);
md.push(`| load average at start | ${meta.loadavg ?? '?'} |`);
md.push(`| run time | ${meta.elapsed_s != null ? `${fmt(meta.elapsed_s / 60, 1)} min` : '?'} |`);
md.push('');

// ---- 1. engine speed ---------------------------------------------------------------------
md.push('## 1. Engine speed (tokens/s, 2 threads)');
md.push('');
md.push('`bellows-bench` drives the engine the runner uses (engine API, no server): prefill of a');
md.push('prompt of exactly P tokens, then N decode steps after a 1-token prompt, after one warm-up,');
md.push('mean ± sd of the repetitions. The peer is `llama-bench -p P -n N -r R -t 2` (its defaults:');
md.push('n_batch 2048, n_ubatch 512, F16 K/V, flash attention "auto", which resolves to on for the CPU');
md.push('backend — Bellows sets it on explicitly). `llama-bench` samples nothing; the target row samples');
md.push('greedily without penalties (the least a runner does per token); the "Ollama default sampling"');
md.push('row is the same decode with temperature 0.8, top_k 40, top_p 0.9 and repeat_penalty 1.1 over');
md.push('the last 64 tokens — what a request without options costs.');
md.push('');
md.push('| model | test | Bellows | llama-bench | ratio | target | met |');
md.push('|---|---|---|---|---|---|---|');
const speedRows = [];
for (const type of meta.types ?? ['q8_0', 'q4_0']) {
  const b = load(`engine-${type}.json`);
  const l = load(`llama-bench-${type}.json`);
  if (!b && !l) continue;
  const lpp = Array.isArray(l) ? l.find((x) => x.n_prompt > 0 && x.n_gen === 0) : null;
  const ltg = Array.isArray(l) ? l.find((x) => x.n_gen > 0 && x.n_prompt === 0) : null;
  for (const [test, bb, ll, target] of [
    [`prefill pp${b?.n_prompt ?? lpp?.n_prompt ?? ''}`, b?.prefill_tps, lpp, 0.95],
    [`decode tg${b?.n_gen ?? ltg?.n_gen ?? ''}`, b?.decode_tps, ltg, 0.97],
    [`decode tg${b?.n_gen ?? ltg?.n_gen ?? ''}, Ollama default sampling`, b?.decode_default_sampling_tps, ltg, null],
  ]) {
    if (!bb && target == null) continue;
    const r = ratio(bb?.mean, ll?.avg_ts);
    md.push(`| ${type.toUpperCase()} | ${test} | ${fmt(bb?.mean, 2)} ± ${fmt(bb?.sd, 2)} | ${fmt(ll?.avg_ts, 2)} ± ${fmt(ll?.stddev_ts, 2)} | ${fmt(r, 3)} | ${target == null ? '(reported)' : `≥ ${target}`} | ${target == null ? '' : met(r, (x) => x >= target)} |`);
    speedRows.push([type, test, bb?.mean, bb?.sd, ll?.avg_ts, ll?.stddev_ts, r, target]);
    if (target != null && type === (meta.types ?? ['q8_0'])[0]) summary.push([`${test.split(' ')[0]} ≥ ${target}× llama-bench (${type.toUpperCase()})`, fmt(r, 3), met(r, (x) => x >= target)]);
  }
}
if (!speedRows.length) md.push('| – | not measured | | | | | |');
csv('engine-speed.csv', ['model', 'test', 'bellows_tps', 'bellows_sd', 'llama_bench_tps', 'llama_bench_sd', 'ratio', 'target'], speedRows);
md.push('');
md.push(`Raw: [engine-speed.csv](${rel('engine-speed.csv')}), \`engine-*.json\`, \`llama-bench-*.json\`.`);
if (existsSync(join(raw, 'perf-decode.txt'))) {
  const top = readFileSync(join(raw, 'perf-decode.txt'), 'utf8').split('\n').filter(Boolean).slice(0, 12);
  md.push('', `Profile of \`bellows-bench\` decoding (greedy, then default sampling; \`perf record\`, samples by library and symbol; all of it in [perf-decode.txt](${rel('perf-decode.txt')})):`, '', '```', ...top.map((l) => { const t = l.trim().replace(/\s{2,}/g, '  '); return t.length > 120 ? `${t.slice(0, 117)}...` : t; }), '```');
}
md.push('');

// ---- 2. conversation ---------------------------------------------------------------------
const conv = load('conv.json');
md.push('## 2. Conversation: time to first token per turn');
md.push('');
if (!conv) {
  md.push('Not measured.');
} else {
  const bel0 = conv.runs.find((r) => r.server === 'bellows' && r.turns.length > 1);
  const perTurn = bel0 ? (bel0.turns[bel0.turns.length - 1].prompt_tokens - bel0.turns[0].prompt_tokens) / (bel0.turns.length - 1) : null;
  md.push(`Each turn adds ${conv.words_per_turn} words of user text (the prompt grows by ${fmt(perTurn, 0)} tokens a turn with the`);
  md.push(`previous answer and the template's markers); answers are ${conv.answer_tokens} tokens at`);
  md.push('temperature 0 and go back into the history as the assistant message. TTFT is measured by the');
  md.push('client, from sending the request to the first streamed chunk with answer text. Each server runs');
  md.push('alone, restarted for each conversation, after a 2-token warm-up request. Bellows: `/api/chat`;');
  md.push('llama-server (default context, 4 slots, `--no-jinja`: the same libllama template Bellows uses, so');
  md.push('both see the same prompt tokens): `/apply-template` (not timed), then a `/completion` stream, with');
  md.push('`--cache-prompt` / `--no-cache-prompt` and the matching `cache_prompt` field. Its');
  md.push('`/v1/chat/completions` is not used: its output parser rejects the random-weight model\'s');
  md.push('gibberish when it holds invalid UTF-8. Both servers sample greedily with no repeat penalty.');
  md.push('');
  if (conv.partial) md.push('**Partial:** the conversation step was stopped before it finished; the runs below are those it completed.', '');
  const convs = [...new Set(conv.runs.map((r) => r.conversation))];
  const servers = [...new Set(conv.runs.map((r) => r.server))];
  const rowsCsv = [];
  for (const c of convs) {
    const runs = conv.runs.filter((r) => r.conversation === c);
    const maxTurn = Math.max(...runs.map((r) => r.turns_planned));
    const marks = [...new Set([1, Math.min(10, maxTurn), maxTurn])];
    md.push(`### ${c} chat`);
    md.push('');
    md.push(`| server | ${marks.map((t) => `TTFT turn ${t} (ms)`).join(' | ')} | turn ${marks[1]} / turn 1 | prompt tokens at the last turn (cached) |`);
    md.push(`|---|${marks.map(() => '---').join('|')}|---|---|`);
    const ttftAt = (run, t) => run.turns.find((x) => x.turn === t)?.ttft_ms ?? null;
    for (const run of runs) {
      const last = run.turns[run.turns.length - 1];
      const cells = marks.map((t) => fmt(ttftAt(run, t), 0));
      const growth = ratio(ttftAt(run, marks[1]), ttftAt(run, 1));
      const cut = run.turns.filter((t) => t.parse_error).length;
      const notes = [run.stopped_at_budget ? `stopped after turn ${run.turns.length}: ${run.budget_s} s budget` : null,
        cut ? `${cut} answer${cut > 1 ? 's' : ''} cut short by its chat parser` : null].filter(Boolean);
      md.push(`| ${run.server}${notes.length ? ` (${notes.join('; ')})` : ''} | ${cells.join(' | ')} | ×${fmt(growth, 2)} | ${last?.prompt_tokens ?? '–'} (${last?.cached_tokens ?? '–'}) |`);
      for (const t of run.turns) rowsCsv.push([c, run.server, t.turn, t.ttft_ms, t.total_ms, t.prompt_tokens, t.cached_tokens, t.answer_tokens, t.server_prompt_ms]);
    }
    md.push('');
    const bel = runs.find((r) => r.server === 'bellows');
    const lc = runs.find((r) => r.server === 'llama-server, cache');
    const ln = runs.find((r) => r.server === 'llama-server, no cache');
    md.push('| comparison | value | target | met |');
    md.push('|---|---|---|---|');
    const g = bel ? ratio(ttftAt(bel, marks[1]), ttftAt(bel, 1)) : null;
    md.push(`| Bellows TTFT turn ${marks[1]} / turn 1 | ×${fmt(g, 2)} | ≤ 1.1 | ${met(g, (x) => x <= 1.1)} |`);
    if (c.startsWith('10')) summary.push([`TTFT turn 10 ≤ 1.1× turn 1 (Bellows, ${c})`, `×${fmt(g, 2)}`, met(g, (x) => x <= 1.1)]);
    for (const t of marks.slice(1)) {
      if (bel && lc) md.push(`| Bellows / llama-server with cache, turn ${t} | ${fmt(ratio(ttftAt(bel, t), ttftAt(lc, t)), 2)} | (reported) | |`);
      if (bel && ln) md.push(`| Bellows / llama-server without cache, turn ${t} | ${fmt(ratio(ttftAt(bel, t), ttftAt(ln, t)), 3)} | (reported) | |`);
    }
    md.push('');
    // plot data: one column per server
    const dat = [`# turn ${servers.map((s) => `"${s}"`).join(' ')}`];
    for (let t = 1; t <= maxTurn; t++) dat.push([t, ...servers.map((s) => { const r = runs.find((x) => x.server === s); const v = r ? ttftAt(r, t) : null; return v == null ? 'NaN' : v.toFixed(1); })].join(' '));
    const slug = c.replace(/[^a-z0-9]+/gi, '-');
    writeFileSync(join(raw, `ttft-${slug}.dat`), dat.join('\n') + '\n');
    const gp = [
      'set terminal pngcairo size 900,520 font ",11"',
      `set output "${join(raw, `ttft-${slug}.png`)}"`,
      `set title "Time to first token per turn — ${c} chat${meta.quick ? ' (quick run, demo model)' : ''}"`,
      'set xlabel "turn"', 'set ylabel "TTFT (ms)"', 'set grid', 'set key top left', 'set datafile missing "NaN"',
      `set xrange [1:${maxTurn}]`, `set xtics ${Math.max(1, Math.ceil(maxTurn / 15))}`, 'set mxtics 1', 'set yrange [0:*]',
      `plot ${servers.map((s, i) => `"${join(raw, `ttft-${slug}.dat`)}" using 1:${i + 2} with linespoints lw 2 title "${s === 'bellows' ? 'Bellows' : s}"`).join(', ')}`,
    ];
    writeFileSync(join(raw, `ttft-${slug}.gp`), gp.join('\n') + '\n');
    md.push(`![TTFT per turn, ${c}](${rel(`ttft-${slug}.png`)})`);
    md.push('');
  }
  csv('conversation.csv', ['conversation', 'server', 'turn', 'ttft_ms', 'total_ms', 'prompt_tokens', 'cached_tokens', 'answer_tokens', 'server_prompt_ms'], rowsCsv);
  md.push(`Raw: [conversation.csv](${rel('conversation.csv')}), \`conv.json\`.`);
}
md.push('');

// ---- 3. memory ---------------------------------------------------------------------------
const mem = load('mem.json');
md.push('## 3. Memory: RSS and KV after load and after a one-word chat');
md.push('');
if (!mem) {
  md.push('Not measured.');
} else {
  md.push('RSS is `VmRSS` from `/proc/PID/status` of the process that holds the model: the Bellows runner');
  md.push('(`runner_pid` of `/api/ps`; the `bellows serve` front process is listed apart) and llama-server.');
  md.push('KV: Bellows reports its pool\'s bytes in `/api/ps`; llama-server\'s comes from its log line');
  md.push('`llama_kv_cache: size = … MiB (… cells …)` (logged at `-lv 4`). The chat is "Hello" with a short');
  md.push('answer. Weights are mmapped: RSS counts the pages touched so far, so RSS after the chat is the');
  md.push('figure to compare.');
  md.push('');
  md.push('| server | config | RSS after load (MiB) | RSS after chat (MiB) | KV after load (MiB) | KV after chat (MiB) | KV cells after chat |');
  md.push('|---|---|---|---|---|---|---|');
  const rows = [];
  for (const r of mem.rows) {
    const a = r.after_load, c = r.after_chat;
    md.push(`| ${r.server} | ${r.config} | ${fmt(a.rss_kib / 1024)} | ${fmt(c.rss_kib / 1024)}${r.server === 'bellows' ? ` (+ serve ${fmt(c.serve_rss_kib / 1024)})` : ''} | ${fmt(mib(a.kv_bytes))} | ${fmt(mib(c.kv_bytes))} | ${c.pool_cells ?? '–'} |`);
    rows.push([r.server, r.config, a.rss_kib, c.rss_kib, c.serve_rss_kib ?? null, a.kv_bytes, c.kv_bytes, c.pool_cells]);
  }
  csv('memory.csv', ['server', 'config', 'rss_after_load_kib', 'rss_after_chat_kib', 'serve_rss_after_chat_kib', 'kv_after_load_bytes', 'kv_after_chat_bytes', 'kv_cells_after_chat'], rows);
  md.push('');
  const bel = mem.rows.find((r) => r.server === 'bellows');
  const ld = mem.rows.find((r) => r.server === 'llama-server' && !r.config.startsWith('-c'));
  const l4 = mem.rows.find((r) => r.server === 'llama-server' && r.config.startsWith('-c'));
  const kvr = ratio(bel?.after_chat.kv_bytes, ld?.after_chat.kv_bytes);
  md.push('| comparison | value | target | met |');
  md.push('|---|---|---|---|');
  md.push(`| Bellows KV / llama-server default KV, after the chat | ${fmt(kvr, 3)} (1/${fmt(kvr ? 1 / kvr : null, 1)}) | ≤ 0.125 (1/8) | ${met(kvr, (x) => x <= 0.125 + 1e-9)} |`);
  md.push(`| Bellows RSS / llama-server default RSS, after the chat | ${fmt(ratio(bel?.after_chat.rss_kib, ld?.after_chat.rss_kib), 3)} | (reported) | |`);
  md.push(`| Bellows RSS / llama-server -c 4096 RSS, after the chat | ${fmt(ratio(bel?.after_chat.rss_kib, l4?.after_chat.rss_kib), 3)} | (reported) | |`);
  summary.push(['KV after a one-word chat ≤ 1/8 of llama-server default', fmt(kvr, 3), met(kvr, (x) => x <= 0.125 + 1e-9)]);
  md.push('');
  const dat = ['# config rss_load rss_chat kv_chat'];
  for (const r of mem.rows) dat.push(`"${r.server === 'bellows' ? 'Bellows' : `llama-server ${r.config.startsWith('-c') ? '-c 4096' : 'default'}`}" ${fmt(r.after_load.rss_kib / 1024)} ${fmt(r.after_chat.rss_kib / 1024)} ${fmt(mib(r.after_chat.kv_bytes) ?? 0)}`);
  writeFileSync(join(raw, 'memory.dat'), dat.join('\n') + '\n');
  writeFileSync(join(raw, 'memory.gp'), [
    'set terminal pngcairo size 900,520 font ",11"',
    `set output "${join(raw, 'memory.png')}"`,
    `set title "Memory${meta.quick ? ' (quick run, demo model)' : ''}"`,
    'set style data histograms', 'set style histogram clustered gap 1', 'set style fill solid 0.8 border -1',
    'set boxwidth 0.9', 'set ylabel "MiB"', 'set grid ytics', 'set key top right', 'set yrange [0:*]',
    `plot "${join(raw, 'memory.dat')}" using 2:xtic(1) title "RSS after load", '' using 3 title "RSS after one-word chat", '' using 4 title "KV after one-word chat"`,
  ].join('\n') + '\n');
  md.push(`![Memory](${rel('memory.png')})`);
  md.push('');
  md.push(`Raw: [memory.csv](${rel('memory.csv')}), \`mem.json\`.`);
}
md.push('');

// ---- 4. concurrency ----------------------------------------------------------------------
const conc = load('conc.json');
md.push('## 4. Concurrency: 4 simultaneous streams');
md.push('');
if (!conc) {
  md.push('Not measured.');
} else {
  const b = conc.rows.find((r) => r.server === 'bellows');
  const l = conc.rows.find((r) => r.server !== 'bellows');
  md.push(`Four chats start at once, each asking for ${b?.max_tokens ?? l?.max_tokens} tokens (temperature 0); aggregate = all answer`);
  md.push('tokens / wall time from the first request to the last answer. Two bursts per server, new prompts');
  md.push('each: the first also pays for Bellows\' pool growing to hold four 4096-cell reservations; the');
  md.push('second is the steady state the target compares. llama-server gets the same total context.');
  md.push('');
  md.push('| server | config | answer tokens | wall (s) | aggregate tok/s | mean TTFT (ms) | first burst tok/s |');
  md.push('|---|---|---|---|---|---|---|');
  for (const r of conc.rows) {
    const mt = r.streams.reduce((a, s) => a + (s.ttft_ms ?? 0), 0) / r.streams.length;
    md.push(`| ${r.server} | \`${r.config}\` | ${r.tokens} | ${fmt(r.wall_ms / 1000, 2)} | ${fmt(r.aggregate_tps, 2)} | ${fmt(mt, 0)} | ${fmt(r.first_burst?.aggregate_tps, 2)} |`);
  }
  const bp = b?.ps;
  if (conc.prompt_sets_replaced) md.push('', `llama-server's chat parser cut a stream short with ${conc.prompt_sets_replaced} prompt set(s) (random-weight output holding invalid UTF-8); those were replaced, and both servers ran prompt set ${b?.prompt_set}.`);
  if (bp) md.push('', `Bellows' pool after the bursts: ${bp.pool_tokens} cells (${fmt(mib(bp.kv_bytes))} MiB of KV), ${bp.pool_growths} growths.`);
  csv('concurrency.csv', ['server', 'config', 'tokens', 'wall_ms', 'aggregate_tps', 'first_burst_tps'], conc.rows.map((r) => [r.server, r.config, r.tokens, r.wall_ms, r.aggregate_tps, r.first_burst?.aggregate_tps]));
  const r = ratio(b?.aggregate_tps, l?.aggregate_tps);
  md.push('');
  md.push('| comparison | value | target | met |');
  md.push('|---|---|---|---|');
  md.push(`| Bellows / llama-server aggregate tok/s | ${fmt(r, 3)} | ≥ 1.0 | ${met(r, (x) => x >= 1)} |`);
  summary.push(['4-stream throughput ≥ llama-server', fmt(r, 3), met(r, (x) => x >= 1)]);
  md.push('');
  md.push(`Raw: [concurrency.csv](${rel('concurrency.csv')}), \`conc.json\`.`);
}
md.push('');

// ---- 5. growth ---------------------------------------------------------------------------
md.push('## 5. Growth: moving a history into a bigger pool vs re-evaluating it');
md.push('');
const gtype = (meta.types ?? ['q8_0'])[0];
const ge = load(`engine-${gtype}.json`)?.growth;
if (!ge) {
  md.push('Not measured.');
} else {
  md.push(`\`bellows-bench\` (${gtype.toUpperCase()}): a ${ge.history_tokens}-token history in a ${ge.from_cells}-cell pool, then a request that`);
  md.push(`continues it and reserves the model maximum: the pool grows to ${ge.to_cells} cells by moving the`);
  md.push('sequence state (`engine_status().last_growth_ns`: new context + state copy). The pool is shrunk');
  md.push('back while idle and the move repeated. "Re-evaluate" is the prefill time of the same history.');
  md.push('');
  const r = ratio(ge.growth_ms?.mean, ge.reprefill_ms);
  md.push('| | Bellows growth (ms) | re-evaluate the history (ms) | ratio | tokens reused by the continuing request |');
  md.push('|---|---|---|---|---|');
  md.push(`| ${ge.from_cells} → ${ge.to_cells} cells, ${ge.history_tokens} tokens | ${fmt(ge.growth_ms?.mean, 1)} ± ${fmt(ge.growth_ms?.sd, 1)} (${ge.growths}×) | ${fmt(ge.reprefill_ms, 1)} | ${fmt(r, 4)} (${r == null ? '–' : r < 1 ? `${fmt(1 / r, 0)}× faster` : `${fmt(r, 2)}× slower`}) | ${ge.reused_tokens} |`);
  csv('growth.csv', ['history_tokens', 'from_cells', 'to_cells', 'growth_ms_mean', 'growth_ms_sd', 'reprefill_ms', 'ratio'], [[ge.history_tokens, ge.from_cells, ge.to_cells, ge.growth_ms?.mean, ge.growth_ms?.sd, ge.reprefill_ms, r]]);
  summary.push(['growth 4096 → 32768 cheaper than re-evaluating (reported)', `${fmt(ge.growth_ms?.mean, 0)} ms vs ${fmt(ge.reprefill_ms, 0)} ms`, '']);
}
md.push('');

// ---- 6. HTTP path ------------------------------------------------------------------------
const http = load('http.json');
if (http) {
  md.push('## 6. HTTP path (issue 4, informative)');
  md.push('');
  md.push('Streaming: the client\'s time between text chunks of one `/api/chat` stream against the runner\'s');
  md.push('own time per token (`eval_duration` / (`eval_count` − 1)); the difference is what HTTP, the');
  md.push('scheduler and the socket to the runner add per token.');
  md.push('');
  md.push('| sample | chunks | client ms/token | runner ms/token | overhead ms/token |');
  md.push('|---|---|---|---|---|');
  (http.stream ?? []).forEach((s, i) => md.push(`| ${i + 1} | ${s.chunks} | ${fmt(s.client_ms_per_token, 3)} | ${fmt(s.runner_ms_per_token, 3)} | ${fmt(s.overhead_ms_per_token, 3)} |`));
  md.push('');
  if (http.tags?.skipped) md.push(`\`/api/tags\` under 64 connections: skipped (${http.tags.skipped}).`);
  else if (http.tags) md.push(`\`/api/tags\` with \`wrk -t2 -c64 -d${http.tags.duration}\`: p50 ${fmt(http.tags.p50_ms, 2)} ms, p99 ${fmt(http.tags.p99_ms, 2)} ms, ${fmt(http.tags.requests_per_s, 0)} requests/s.`);
  md.push('');
}

// ---- 7. chat templates -------------------------------------------------------------------
// bellows-template-bench writes its own markdown (templates.md); the page takes it as is,
// under a numbered heading, with the CSV linked and two reported rows in the targets.
const tj = load('templates.json');
const tmdPath = join(raw, 'templates.md');
md.push('## 7. Chat templates: rendering cost and the prefix cache across turns');
md.push('');
if (!existsSync(tmdPath)) {
  md.push('Not measured.');
} else {
  const lines = readFileSync(tmdPath, 'utf8').split('\n');
  md.push(...(lines[0].startsWith('## ') ? lines.slice(1) : lines));
  md.push('', `Raw: [templates.csv](${rel('templates.csv')}), \`templates.json\`, \`templates.md\` (\`bellows-template-bench\`, bench/template_bench.c).`);
  if (tj) {
    summary.push([`render vs tokenize, ${tj.messages}-message chat, median of ${tj.rendered} templates (reported)`,
      `${fmt(tj.median_render_us, 0)} µs vs ${fmt(tj.median_tokenize_us, 0)} µs (${fmt(100 * tj.median_render_share, 1)}%)`, '']);
    const m = tj.modes?.model, t = tj.modes?.think;
    summary.push([`templates keeping the prefix cache every turn, ${tj.turns} turns (reported)`,
      `${m?.keep_every_turn ?? '–'} of ${m?.templates ?? '–'} without thinking; ${t?.keep_every_turn ?? '–'} of ${t?.templates ?? '–'} thinking templates with thinking on`, '']);
  }
}
md.push('');

// ---- summary first -------------------------------------------------------------------------
const head = ['## Targets', '', '| target | value | met |', '|---|---|---|', ...summary.map((s) => `| ${s[0]} | ${s[1]} | ${s[2]} |`), ''];
const at = md.findIndex((l) => l.startsWith('## 1.'));
md.splice(at, 0, ...head);
if (meta.notes?.length) md.push('## Notes', '', ...meta.notes.map((n) => `- ${n}`), '');

writeFileSync(opt.md, md.join('\n'));

// ---- plots ---------------------------------------------------------------------------------
let plotted = 0;
for (const gp of readdirSync(raw).filter((f) => f.endsWith('.gp')).sort()) {
  try {
    execFileSync('gnuplot', [join(raw, gp)], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60000 });
    plotted++;
  } catch (e) {
    process.stderr.write(`report: gnuplot ${gp} failed: ${String(e.stderr ?? e.message).trim()}\n`);
  }
}
process.stderr.write(`report: ${opt.md} (${plotted} plots in ${basename(raw)}/)\n`);
