/**
 * @module
 * A compute restart with W MiB of WAL since the last compaction against bare
 * Postgres crash recovery of the same WAL. A writer compute is started on the
 * timeline, the timeline compacted (so the newest base image is fresh), W MiB
 * of WAL written past that image and the writer terminated (fast: the
 * safekeepers hold everything it wrote). Then, per repetition, the basebackup
 * at the commit LSN is asked for once untimed (so both sides are served bytes
 * the pageserver has prepared, as in the cold-start benchmark), the baseline
 * fetches it, `tar xzf`s it and starts bare `postgres -D` until `SELECT 1`,
 * and a fresh compute manager is spawned on the timeline until `running`.
 * Both replay the same WAL from the image's redo point.
 */

import pg from "pg";
import type { Cluster, ComputeHandle } from "../../harness/cluster.ts";
import { parseLsn } from "../../src/api/lsn.ts";
import type { ComputeMetrics } from "../../src/api/responses.ts";
import {
  type BaselineStart,
  baselineStart,
  coldStart,
  fetchBasebackupBytes,
  type ManagerStart,
  type StartupBench,
  stopCompute,
} from "./_cold_start_runs.ts";
import { batchRows, MIB, mibBetween } from "./_failover_plan.ts";

const TABLE = "bench_wal";

/** The timeline the restarts run on, as the cold-start helpers want it. */
export function restartBench(
  cluster: Cluster,
  tenantId: string,
  timelineId: string,
): StartupBench {
  let counter = 0;
  return {
    cluster,
    tenantId,
    timelineId,
    nextId: (prefix) => `${prefix}-${++counter}`,
    // The cluster belongs to the caller.
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

/** The WAL a restart replays: from the base image's redo point to the commit LSN. */
export interface PreparedWal {
  /** What was asked for past the compaction. */
  targetMiB: number;
  /** Written past the compacted image's LSN. */
  writtenMiB: number;
  /** From the image's redo point to the commit LSN: what recovery replays. */
  replayMiB: number;
}

/**
 * Starts a writer compute, compacts the timeline, writes `walMiB` of WAL past
 * the new image (`INSERT … repeat('x', 1000)` in batches) and terminates the writer.
 */
export async function prepareWal(
  bench: StartupBench,
  walMiB: number,
  log: (message: string) => void,
): Promise<PreparedWal> {
  const { cluster, tenantId, timelineId } = bench;
  const writer = await cluster.startCompute({ id: bench.nextId("writer"), tenantId, timelineId });
  try {
    const compactStarted = performance.now();
    await cluster.store.compact(tenantId, timelineId);
    const image = cluster.store.baseImages(tenantId, timelineId).at(-1)!;
    log(`restart ${walMiB} MiB: compacted in ${Math.round(performance.now() - compactStarted)} ms`);
    const writeStarted = performance.now();
    await writeWal(writer, image.lsn + BigInt(walMiB * MIB));
    log(
      `restart ${walMiB} MiB: wrote the WAL in ${Math.round(performance.now() - writeStarted)} ms`,
    );
  } finally {
    await stopCompute(writer);
  }
  const image = cluster.store.baseImages(tenantId, timelineId).at(-1)!;
  const end = cluster.store.commitLsn(tenantId, timelineId);
  return {
    targetMiB: walMiB,
    writtenMiB: mibBetween(image.lsn, end),
    replayMiB: mibBetween(image.redoLsn, end),
  };
}

/** Inserts 1000-byte rows in batches until the compute's WAL reaches `untilLsn`. */
async function writeWal(compute: ComputeHandle, untilLsn: bigint): Promise<void> {
  const client = new pg.Client({ connectionString: compute.postgresUrl });
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (id bigint, body text)`);
    for (;;) {
      const { rows } = await client.query<{ lsn: string }>("SELECT pg_current_wal_lsn() AS lsn");
      const rowsNow = batchRows(untilLsn - parseLsn(rows[0].lsn));
      if (rowsNow === 0) return;
      await client.query(
        `INSERT INTO ${TABLE} SELECT g, repeat('x', 1000) FROM generate_series(1, $1::int) g`,
        [rowsNow],
      );
    }
  } finally {
    await client.end().catch(() => {});
  }
}

/** One repetition: the baseline and a fresh compute on the same WAL. */
export interface RestartPair {
  ours: ManagerStart;
  baseline: BaselineStart;
}

/** The basebackup prepared once untimed, then the baseline, then a fresh compute. */
export async function restartPair(bench: StartupBench): Promise<RestartPair> {
  await fetchBasebackupBytes(bench);
  const baseline = await baselineStart(bench);
  const ours = await coldStart(bench);
  return { ours, baseline };
}

/** The manager phases reported beside a restart, in start-up order. */
export const RESTART_PHASES = [
  "sync_sk_check_ms",
  "sync_safekeepers_ms",
  "basebackup_ms",
  "start_postgres_ms",
  "config_ms",
  "total_startup_ms",
] as const satisfies readonly (keyof ComputeMetrics)[];
