// Tests of bench/pairs.mjs: `node --test bench/pairs.test.mjs`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantile, spread, pairRatios, ratioSummary } from './pairs.mjs';

test('quantile interpolates between ranks', () => {
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantile([1, 2, 3, 4], 0.25), 1.75);
  assert.equal(quantile([5], 0.75), 5);
  assert.equal(quantile([], 0.5), null);
});

test('spread of an odd and an even list, unsorted input, non-finite values dropped', () => {
  const s = spread([3, 1, 2, NaN, null, Infinity]);
  assert.deepEqual(s, { n: 3, median: 2, mean: 2, min: 1, max: 3, q1: 1.5, q3: 2.5, iqr: 1 });
  const e = spread([0.9, 1.1, 1.0, 0.96, 1.02, 0.98, 1.06, 0.95]);
  assert.equal(e.n, 8);
  assert.ok(Math.abs(e.median - 0.99) < 1e-12);
  assert.equal(e.min, 0.9);
  assert.equal(e.max, 1.1);
  assert.ok(e.q1 < e.median && e.median < e.q3);
  assert.equal(spread([]).median, null);
});

test('pair ratios: a missing or zero side costs that pair only', () => {
  assert.deepEqual(pairRatios([2, 3, null, 4], [1, 0, 2, 8]), [2, null, null, 0.5]);
  assert.deepEqual(pairRatios([1, 2], [1]), [1, null]);
});

test('ratio summary names the largest pair', () => {
  const r = ratioSummary([100, 130, 90, 95], [100, 100, 100, 100]);
  assert.equal(r.argmax, 1);
  assert.equal(r.max, 1.3);
  assert.equal(r.n, 4);
  assert.ok(Math.abs(r.mean - 1.0375) < 1e-12);
  assert.equal(ratioSummary([null], [1]).argmax, null);
});
