// pairs.mjs -- the statistics of paired measurements (issue 17): bench/run measures Bellows
// and its peer alternately (A B A B ...), so each pair saw the same machine state, and the
// figure that matters is the distribution of the per-pair ratios, not the ratio of two
// means taken minutes apart. Pure functions, no I/O; tested by bench/pairs.test.mjs
// (`node --test bench/pairs.test.mjs`).

const finite = (x) => typeof x === 'number' && Number.isFinite(x);

// The q-quantile (0..1) of sorted values, linear between the two nearest ranks (the
// "type 7" rule of R and numpy's default), so a quartile of 8 pairs is not just one pair.
export function quantile(sorted, q) {
  if (!sorted.length) return null;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h), hi = Math.ceil(h);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (h - lo);
}

// Spread of a list of numbers (non-finite ones left out): n, median, mean, min, max,
// the quartiles q1/q3 and iqr = q3 - q1. All null for an empty list.
export function spread(values) {
  const v = values.filter(finite).sort((a, b) => a - b);
  if (!v.length) return { n: 0, median: null, mean: null, min: null, max: null, q1: null, q3: null, iqr: null };
  const q1 = quantile(v, 0.25), q3 = quantile(v, 0.75);
  return {
    n: v.length, median: quantile(v, 0.5), mean: v.reduce((s, x) => s + x, 0) / v.length,
    min: v[0], max: v[v.length - 1], q1, q3, iqr: q3 - q1,
  };
}

// Per-pair ratios a[i] / b[i]; a pair with a missing or zero side gives null (and is left
// out of the spread), so one failed repetition costs one pair, not the whole figure.
export function pairRatios(a, b) {
  const n = Math.max(a.length, b.length);
  const out = [];
  for (let i = 0; i < n; i++) out.push(finite(a[i]) && finite(b[i]) && b[i] !== 0 ? a[i] / b[i] : null);
  return out;
}

// The ratios' spread plus where the largest one is (its index in the input), for "no turn
// above 1.10" style targets that must name the turn.
export function ratioSummary(a, b) {
  const r = pairRatios(a, b);
  const s = spread(r);
  let argmax = null;
  r.forEach((x, i) => { if (x != null && (argmax === null || x > r[argmax])) argmax = i; });
  return { ...s, ratios: r, argmax };
}
