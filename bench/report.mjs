#!/usr/bin/env node
// report.mjs -- turns the raw results of one bench/run into the results page: a table per
// measurement (Bellows, peer, ratio, target, met), CSV files, and gnuplot PNGs.
//
//   node bench/report.mjs --raw DIR --md FILE
//
// DIR holds what bench/run wrote: meta.json, engine-<type>-pair<i>.json (bellows-bench) and
// llama-bench-<type>-pair<i>.json (llama-bench -o json), the interleaved pairs of engine
// speed, growth-<type>.json (bellows-bench --no-speed), conv.json, mem.json, conc.json, http.json,
// templates.md / templates.json / templates.csv (bellows-template-bench).
// Missing files are reported as "not measured". CSVs, .dat/.gp files and PNGs go into DIR;
// the page links them relative to its own folder.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { basename, dirname, join, relative } from 'node:path';
import { spread, ratioSummary } from './pairs.mjs';

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
// Interleaved pairs (bench/run): engine-<type>-pair<i>.json (bellows-bench -r 1) and
// llama-bench-<type>-pair<i>.json (llama-bench -r 1), run one after the other.
const pairFiles = (type) => {
  const idx = readdirSync(raw).map((f) => new RegExp(`^engine-${type}-pair(\\d+)\\.json$`).exec(f)).filter(Boolean)
    .map((m) => Number(m[1])).sort((a, b) => a - b);
  return idx.map((i) => ({ i, b: load(`engine-${type}-pair${i}.json`), l: load(`llama-bench-${type}-pair${i}.json`) }));
};
const range = (s, d) => (s.n ? `${fmt(s.min, d)}–${fmt(s.max, d)}` : '–');
md.push('## 1. Engine speed (tokens/s, 2 threads)');
md.push('');
md.push('`bellows-bench` drives the engine the runner uses (engine API, no server): prefill of a');
md.push('prompt of exactly P tokens, then N decode steps after a 1-token prompt. The peer is');
md.push('`llama-bench -p P -n N -t 2` (its defaults: n_batch 2048, n_ubatch 512, F16 K/V, flash attention');
md.push('"auto", which resolves to on for the CPU backend — Bellows sets it on explicitly). **Paired:** the');
md.push(`two programs alternate, ${meta.engine_pairs ?? '?'} pairs per model, each pair one \`bellows-bench -r 1\` then one`);
md.push('`llama-bench -r 1` (each after its own warm-up), seconds apart; the ratio is taken within each pair');
md.push('and the target is judged on the **median of the per-pair ratios** (min–max and the interquartile');
md.push('range q1–q3 show their spread). `llama-bench` samples nothing; the target rows sample greedily');
md.push('without penalties (the least a runner does per token); the "Ollama default sampling" row is the');
md.push('same decode with temperature 0.8, top_k 40, top_p 0.9 and repeat_penalty 1.1 over the last 64');
md.push('tokens — what a request without options costs.');
md.push('');
md.push('| model | test | pairs | Bellows median (min–max) | llama-bench median (min–max) | ratio median | ratio min–max | ratio q1–q3 | target | met |');
md.push('|---|---|---|---|---|---|---|---|---|---|');
const speedRows = [], pairRows = [];
for (const type of meta.types ?? ['q8_0', 'q4_0']) {
  const pairs = pairFiles(type);
  if (!pairs.length) continue;
  const lOf = (l, pp) => (Array.isArray(l) ? l.find((x) => (pp ? x.n_prompt > 0 && x.n_gen === 0 : x.n_gen > 0 && x.n_prompt === 0)) : null);
  const b0 = pairs.find((p) => p.b)?.b;
  for (const [test, bk, pp, target] of [
    [`prefill pp${b0?.n_prompt ?? ''}`, 'prefill_tps', true, 0.95],
    [`decode tg${b0?.n_gen ?? ''}`, 'decode_tps', false, 0.97],
    [`decode tg${b0?.n_gen ?? ''}, Ollama default sampling`, 'decode_default_sampling_tps', false, null],
  ]) {
    const bv = pairs.map((p) => p.b?.[bk]?.mean ?? null), lv = pairs.map((p) => lOf(p.l, pp)?.avg_ts ?? null);
    const r = ratioSummary(bv, lv), sb = spread(bv), sl = spread(lv);
    pairs.forEach((p, k) => pairRows.push([type, test, p.i, bv[k], lv[k], r.ratios[k]]));
    md.push(`| ${type.toUpperCase()} | ${test} | ${r.n} | ${fmt(sb.median, 2)} (${range(sb, 2)}) | ${fmt(sl.median, 2)} (${range(sl, 2)}) | ${fmt(r.median, 3)} | ${range(r, 3)} | ${r.n ? `${fmt(r.q1, 3)}–${fmt(r.q3, 3)}` : '–'} | ${target == null ? '(reported)' : `≥ ${target}`} | ${target == null ? '' : met(r.median, (x) => x >= target)} |`);
    speedRows.push([type, test, r.n, sb.median, sl.median, r.median, r.min, r.max, r.q1, r.q3, target]);
    if (target != null && type === (meta.types ?? ['q8_0'])[0]) summary.push([`${test.split(' ')[0]} ≥ ${target}× llama-bench (${type.toUpperCase()}, median of ${r.n} pairs)`, `${fmt(r.median, 3)} (${range(r, 3)})`, met(r.median, (x) => x >= target)]);
  }
}
if (!speedRows.length) md.push('| – | not measured | | | | | | | | |');
csv('engine-speed.csv', ['model', 'test', 'pairs', 'bellows_median_tps', 'llama_bench_median_tps', 'ratio_median', 'ratio_min', 'ratio_max', 'ratio_q1', 'ratio_q3', 'target'], speedRows);
csv('engine-pairs.csv', ['model', 'test', 'pair', 'bellows_tps', 'llama_bench_tps', 'ratio'], pairRows);
md.push('');
md.push(`Raw: [engine-speed.csv](${rel('engine-speed.csv')}), [engine-pairs.csv](${rel('engine-pairs.csv')}) (every pair), \`engine-*-pair*.json\`, \`llama-bench-*-pair*.json\`.`);

