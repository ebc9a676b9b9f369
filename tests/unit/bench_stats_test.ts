/**
 * @module
 * The benchmark statistics: quantiles by linear interpolation, summaries,
 * the paired ratio (median of per-repetition ratios) and report rounding.
 */

import assert from "node:assert/strict";
import { pairedRatio, quantile, round, summarize } from "../bench/_stats.ts";

Deno.test("quantile interpolates between the sorted values and clamps q", () => {
  assert.equal(quantile([3, 1, 2], 0.5), 2);
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantile([10, 20], 0.95), 19.5);
  assert.equal(quantile([5], 0.99), 5);
  assert.equal(quantile([1, 2, 3], -1), 1);
  assert.equal(quantile([1, 2, 3], 2), 3);
  assert.ok(Number.isNaN(quantile([], 0.5)));
});

Deno.test("quantile leaves its input unsorted", () => {
  const values = [3, 1, 2];
  quantile(values, 0.5);
  assert.deepEqual(values, [3, 1, 2]);
});

Deno.test("summarize gives n, min, median, p95 and max", () => {
  const values = Array.from({ length: 21 }, (_, i) => 20 - i);
  assert.deepEqual(summarize(values), { n: 21, min: 0, median: 10, p95: 19, max: 20 });
});

Deno.test("summarize of nothing is NaN but n = 0", () => {
  const summary = summarize([]);
  assert.equal(summary.n, 0);
  for (const key of ["min", "median", "p95", "max"] as const) {
    assert.ok(Number.isNaN(summary[key]), key);
  }
});

Deno.test("pairedRatio is the median of per-pair ratios, not the ratio of medians", () => {
  // Per-pair ratios 2, 1 and 3: the median is 2, while the medians alone (4 and 4) give 1.
  assert.equal(pairedRatio([2, 4, 30], [1, 4, 10]), 2);
  assert.equal(pairedRatio([2, 20, 200], [1, 10, 100]), 2);
  assert.equal(pairedRatio([1, 3, 10], [1, 1, 1]), 3);
});

Deno.test("pairedRatio refuses samples that are not pairs", () => {
  assert.throws(() => pairedRatio([1, 2], [1]), /unpaired samples: 2 against 1/);
  assert.throws(() => pairedRatio([], []), /unpaired/);
});

Deno.test("round keeps three significant digits and integers whole", () => {
  assert.equal(round(1234), 1234);
  assert.equal(round(123.456), 123);
  assert.equal(round(12.3456), 12.3);
  assert.equal(round(1.23456), 1.23);
  assert.equal(round(0.0123456), 0.0123);
  assert.equal(round(-12.3456), -12.3);
  assert.ok(Number.isNaN(round(NaN)));
  assert.equal(round(Infinity), Infinity);
});
