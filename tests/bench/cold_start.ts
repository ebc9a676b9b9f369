/**
 * @module
 * Cold start: a compute manager spawned from a config file (Primary, three
 * safekeepers, basebackup over loopback) until `/status` says `running`,
 * against the same basebackup bytes fetched from the same pageserver, `tar xzf`
 * and a bare `postgres` until it answers `SELECT 1`; then the start-up latency
 * of one compute restarted many times, per phase, as Neon's
 * `test_compute_startup_latency` reports it.
 *
 * Before each side, the pageserver is asked for the basebackup at the commit
 * LSN once, untimed, so both sides are served a basebackup the pageserver has
 * prepared (as Neon's pageserver does with its basebackup cache); the baseline
 * then fetches it, and the manager, which syncs the safekeepers to that same
 * LSN, is served the same bytes (`basebackup_bytes` equals the baseline's size).
 *
 * Both sides write the ~40 MB image to the same disk, whose writeback can
 * slow the next one down by a factor of two: each side starts after `sync`,
 * and the pairs alternate which side goes first.
 *
 * The moment a compute reached `running` is read from its own clock
 * (`/status` `start_time` + `total_startup_ms`), so `/status` is polled only
 * every 50 ms and the polling costs the start almost nothing.
 *
 * `manager_own_ms` is the wall time from spawn to `running` minus what the
 * manager waits for: the pageserver's bytes (the baseline's fetch time of the
 * same bytes in the same repetition) and Postgres (`start_postgres_ms`: spawn
 * of the postmaster until it accepts connections). What remains is Deno's
 * start-up, reading the config, syncing the safekeepers, writing the conf,
 * decompressing and extracting the tar, the fix-ups and the spec apply.
 */

import { pairedRatio, quantile, round, summarize } from "./_stats.ts";
import { type Benchmark, type BenchRow, target } from "./_types.ts";
import {
  type BaselineStart,
  baselineStart,
  coldStart,
  fetchBasebackupBytes,
  flushDirtyPages,
  MANAGER_PHASES,
  type ManagerStart,
  openStartupBench,
  type StartupBench,
  startupMetrics,
} from "./_cold_start_runs.ts";
import type { ComputeMetrics } from "../../src/api/responses.ts";

/** Restarts measured for the latency percentiles (`--quick`: 5). */
const RESTARTS = 100;
const QUICK_RESTARTS = 5;

/** The cold-start benchmark. */
export const benchmark: Benchmark = async ({ quick, repetitions, log }) => {
  await using bench = await openStartupBench();
  const ours: number[] = [];
  const own: number[] = [];
  const baseline: number[] = [];
  const oursPhases: Record<string, number[]> = {};
  const baselinePhases: Record<string, number[]> = { fetch: [], extract: [], postgres_start: [] };
  const sameBytes: boolean[] = [];
  for (let rep = 1; rep <= repetitions; rep++) {
    // Alternate which side goes first, and let neither pay for the other's writeback.
    let base: BaselineStart | undefined;
    let cold: ManagerStart | undefined;
    for (const side of rep % 2 === 1 ? ["baseline", "ours"] : ["ours", "baseline"]) {
      // Prepared (see the module comment) before each side: a compute that ran writes WAL.
      await fetchBasebackupBytes(bench);
      await flushDirtyPages();
      if (side === "baseline") base = await baselineStart(bench);
      else cold = await coldStart(bench);
    }
    if (base === undefined || cold === undefined) throw new Error("a side of the pair did not run");
    baseline.push(base.totalMs);
    ours.push(cold.wallMs);
    own.push(cold.wallMs - base.fetchMs - cold.metrics.start_postgres_ms);
    baselinePhases.fetch.push(base.fetchMs);
    baselinePhases.extract.push(base.extractMs);
    baselinePhases.postgres_start.push(base.postgresMs);
    for (const [phase, ms] of Object.entries(stackedPhases(cold.wallMs, cold.metrics))) {
      (oursPhases[phase] ??= []).push(ms);
    }
    sameBytes.push(cold.metrics.basebackup_bytes === base.bytes);
    log(
      `cold start ${rep}/${repetitions}: ours ${Math.round(cold.wallMs)} ms ` +
        `(basebackup ${cold.metrics.basebackup_ms}, postgres ${cold.metrics.start_postgres_ms}), ` +
        `baseline ${Math.round(base.totalMs)} ms (fetch ${Math.round(base.fetchMs)}, ` +
        `extract ${Math.round(base.extractMs)}, postgres ${Math.round(base.postgresMs)})`,
    );
  }
  const ratio = pairedRatio(ours, baseline);
  const ownMedian = quantile(own, 0.5);

  const restarts = quick ? QUICK_RESTARTS : RESTARTS;
  const latency = await restartLatency(bench, restarts, log);

  const rows: BenchRow[] = [
    {
      name: "cold start: spawn → running",
      unit: "ms",
      ours: summarize(ours),
      baseline: summarize(baseline),
      ratio: round(ratio),
      extra: {
        basebackup_bytes_same: sameBytes.every(Boolean) ? "yes" : "no",
      },
    },
    { name: "cold start: manager's own part", unit: "ms", ours: summarize(own) },
    ...latencyRows(latency, restarts),
  ];
  return {
    name: "cold_start",
    description:
      "A manager spawned from a config file (Primary, 3 safekeepers, basebackup over loopback) " +
      "until running, against the same basebackup bytes fetched, `tar xzf` and bare postgres " +
      "until SELECT 1; manager_own_ms = wall time − the baseline's fetch of the same bytes − " +
      "start_postgres_ms; then p50/p90/p99 per phase over restarts of one compute.",
    rows,
    targets: [
      target("cold_start_ratio", round(ratio), 1.3, "×"),
      target("manager_own_ms", round(ownMedian), 150, "ms"),
    ],
    phases: {
      ours: medians(oursPhases),
      baseline: medians(baselinePhases),
    },
  };
};