if (existsSync(join(raw, 'perf-decode.txt'))) {
  const top = readFileSync(join(raw, 'perf-decode.txt'), 'utf8').split('\n').filter(Boolean).slice(0, 12);
  md.push('', `Profile of \`bellows-bench\` decoding (greedy, then default sampling; \`perf record\`, samples by library and symbol; all of it in [perf-decode.txt](${rel('perf-decode.txt')})):`, '', '```', ...top.map((l) => { const t = l.trim().replace(/\s{2,}/g, '  '); return t.length > 120 ? `${t.slice(0, 117)}...` : t; }), '```');
}
md.push('');

// ---- 2. conversation ---------------------------------------------------------------------
// Paired (serve_bench.mjs conversation()): Bellows and llama-server with its cache take the
// same turns in turn; llama-server without its cache runs the first conversation alone.
const conv = load('conv.json');
md.push('## 2. Conversation: time to first token per turn');
md.push('');
if (!conv) {
  md.push('Not measured.');
} else {
  const bel0 = conv.runs.find((r) => r.server === 'bellows' && r.turns.length > 1);
  const perTurn = bel0 ? (bel0.turns[bel0.turns.length - 1].prompt_tokens - bel0.turns[0].prompt_tokens) / (bel0.turns.length - 1) : null;
  md.push(`**Paired.** Each turn adds ${conv.words_per_turn} words of user text after a fixed ${conv.assistant_words}-word assistant message (the prompt`);
  md.push(`grows by ${fmt(perTurn, 0)} tokens a turn with the template's markers). The assistant text is fixed, not`);
  md.push(`generated, and answers are ${conv.answer_tokens} token${conv.answer_tokens === 1 ? '' : 's'} (greedy), so both servers see the same history and evaluate the`);
  md.push('same new tokens every turn, whatever each would have answered. Bellows and llama-server (with its');
  md.push('prompt cache) are up at once and take turns: each turn goes to one, then — once its processes are');
  md.push('idle again (no CPU time over two 50 ms windows, so a growth Bellows makes ahead of the next turn is');
  md.push('not in llama-server\'s time) — the same turn to the other; odd turns go to Bellows first, even turns');
  md.push('to llama-server first (whichever goes first was slower by ~1.6% in the calibration below). The');
  md.push('ratio is taken per turn. TTFT is client-measured, from sending the request to the first');
  md.push('streamed chunk with answer text (to the end of the stream when the one token has no text). Bellows:');
  md.push('`/api/chat`; llama-server (default context, 4 slots, `--no-jinja`: the same libllama template, so');
  md.push('the same prompt tokens): `/apply-template` (not timed), then a `/completion` stream. Pool growths');
  md.push('come from Bellows\' `/metrics` (`bellows_kv_pool_growths_total{when="on_request"|"ahead"}`) read');
  md.push('after each turn. llama-server without its cache runs the first conversation alone, on the same');
  md.push('messages, as the reference that re-reads the whole history. Each server gets a 2-token warm-up first.');
  md.push('');
  if (conv.partial) md.push('**Partial:** the conversation step was stopped before it finished; the runs below are those it completed.', '');
  const convs = [...new Set(conv.runs.map((r) => r.conversation))];
  const servers = [...new Set(conv.runs.map((r) => r.server))];
  const rowsCsv = [];
  const ttftAt = (run, t) => run?.turns.find((x) => x.turn === t)?.ttft_ms ?? null;
  // what a turn costs besides evaluating its prompt: HTTP, rendering, tokenizing, the first sample
  const outside = (t) => (t?.ttft_ms != null && t?.server_prompt_ms != null ? t.ttft_ms - t.server_prompt_ms : null);
  convs.forEach((c, ci) => {
    const runs = conv.runs.filter((r) => r.conversation === c);
    const maxTurn = Math.max(...runs.map((r) => r.turns_planned));
    const marks = [...new Set([1, Math.min(10, maxTurn), maxTurn])];
    const bel = runs.find((r) => r.server === 'bellows');
    const lc = runs.find((r) => r.server === 'llama-server, cache');
    md.push(`### ${c} chat`);
    md.push('');
    const hist = runs.find((r) => r.history_messages)?.history_messages;
    if (hist) md.push(`Before turn 1, a history of ${hist} messages, evaluated once by each server and not timed; each turn then adds a one-line message and a one-line answer.`, '');
    md.push(`| server | ${marks.map((t) => `TTFT turn ${t} (ms)`).join(' | ')} | turn ${marks[1]} / turn 1 | prompt tokens at the last turn (cached) |`);
    md.push(`|---|${marks.map(() => '---').join('|')}|---|---|`);
    for (const run of runs) {
      const last = run.turns[run.turns.length - 1];
      const growth = ratio(ttftAt(run, marks[1]), ttftAt(run, 1));
      const cut = run.turns.filter((t) => t.parse_error).length;
      const notes = [run.paired_with ? 'paired' : 'alone',
        run.stopped_at_budget ? `stopped after turn ${run.turns.length}: ${run.budget_s} s budget` : null,
        cut ? `${cut} answer${cut > 1 ? 's' : ''} cut short by its chat parser` : null].filter(Boolean);
      md.push(`| ${run.server} (${notes.join('; ')}) | ${marks.map((t) => fmt(ttftAt(run, t), 0)).join(' | ')} | ×${fmt(growth, 2)} | ${last?.prompt_tokens ?? '–'} (${last?.cached_tokens ?? '–'}) |`);
      for (const t of run.turns) rowsCsv.push([c, run.server, t.turn, t.ttft_ms, t.total_ms, t.prompt_tokens, t.cached_tokens, t.answer_tokens, t.server_prompt_ms, t.pool?.on_request ?? null, t.pool?.ahead ?? null, t.pool?.pool_cells ?? null]);
    }
    md.push('');
    const turnsN = Math.max(bel?.turns.length ?? 0, lc?.turns.length ?? 0);
    const rs = ratioSummary(Array.from({ length: turnsN }, (_, i) => ttftAt(bel, i + 1)), Array.from({ length: turnsN }, (_, i) => ttftAt(lc, i + 1)));
    const onReq = (bel?.turns ?? []).filter((t) => t.pool?.on_request > 0).map((t) => t.turn);
    const ahead = (bel?.turns ?? []).filter((t) => t.pool?.ahead > 0).map((t) => t.turn);
    const maxTurnAt = rs.argmax != null ? rs.argmax + 1 : null;
    md.push('| comparison | value | target | met |');
    md.push('|---|---|---|---|');
    const g = bel ? ratio(ttftAt(bel, marks[1]), ttftAt(bel, 1)) : null;
    md.push(`| Bellows TTFT turn ${marks[1]} / turn 1 | ×${fmt(g, 2)} | ≤ 1.1 | ${met(g, (x) => x <= 1.1)} |`);
    if (c.startsWith('10')) summary.push([`TTFT turn 10 ≤ 1.1× turn 1 (Bellows, ${c})`, `×${fmt(g, 2)}`, met(g, (x) => x <= 1.1)]);
    if (bel && lc) {
      md.push(`| Bellows / llama-server with cache, mean of ${rs.n} per-turn ratios | ${fmt(rs.mean, 3)} (median ${fmt(rs.median, 3)}, q1–q3 ${fmt(rs.q1, 3)}–${fmt(rs.q3, 3)}) | ≤ 0.95 | ${met(rs.mean, (x) => x <= 0.95)} |`);
      md.push(`| highest turn ratio | ${fmt(rs.max, 3)} (turn ${maxTurnAt ?? '–'}${onReq.includes(maxTurnAt) ? ', pool grew on the request' : ''}); lowest ${fmt(rs.min, 3)} | ≤ 1.10 | ${met(rs.max, (x) => x <= 1.10)} |`);
      const sp = ratioSummary(bel.turns.map((t) => t.server_prompt_ms ?? null), lc.turns.map((t) => t.server_prompt_ms ?? null));
      md.push(`| server-side prompt time, Bellows / llama-server (the same evaluated tokens), mean of ${sp.n} turns | ${fmt(sp.mean, 3)} (median ${fmt(sp.median, 3)}, q1–q3 ${fmt(sp.q1, 3)}–${fmt(sp.q3, 3)}) | (reported) | |`);
      md.push(`| time outside the prompt evaluation (TTFT − server-side prompt ms), mean | Bellows ${fmt(spread(bel.turns.map(outside)).mean, 1)} ms, llama-server ${fmt(spread(lc.turns.map(outside)).mean, 1)} ms | (reported) | |`);
      md.push(`| Bellows pool growths | on a request's path: ${onReq.length ? `turn${onReq.length > 1 ? 's' : ''} ${onReq.join(', ')}` : 'none'}; ahead, after turn${ahead.length > 1 ? 's' : ''}: ${ahead.length ? ahead.join(', ') : 'none'} | (reported) | |`);
      if (runs.some((r) => r.history_messages) && ci !== convs.length - 1) summary.push([`conversation TTFT mean ratio to llama-server with cache (${c}, paired; reported)`, `${fmt(rs.mean, 3)} (median ${fmt(rs.median, 3)})`, '']);
      if (ci === convs.length - 1) {
        summary.push([`conversation TTFT mean ratio to llama-server with cache ≤ 0.95 (${c}, paired)`, fmt(rs.mean, 3), met(rs.mean, (x) => x <= 0.95)]);
        summary.push([`no turn above 1.10× llama-server (${c}, paired)`, `max ${fmt(rs.max, 3)} at turn ${maxTurnAt ?? '–'}`, met(rs.max, (x) => x <= 1.10)]);
      }
    }
    const ln = runs.find((r) => r.server === 'llama-server, no cache');
    if (bel && ln) for (const t of marks.slice(1)) md.push(`| Bellows / llama-server without cache, turn ${t} | ${fmt(ratio(ttftAt(bel, t), ttftAt(ln, t)), 3)} | (reported) | |`);
    md.push('');
    if (bel && lc) {
      md.push('<details><summary>Every turn (paired)</summary>', '');
      md.push('| turn | evaluated tokens, Bellows / llama-server | Bellows TTFT (ms) | llama-server TTFT (ms) | ratio | server-side prompt ms, Bellows / llama-server | outside it (TTFT − prompt ms), Bellows / llama-server | Bellows pool |');
      md.push('|---|---|---|---|---|---|---|---|');
      for (let i = 0; i < turnsN; i++) {
        const x = bel.turns[i], y = lc.turns[i];
        const ev = (t) => (t?.prompt_tokens != null && t?.cached_tokens != null ? t.prompt_tokens - t.cached_tokens : '–');
        const pool = [x?.pool?.on_request > 0 ? '**grew on the request**' : null, x?.pool?.ahead > 0 ? 'grew ahead after the turn' : null].filter(Boolean);
        md.push(`| ${i + 1} | ${ev(x)} / ${ev(y)} | ${fmt(x?.ttft_ms, 0)} | ${fmt(y?.ttft_ms, 0)} | ${fmt(rs.ratios[i], 3)} | ${fmt(x?.server_prompt_ms, 0)} / ${fmt(y?.server_prompt_ms, 0)} | ${fmt(outside(x), 0)} / ${fmt(outside(y), 0)} | ${x?.pool?.pool_cells ?? '–'} cells${pool.length ? `, ${pool.join(', ')}` : ''} |`);
      }
      md.push('', '</details>', '');
    }
    // plot data: one column per server
    const dat = [`# turn ${servers.map((s) => `"${s}"`).join(' ')} ratio`];
    for (let t = 1; t <= maxTurn; t++) dat.push([t, ...servers.map((s) => { const v = ttftAt(runs.find((x) => x.server === s), t); return v == null ? 'NaN' : v.toFixed(1); }), rs.ratios[t - 1] == null ? 'NaN' : rs.ratios[t - 1].toFixed(4)].join(' '));
    const slug = c.replace(/[^a-z0-9]+/gi, '-');
    writeFileSync(join(raw, `ttft-${slug}.dat`), dat.join('\n') + '\n');
    const gp = [
      'set terminal pngcairo size 900,520 font ",11"',
      `set output "${join(raw, `ttft-${slug}.png`)}"`,
      `set title "Time to first token per turn — ${c} chat, paired${meta.quick ? ' (quick run, demo model)' : ''}"`,
      'set xlabel "turn"', 'set ylabel "TTFT (ms)"', 'set grid', 'set key outside bottom center horizontal', 'set datafile missing "NaN"',
      `set xrange [1:${maxTurn}]`, `set xtics ${Math.max(1, Math.ceil(maxTurn / 15))}`, 'set mxtics 1', 'set yrange [0:*]',
      'set y2label "Bellows / llama-server with cache"', 'set y2tics', 'set y2range [0.5:1.5]',
      `plot ${[...servers.map((s, i) => `"${join(raw, `ttft-${slug}.dat`)}" using 1:${i + 2} with linespoints lw 2 title "${s === 'bellows' ? 'Bellows' : s}"`),
        ...(bel && lc ? [`"${join(raw, `ttft-${slug}.dat`)}" using 1:${servers.length + 2} axes x1y2 with points pt 7 ps 1.2 title "per-turn ratio (right axis)"`, '1.10 axes x1y2 with lines dt 2 lc rgb "gray" title "1.10"'] : [])].join(', ')}`,
    ];
    writeFileSync(join(raw, `ttft-${slug}.gp`), gp.join('\n') + '\n');
    md.push(`![TTFT per turn, ${c}](${rel(`ttft-${slug}.png`)})`);
    md.push('');
  });
  const lp = conv.late_turn_profile;
  if (lp) {
    md.push(`### Late-turn profile (turn ${lp.turn} of the ${lp.conversation} chat, one more turn to each server under \`perf\`)`);
    md.push('');
    md.push('| server | TTFT (ms) | evaluated / cached tokens | server-side prompt ms |');
    md.push('|---|---|---|---|');
    for (const side of ['bellows', 'llama-server']) {
      const x = lp[side];
      if (x) md.push(`| ${side} | ${fmt(x.ttft_ms, 0)} | ${x.prompt_tokens != null && x.cached_tokens != null ? x.prompt_tokens - x.cached_tokens : '–'} / ${x.cached_tokens ?? '–'} | ${fmt(x.server_prompt_ms, 0)} |`);
    }
    md.push('');
    for (const side of ['bellows', 'llama-server']) {
      const f = lp[side]?.perf;
      if (!f || !existsSync(join(raw, f))) continue;
      md.push(`<details><summary>${side}: hottest symbols of that turn (perf, every thread of its processes)</summary>`, '', '```');
      md.push(...readFileSync(join(raw, f), 'utf8').trim().split('\n').slice(0, 20), '```', '', '</details>', '');
    }
  }
  csv('conversation.csv', ['conversation', 'server', 'turn', 'ttft_ms', 'total_ms', 'prompt_tokens', 'cached_tokens', 'answer_tokens', 'server_prompt_ms', 'pool_growths_on_request', 'pool_growths_ahead', 'pool_cells'], rowsCsv);
  md.push(`Raw: [conversation.csv](${rel('conversation.csv')}), \`conv.json\`.`);
}
md.push('');

