// gauge.js -- the context gauge's geometry and the time-to-first-token chart, as pure
// functions of numbers (no DOM; node's tests check them). app.js draws what they return.
//
// The bar spans the model's window (context_max), or the runner's pool when that is
// larger (a pool shared by parallel requests can be). Positions use a square-root scale:
// a 60-token chat in a 32768-token window would be a hair on a linear bar, and the bar's
// point is to be seen growing turn by turn. The numbers beside it are exact (docs/ui.md).

// Fraction [0, 1] of the bar at token count N on a bar of SCALE tokens.
export function position(n, scale) {
  if (!(scale > 0) || !(n > 0)) return 0;
  return Math.min(1, Math.sqrt(n / scale));
}

// The segments of one turn's bar, in tokens and as fractions [from, to):
//   cached   prompt tokens reused from the prefix cache (prompt_cache_tokens)
//   prompt   the rest of the prompt the model read (prompt_eval_count - cached)
//   answer   the answer's tokens (eval_count; live while streaming)
//   reserved the rest of the reservation (context_length), drawn as an outline
// and markers: pool (the runner's /api/ps context.pool_tokens) and cut (prompt_tokens, the
// whole prompt before the cut, when it was larger than what the model read).
export function layout(t, liveAnswer = 0) {
  const max = num(t.context_max);
  const pool = num(t.pool);
  const scale = Math.max(max, pool, num(t.context_length), 1);
  const read = num(t.prompt_eval_count ?? t.prompt_tokens);
  const cached = Math.min(num(t.prompt_cache_tokens), read);
  const answer = Math.max(num(t.eval_count), liveAnswer);
  const used = read + answer;
  const reserved = Math.max(num(t.context_length), used);
  const seg = (kind, from, to) => ({ kind, from, to, x0: position(from, scale), x1: position(to, scale) });
  const segments = [
    seg('cached', 0, cached),
    seg('prompt', cached, read),
    seg('answer', read, used),
    seg('reserved', used, reserved),
  ].filter((s) => s.to > s.from);
  const markers = [];
  if (pool > 0) markers.push({ kind: 'pool', at: pool, x: position(pool, scale) });
  if (max > 0) markers.push({ kind: 'max', at: max, x: position(max, scale) });
  if (num(t.prompt_tokens) > read) markers.push({ kind: 'cut', at: num(t.prompt_tokens), x: position(num(t.prompt_tokens), scale) });
  return { scale, segments, markers, ticks: ticks(scale) };
}

function num(v) {
  return Number.isFinite(v) && v > 0 ? v : 0;
}

// Tick marks at powers of two from 1024 up to the scale (labels "1k", "4k", ...), thinned
// so that no two are closer than 6% of the bar.
export function ticks(scale) {
  const out = [];
  let last = -1;
  for (let v = 1024; v <= scale; v *= 2) {
    const x = position(v, scale);
    if (x - last < 0.06 && v !== scale) continue;
    out.push({ at: v, x, label: v >= 1048576 ? `${v / 1048576}M` : `${v / 1024}k` });
    last = x;
  }
  return out;
}

// The SVG (a string: numbers only, nothing from a model) of time to first token per turn:
// one bar per answer, the latest highlighted, a scale line at the largest value.
export function ttftChart(series, width = 240, height = 64) {
  const n = series.length;
  const top = Math.max(...series, 1);
  const pad = 14;
  const w = n ? Math.min(24, (width - 4) / n) : 0;
  const bars = series.map((v, i) => {
    const h = Math.max(1, ((height - pad - 2) * v) / top);
    const cls = i === n - 1 ? 'ttft-bar ttft-last' : 'ttft-bar';
    return `<rect class="${cls}" x="${(2 + i * w).toFixed(1)}" y="${(height - h).toFixed(1)}" width="${Math.max(1, w - 2).toFixed(1)}" height="${h.toFixed(1)}"><title>turn ${i + 1}: ${fmtMs(v)}</title></rect>`;
  });
  const label = n ? `max ${fmtMs(top)}, last ${fmtMs(series[n - 1])}` : 'no turns yet';
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="time to first token per turn: ${label}">` +
    `<text class="ttft-label" x="2" y="10">${label}</text>` +
    `<line class="ttft-axis" x1="0" y1="${height - 0.5}" x2="${width}" y2="${height - 0.5}"/>` + bars.join('') + '</svg>';
}

export function fmtMs(ms) {
  if (!Number.isFinite(ms)) return '–';
  return ms >= 10000 ? `${(ms / 1000).toFixed(0)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export function fmtTokens(n) {
  return Number.isFinite(n) ? n.toLocaleString('en-US') : '–';
}