/** Restarts one compute `count` times (terminate, start from its config) and collects its phases. */
async function restartLatency(
  bench: StartupBench,
  count: number,
  log: (message: string) => void,
): Promise<ComputeMetrics[]> {
  const id = bench.nextId("restarted");
  await bench.cluster.startCompute({ id, tenantId: bench.tenantId, timelineId: bench.timelineId });
  const samples: ComputeMetrics[] = [];
  for (let i = 1; i <= count; i++) {
    await bench.cluster.computeAction(id, "stop");
    const compute = await bench.cluster.computeAction(id, "start");
    samples.push(await startupMetrics(compute));
    if (i % 10 === 0 || i === count) log(`restart latency: ${i}/${count}`);
  }
  await bench.cluster.computeAction(id, "stop");
  return samples;
}

function latencyRows(samples: ComputeMetrics[], restarts: number): BenchRow[] {
  return MANAGER_PHASES.filter((phase) => phase !== "wait_for_spec_ms").map((phase) => {
    const values = samples.map((metrics) => metrics[phase]);
    return {
      name: `restart latency: ${phase}`,
      unit: "ms",
      ours: summarize(values),
      extra: {
        restarts,
        p50: round(quantile(values, 0.5)),
        p90: round(quantile(values, 0.9)),
        p99: round(quantile(values, 0.99)),
      },
    };
  });
}

/**
 * The manager's start split into parts that add up to its wall time: before
 * its start-up clock (Deno's start-up, reading the config, the HTTP servers),
 * the safekeeper sync (check and full sync), basebackup, Postgres start, the
 * spec apply, and the rest of `total_startup_ms` (conf, fix-ups, WAL source).
 */
function stackedPhases(wallMs: number, metrics: ComputeMetrics): Record<string, number> {
  const sync = metrics.sync_sk_check_ms + metrics.sync_safekeepers_ms;
  const measured = sync + metrics.basebackup_ms + metrics.start_postgres_ms + metrics.config_ms;
  return {
    boot: wallMs - metrics.total_startup_ms,
    sync_safekeepers: sync,
    basebackup: metrics.basebackup_ms,
    start_postgres: metrics.start_postgres_ms,
    config: metrics.config_ms,
    other: metrics.total_startup_ms - measured,
  };
}

function medians(samples: Record<string, number[]>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(samples).map(([name, values]) => [name, round(quantile(values, 0.5))]),
  );
}
