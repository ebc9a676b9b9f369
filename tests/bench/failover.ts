/**
 * @module
 * Failover: how long a compute takes to answer again through the other
 * pageserver after its own was killed (the refresh path: the emulated Neon
 * extension's probe fails, the manager re-reads its config), and how long a
 * compute restart takes with 64 and 512 MiB of WAL since the last compaction
 * (quick: 8 and 16 MiB) against bare Postgres crash recovery of the same
 * basebackup. The issue sets no target for either; this reports numbers.
 *
 * The baseline Postgres runs with the compute's server settings (the
 * cold-start baseline's: `fsync`, `shared_buffers` and `max_connections` as
 * the harness spec gives them), so the "Postgres start" rows compare crash
 * recovery under one configuration.
 *
 * One cluster (2 pageservers, 3 safekeepers) serves both parts; the failover
 * compute is stopped before the restarts so that one primary at a time
 * writes the timeline. See `_failover_switch.ts` and `_failover_restart.ts`
 * for what each part times.
 *
 * Run alone: `deno task bench --only failover [--quick]`.
 */

import { startCluster } from "../../harness/cluster.ts";
import type { ComputeMetrics } from "../../src/api/responses.ts";
import { restartRepetitions, walSizesMiB } from "./_failover_plan.ts";
import {
  type PreparedWal,
  prepareWal,
  RESTART_PHASES,
  restartBench,
  type RestartPair,
  restartPair,
} from "./_failover_restart.ts";
import { type FailoverSample, measureFailovers } from "./_failover_switch.ts";
import { pairedRatio, quantile, round, summarize } from "./_stats.ts";
import type { Benchmark, BenchRow } from "./_types.ts";

/** The extension probes every 100 ms and backs off from 100 ms: failures are seen fast. */
const PROBE = { intervalMs: 100, backoffMs: 100 };

/** The failover benchmark. */
export const benchmark: Benchmark = async ({ quick, repetitions, log }) => {
  await using cluster = await startCluster({
    pageservers: 2,
    safekeepers: 3,
    computes: [{ id: "failover", neonExtension: PROBE }],
  });
  const compute = cluster.compute("failover");
  const failovers = await measureFailovers(cluster, compute, {
    repetitions,
    intervalMs: PROBE.intervalMs,
    log,
  });
  await cluster.computeAction(compute.id, "stop");

  const bench = restartBench(cluster, compute.tenantId, compute.timelineId);
  const rows: BenchRow[] = [failoverRow(failovers)];
  for (const walMiB of walSizesMiB(quick)) {
    const wal = await prepareWal(bench, walMiB, log);
    const pairs: RestartPair[] = [];
    const count = restartRepetitions(walMiB, repetitions);
    for (let rep = 1; rep <= count; rep++) {
      const pair = await restartPair(bench);
      pairs.push(pair);
      log(
        `restart ${walMiB} MiB ${rep}/${count}: ours ${Math.round(pair.ours.wallMs)} ms ` +
          `(basebackup ${pair.ours.metrics.basebackup_ms}, ` +
          `postgres ${pair.ours.metrics.start_postgres_ms}), ` +
          `baseline ${Math.round(pair.baseline.totalMs)} ms ` +
          `(fetch ${Math.round(pair.baseline.fetchMs)}, extract ${
            Math.round(pair.baseline.extractMs)
          }, postgres ${Math.round(pair.baseline.postgresMs)})`,
      );
    }
    rows.push(...restartRows(wal, pairs));
  }
  const [small, large] = walSizesMiB(quick);
  return {
    name: "failover",
    description: "Pageserver killed and the tenant moved to the other one without telling the " +
      "compute: kill until the compute is running, names the new pageserver and answers a " +
      `SELECT (probe every ${PROBE.intervalMs} ms; no baseline). Then a fresh compute on the ` +
      `timeline with ${small} and ${large} MiB of WAL since the last compaction, spawn → ` +
      "running, against the same basebackup fetched, `tar xzf` and bare postgres crash " +
      "recovery until SELECT 1 with the compute's server settings, interleaved (the " +
      "basebackup prepared once untimed per pair).",
    rows,
    targets: [],
  };
};

function failoverRow(samples: FailoverSample[]): BenchRow {
  const refreshes = samples.map((sample) => sample.refreshes);
  return {
    name: "pageserver failover (refresh path): kill → answering via the other pageserver",
    unit: "ms",
    ours: summarize(samples.map((sample) => sample.healedMs)),
    extra: {
      connstring_switched_median_ms: round(quantile(samples.map((s) => s.switchedMs), 0.5)),
      refreshes_median: quantile(refreshes, 0.5),
      refreshes_max: Math.max(...refreshes),
      refreshes_total: refreshes.reduce((sum, n) => sum + n, 0),
      // A refresh before the tenant moved finds nothing new: the manager then waits 5 s.
      repetitions_refreshed_more_than_once: refreshes.filter((n) => n > 1).length,
      probe_interval_ms: PROBE.intervalMs,
    },
  };
}

function restartRows(wal: PreparedWal, pairs: RestartPair[]): BenchRow[] {
  const ours = pairs.map((pair) => pair.ours.wallMs);
  const baseline = pairs.map((pair) => pair.baseline.totalMs);
  const oursPostgres = pairs.map((pair) => pair.ours.metrics.start_postgres_ms);
  const baselinePostgres = pairs.map((pair) => pair.baseline.postgresMs);
  const phase = (name: keyof ComputeMetrics) =>
    round(quantile(pairs.map((pair) => Number(pair.ours.metrics[name])), 0.5));
  const sizes = {
    wal_written_mib: round(wal.writtenMiB),
    wal_replayed_mib: round(wal.replayMiB),
  };
  return [
    {
      name: `restart, ${wal.targetMiB} MiB WAL since compaction: spawn → running`,
      unit: "ms",
      ours: summarize(ours),
      baseline: summarize(baseline),
      ratio: round(pairedRatio(ours, baseline)),
      extra: {
        ...sizes,
        ...Object.fromEntries(RESTART_PHASES.map((name) => [name, phase(name)])),
        basebackup_mib: round(phase("basebackup_bytes") / (1024 * 1024)),
        baseline_fetch_ms: round(quantile(pairs.map((p) => p.baseline.fetchMs), 0.5)),
        baseline_extract_ms: round(quantile(pairs.map((p) => p.baseline.extractMs), 0.5)),
        baseline_postgres_ms: round(quantile(baselinePostgres, 0.5)),
      },
    },
    {
      name: `restart, ${wal.targetMiB} MiB WAL: Postgres start with crash recovery`,
      unit: "ms",
      ours: summarize(oursPostgres),
      baseline: summarize(baselinePostgres),
      ratio: round(pairedRatio(oursPostgres, baselinePostgres)),
      extra: sizes,
    },
  ];
}
