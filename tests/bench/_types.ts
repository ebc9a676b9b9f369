/**
 * @module
 * What a benchmark is and what it hands the report: its rows (one per
 * measured thing, ours beside the baseline, with the paired ratio), the
 * targets it checks, and optional extra facts (statement counts, phases).
 */

import type { Summary } from "./_stats.ts";

/** How a run is asked for. */
export interface BenchOptions {
  /** `--quick`: few repetitions, small sizes; the whole suite in under 2 minutes. */
  quick: boolean;
  /** Repetitions of each measurement (baseline and ours interleaved). */
  repetitions: number;
  /** Scratch space the benchmark owns for its run; removed afterwards by the runner. */
  workDir: string;
  /** Progress lines for the console. */
  log(message: string): void;
}

/** One measured thing, ours beside the baseline run interleaved with it. */
export interface BenchRow {
  name: string;
  unit: string;
  ours: Summary;
  /** Absent where the issue names no baseline (e.g. a statement count). */
  baseline?: Summary;
  /** Median of per-repetition `ours / baseline`; absent without a baseline. */
  ratio?: number;
  /** Anything else worth a column: statement counts, phases, sizes. */
  extra?: Record<string, number | string>;
}

/** A target of the issue, checked against this run. */
export interface Target {
  name: string;
  value: number;
  target: number;
  unit: string;
  /** Whether `value` is at most (`"max"`) or at least (`"min"`) `target`. */
  kind: "max" | "min";
  met: boolean;
}

/** What one benchmark returns. */
export interface BenchResult {
  name: string;
  /** One sentence: what it measures and against what. */
  description: string;
  rows: BenchRow[];
  targets: Target[];
  /** Cold start only: per-phase medians (ms) of ours and of the baseline, for the chart. */
  phases?: { ours: Record<string, number>; baseline: Record<string, number> };
}

/** A benchmark module's entry point. */
export type Benchmark = (options: BenchOptions) => Promise<BenchResult>;

/** A target built from a value, met or not. */
export function target(
  name: string,
  value: number,
  limit: number,
  unit: string,
  kind: "max" | "min" = "max",
): Target {
  const met = kind === "max" ? value <= limit : value >= limit;
  return { name, value, target: limit, unit, kind, met };
}
