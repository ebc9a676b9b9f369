/**
 * @module
 * The numbers every benchmark reports: min / median / p95 of a sample, and the
 * paired ratio of the product against the baseline it ran interleaved with
 * (the median of the per-repetition ratios, so drift in the machine's load
 * over the run cancels out pair by pair).
 */

/** A sample summarised. Values keep the unit of the sample (ms, req/s, MiB…). */
export interface Summary {
  n: number;
  min: number;
  median: number;
  p95: number;
  max: number;
}

/** The `q`-quantile (0 ≤ q ≤ 1) of `values` by linear interpolation; NaN for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * Math.min(1, Math.max(0, q));
  const below = Math.floor(position);
  const above = Math.ceil(position);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
}

/** min / median / p95 / max of a sample. */
export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    min: values.length === 0 ? NaN : Math.min(...values),
    median: quantile(values, 0.5),
    p95: quantile(values, 0.95),
    max: values.length === 0 ? NaN : Math.max(...values),
  };
}

/**
 * The median of `ours[i] / baseline[i]` over the pairs measured in the same
 * repetition. Throws when the samples are not paired.
 */
export function pairedRatio(ours: readonly number[], baseline: readonly number[]): number {
  if (ours.length !== baseline.length || ours.length === 0) {
    throw new Error(`unpaired samples: ${ours.length} against ${baseline.length}`);
  }
  return quantile(ours.map((value, i) => value / baseline[i]), 0.5);
}

/** Rounds for a report: 3 significant digits, integers kept whole. */
export function round(value: number): number {
  if (!Number.isFinite(value) || Number.isInteger(value)) return value;
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(value) || 1)));
  return Number(value.toFixed(Math.min(digits, 6)));
}
