/**
 * @module
 * Pooled start: a compute manager started `empty` (a config file without a
 * spec) waits in the pool; `POST /configure` with the spec takes it to
 * `running`. Ours is the wall time from sending `/configure` to `/status`
 * saying `running`, which leaves out the pool wait exactly as Neon's
 * `wait_for_spec_ms` does (the manager restarts its start-up clock when the
 * spec arrives). The baseline is the same work without the pool: a cold start
 * of the same spec from a config file, spawn to `running`, run interleaved.
 * Both sides are served a basebackup the pageserver has prepared (see
 * `cold_start.ts`).
 */

import { pairedRatio, round, summarize } from "./_stats.ts";
import { type Benchmark, target } from "./_types.ts";
import {
  coldStart,
  fetchBasebackupBytes,
  flushDirtyPages,
  openStartupBench,
  pooledStart,
} from "./_cold_start_runs.ts";

/** The pooled-start benchmark. */
export const benchmark: Benchmark = async ({ repetitions, log }) => {
  await using bench = await openStartupBench();
  const pooled: number[] = [];
  const cold: number[] = [];
  const pooledTotal: number[] = [];
  const coldTotal: number[] = [];
  const waits: number[] = [];
  for (let rep = 1; rep <= repetitions; rep++) {
    await fetchBasebackupBytes(bench); // prepared, as for the cold start
    await flushDirtyPages(); // as for the cold start: neither pays for the other's writeback
    const pool = await pooledStart(bench);
    await fetchBasebackupBytes(bench);
    await flushDirtyPages();
    const base = await coldStart(bench);
    pooled.push(pool.configureToRunningMs);
    pooledTotal.push(pool.metrics.total_startup_ms);
    waits.push(pool.metrics.wait_for_spec_ms);
    cold.push(base.wallMs);
    coldTotal.push(base.metrics.total_startup_ms);
    log(
      `pooled start ${rep}/${repetitions}: /configure → running ${
        Math.round(pool.configureToRunningMs)
      } ms (waited ${pool.metrics.wait_for_spec_ms} ms for the spec), ` +
        `cold start ${Math.round(base.wallMs)} ms`,
    );
  }
  const ratio = pairedRatio(pooled, cold);
  return {
    name: "pooled_start",
    description:
      "An empty compute sent POST /configure until running (the pool wait, wait_for_spec_ms, " +
      "left out), against a cold start of the same spec from a config file (spawn → running).",
    rows: [
      {
        name: "pooled start: /configure → running",
        unit: "ms",
        ours: summarize(pooled),
        baseline: summarize(cold),
        ratio: round(ratio),
        extra: { wait_for_spec_ms_median: round(summarize(waits).median) },
      },
      {
        name: "pooled start: total_startup_ms",
        unit: "ms",
        ours: summarize(pooledTotal),
        baseline: summarize(coldTotal),
        ratio: round(pairedRatio(pooledTotal, coldTotal)),
      },
    ],
    targets: [target("pooled_ratio", round(ratio), 1.2, "×")],
  };
};