// The calibration of the paired conversation (serve_bench.mjs conv-aa): llama-server paired
// with a second llama-server exactly as Bellows is, so the spread two identical programs give
// on this machine says how far a single turn's ratio can be read.
const aa = load('conv-aa.json');
if (aa) {
  const a = aa.runs.find((r) => r.paired_with === 'llama-server, cache');
  const b = aa.runs.find((r) => r.server === 'llama-server, cache');
  if (a && b) {
    const n = Math.max(a.turns.length, b.turns.length);
    const at = (run, t) => run.turns.find((x) => x.turn === t)?.ttft_ms ?? null;
    const rs = ratioSummary(Array.from({ length: n }, (_, i) => at(a, i + 1)), Array.from({ length: n }, (_, i) => at(b, i + 1)));
    const over = rs.ratios.map((r, i) => (r != null && (r > 1.10 || r < 1 / 1.10) ? i + 1 : null)).filter((x) => x != null);
    md.push(`### Calibration: llama-server paired with itself (${a.conversation} chat)`);
    md.push('');
    md.push('A second llama-server (same build, same options, `--cache-prompt`) takes Bellows\' place and the turns');
    md.push('are paired exactly as above. The two programs are identical, so every departure of a ratio from 1 is');
    md.push('this machine\'s noise: it is how far one turn\'s ratio, or the mean of the conversation, can be read.');
    md.push('');
    md.push('| A / B, identical servers | value |');
    md.push('|---|---|');
    md.push(`| mean of ${rs.n} per-turn ratios | ${fmt(rs.mean, 3)} (median ${fmt(rs.median, 3)}, q1–q3 ${fmt(rs.q1, 3)}–${fmt(rs.q3, 3)}) |`);
    md.push(`| lowest / highest turn | ${fmt(rs.min, 3)} / ${fmt(rs.max, 3)} |`);
    md.push(`| turns beyond 1.10 either way | ${over.length ? over.join(', ') : 'none'} |`);
    md.push('');
    summary.push([`calibration: llama-server / llama-server, same pairing (${a.conversation}, reported)`, `mean ${fmt(rs.mean, 3)}, range ${fmt(rs.min, 3)}–${fmt(rs.max, 3)}`, '']);
  }
}

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
// Paired bursts (serve_bench.mjs concurrency()): conc.first holds each server's first burst,
// conc.pairs the compared ones.
const conc = load('conc.json');
md.push('## 4. Concurrency: 4 simultaneous streams');
md.push('');
if (!conc) {
  md.push('Not measured.');
} else {
  const cfgs = conc.configs ?? {};
  md.push(`Four chats start at once, each asking for ${conc.max_tokens} tokens (temperature 0); aggregate = all answer`);
  md.push('tokens / wall time from the first request to the last answer. **Paired:** Bellows');
  md.push(`(\`${cfgs.bellows ?? '?'}\`) and llama-server (\`${cfgs['llama-server'] ?? '?'}\`, the same total context) are up at once;`);
  md.push('a first burst on each (not compared: it also pays for Bellows\' pool growing to hold four 4096-cell');
  md.push('reservations), then pairs: a burst on one server, then — once it is idle — the other\'s burst on the');
  md.push('same prompts (Bellows first on odd pairs, llama-server first on even ones), each pair with new prompts. The target is judged on the median of the per-pair ratios.');
  md.push('A pair where llama-server\'s chat parser cut a stream short (random-weight output holding invalid');
  md.push('UTF-8) did unequal work: it is listed but left out, and another pair is run.');
  md.push('');
  md.push('| burst | prompt set | Bellows tok/s | llama-server tok/s | ratio | mean TTFT Bellows / llama-server (ms) | tokens Bellows / llama-server |');
  md.push('|---|---|---|---|---|---|---|');
  const fb = conc.first?.bellows, fl = conc.first?.['llama-server'];
  if (fb || fl) md.push(`| first (not compared) | ${fb?.prompt_set ?? fl?.prompt_set ?? '–'} | ${fmt(fb?.aggregate_tps, 2)} | ${fmt(fl?.aggregate_tps, 2)} | ${fmt(ratio(fb?.aggregate_tps, fl?.aggregate_tps), 3)} | ${fmt(fb?.mean_ttft_ms, 0)} / ${fmt(fl?.mean_ttft_ms, 0)} | ${fb?.tokens ?? '–'} / ${fl?.tokens ?? '–'} |`);
  const rowsCsv = [];
  (conc.pairs ?? []).forEach((p, i) => {
    const x = p.bellows, y = p['llama-server'];
    md.push(`| pair ${i + 1}${p.cut ? ' (cut: left out)' : ''} | ${p.prompt_set} | ${fmt(x.aggregate_tps, 2)} | ${fmt(y.aggregate_tps, 2)} | ${fmt(p.ratio, 3)} | ${fmt(x.mean_ttft_ms, 0)} / ${fmt(y.mean_ttft_ms, 0)} | ${x.tokens} / ${y.tokens} |`);
    rowsCsv.push([i + 1, p.prompt_set, x.aggregate_tps, y.aggregate_tps, p.ratio, x.mean_ttft_ms, y.mean_ttft_ms, x.tokens, y.tokens, p.cut]);
  });
  csv('concurrency.csv', ['pair', 'prompt_set', 'bellows_tps', 'llama_server_tps', 'ratio', 'bellows_mean_ttft_ms', 'llama_server_mean_ttft_ms', 'bellows_tokens', 'llama_server_tokens', 'cut'], rowsCsv);
  const bp = conc.ps;
  if (bp) md.push('', `Bellows' pool after the bursts: ${bp.pool_tokens} cells (${fmt(mib(bp.kv_bytes))} MiB of KV), ${bp.pool_growths} growths.`);
  const rs = spread((conc.pairs ?? []).map((p) => p.ratio));
  md.push('');
  md.push('| comparison | value | target | met |');
  md.push('|---|---|---|---|');
  md.push(`| Bellows / llama-server aggregate tok/s, median of ${rs.n} paired bursts | ${fmt(rs.median, 3)} (${range(rs, 3)}) | ≥ 1.0 | ${met(rs.median, (x) => x >= 1)} |`);
  summary.push([`4-stream throughput ≥ llama-server (median of ${rs.n} paired bursts)`, `${fmt(rs.median, 3)} (${range(rs, 3)})`, met(rs.median, (x) => x >= 1)]);
  md.push('');
  md.push(`Raw: [concurrency.csv](${rel('concurrency.csv')}), \`conc.json\`.`);
}
md.push('');

// ---- 5. growth ---------------------------------------------------------------------------
md.push('## 5. Growth: moving a history into a bigger pool vs re-evaluating it');
md.push('');
const gtype = (meta.types ?? ['q8_0'])[0];
const ge = load(`growth-${gtype}.json`)?.growth ?? load(`engine-${gtype}.json`)?.growth;
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
