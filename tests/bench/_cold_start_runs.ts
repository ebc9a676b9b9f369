/**
 * @module
 * The runs the cold-start and pooled-start benchmarks time: a compute manager
 * spawned from a config file until `/status` says `running` (its phases from
 * `/metrics.json`), an empty compute sent `POST /configure`, and the baseline
 * of a cold start: the same basebackup bytes fetched from the same pageserver
 * over loopback, extracted by `tar xzf`, and a bare `postgres` started on them
 * until it answers `SELECT 1`.
 */

import { join } from "node:path";
import pg from "pg";
import { to as copyTo } from "pg-copy-streams";
import { type Cluster, type ComputeHandle, startCluster } from "../../harness/cluster.ts";
import { ownedDir } from "../../harness/_fs.ts";
import { freePort, pgUserCommand, signalQuietly } from "../../harness/_processes.ts";
import { binDirOf } from "../../harness/base_image.ts";
import { COMPUTE_SERVER_SETTINGS } from "../../harness/_compute_spec.ts";
import { waitForPostgresReady } from "../_support/local_postgres.ts";
import { basebackupCommand, libpqClientConfig } from "../../src/storage/basebackup.ts";
import type { ComputeMetrics, ComputeStatusResponse } from "../../src/api/responses.ts";
import { formatLsn } from "../../src/api/lsn.ts";

/** How often Postgres is polled while the baseline's start is timed. */
const POLL_MS = 5;

/** The start-up phases of `/metrics.json` the reports show, in start-up order. */
export const MANAGER_PHASES = [
  "wait_for_spec_ms",
  "sync_sk_check_ms",
  "sync_safekeepers_ms",
  "basebackup_ms",
  "start_postgres_ms",
  "config_ms",
  "total_startup_ms",
] as const;

/** A cluster for start-up benchmarks: one pageserver, three safekeepers, one timeline. */
export interface StartupBench extends AsyncDisposable {
  cluster: Cluster;
  tenantId: string;
  timelineId: string;
  /** A fresh compute id each call. */
  nextId(prefix: string): string;
}

/** Starts the cluster and a first compute (then stopped) so the timeline exists and has WAL. */
export async function openStartupBench(): Promise<StartupBench> {
  const cluster = await startCluster({ pageservers: 1, safekeepers: 3 });
  try {
    const first = await cluster.startCompute({ id: "warmup" });
    await stopCompute(first);
    let counter = 0;
    return {
      cluster,
      tenantId: first.tenantId,
      timelineId: first.timelineId,
      nextId: (prefix) => `${prefix}-${++counter}`,
      [Symbol.asyncDispose]: () => cluster.close(),
    };
  } catch (error) {
    await cluster.close();
    throw error;
  }
}

/** What one timed start of a manager measured. */
export interface ManagerStart {
  /** Just before the launch to `running` (by the manager's clock: `start_time` + `total_startup_ms`). */
  wallMs: number;
  metrics: ComputeMetrics;
}

/**
 * When (epoch ms) the compute reached `running`, by its own clock: how often
 * the harness polls `/status` to see it does not enter the measurement.
 */
function runningAt(status: ComputeStatusResponse, metrics: ComputeMetrics): number {
  return Date.parse(status.start_time) + metrics.total_startup_ms;
}

/** Terminates (fast) and waits for the manager to exit; its directory is removed. */
export async function stopCompute(compute: ComputeHandle, removeDir = true): Promise<void> {
  await compute.terminate().catch(() => {});
  await compute.stop(30_000);
  if (removeDir) await Deno.remove(compute.dir, { recursive: true }).catch(() => {});
}

/** Metrics of a compute's last start. */
export async function startupMetrics(compute: ComputeHandle): Promise<ComputeMetrics> {
  const result = await compute.metricsJson();
  if (result.status !== 200) throw new Error(`/metrics.json answered ${result.status}`);
  return result.body as ComputeMetrics;
}

/** A fresh manager from a config file (new data directory), timed to `running`, then stopped. */
export async function coldStart(bench: StartupBench): Promise<ManagerStart> {
  const started = Date.now();
  const compute = await bench.cluster.startCompute({
    id: bench.nextId("cold"),
    tenantId: bench.tenantId,
    timelineId: bench.timelineId,
    waitFor: null,
  });
  try {
    const status = await compute.waitForStatus("running");
    const metrics = await startupMetrics(compute);
    return { wallMs: runningAt(status, metrics) - started, metrics };
  } finally {
    await stopCompute(compute);
  }
}

/** What one pooled start measured. */
export interface PooledStart {
  /** `POST /configure` sent to `running` (by the manager's clock): the start without the pool wait. */
  configureToRunningMs: number;
  metrics: ComputeMetrics;
}

/** An `empty` compute (config file without a spec) sent `POST /configure`, timed to `running`. */
export async function pooledStart(bench: StartupBench): Promise<PooledStart> {
  const compute = await bench.cluster.startCompute({
    id: bench.nextId("pooled"),
    tenantId: bench.tenantId,
    timelineId: bench.timelineId,
    empty: true,
    waitFor: null,
  });
  try {
    await compute.waitForStatus("empty");
    const started = Date.now();
    const answer = await compute.configure();
    if (answer.status !== 200) {
      throw new Error(`/configure answered ${answer.status}: ${answer.text}`);
    }
    const status = await compute.waitForStatus("running");
    const metrics = await startupMetrics(compute);
    return { configureToRunningMs: runningAt(status, metrics) - started, metrics };
  } finally {
    await stopCompute(compute);
  }
}

/**
 * Writes the dirty pages back (`sync`), so that a timed start does not pay
 * for the previous one's writes.
 */
export async function flushDirtyPages(): Promise<void> {
  const result = await new Deno.Command("sync", { stdin: "null", stdout: "null", stderr: "piped" })
    .output();
  if (!result.success) throw new Error(`sync failed: ${new TextDecoder().decode(result.stderr)}`);
}

/** What one baseline start measured (ms), and the basebackup's compressed size. */
export interface BaselineStart {
  fetchMs: number;
  extractMs: number;
  postgresMs: number;
  totalMs: number;
  bytes: number;
}

/** The gzipped basebackup at the timeline's commit LSN, read whole into memory. */
export async function fetchBasebackupBytes(bench: StartupBench): Promise<Uint8Array> {
  const pageserver = bench.cluster.pageservers[0];
  const client = new pg.Client(
    libpqClientConfig(pageserver.libpqUrl, {
      applicationName: "bench-baseline",
      options: "-c neon.compute_mode=primary",
    }),
  );
  client.on("error", () => {});
  await client.connect();
  try {
    const lsn = bench.cluster.store.commitLsn(bench.tenantId, bench.timelineId);
    const command = basebackupCommand({
      tenantId: bench.tenantId,
      timelineId: bench.timelineId,
      lsn,
      mode: "Primary",
    });
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of client.query(copyTo(command)) as AsyncIterable<Uint8Array>) {
      chunks.push(chunk);
      size += chunk.length;
    }
    const bytes = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
    if (size === 0) throw new Error(`empty basebackup at ${formatLsn(lsn)}`);
    return bytes;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * The baseline: fetch the basebackup, write it, `tar xzf` it (as the Postgres
 * OS user) into a fresh directory, start bare `postgres -D` with a minimal
 * conf (the compute's server settings: same `fsync`, `shared_buffers` and
 * `max_connections`) until `SELECT 1` answers, then stop it (immediate) and
 * remove the directory.
 */
export async function baselineStart(bench: StartupBench): Promise<BaselineStart> {
  const root = await ownedDir(join(bench.cluster.root, bench.nextId("baseline")));
  const pgdata = join(root, "pgdata");
  try {
    const started = performance.now();
    const bytes = await fetchBasebackupBytes(bench);
    const fetched = performance.now();
    const tarball = join(root, "base.tar.gz");
    await Deno.writeFile(tarball, bytes);
    const untar = await pgUserCommand("sh", [
      "-c",
      `mkdir -m 700 "$1" && tar xzf "$2" -C "$1"`,
      "sh",
      pgdata,
      tarball,
    ], { stdin: "null", stdout: "null", stderr: "piped" }).output();
    if (!untar.success) {
      throw new Error(`tar xzf failed: ${new TextDecoder().decode(untar.stderr)}`);
    }
    const extracted = performance.now();
    const port = freePort();
    await Deno.writeTextFile(
      join(pgdata, "postgresql.conf"),
      [
        `port = ${port}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${root}'`,
        ...COMPUTE_SERVER_SETTINGS,
      ].join("\n") + "\n",
    );
    const postgresStarted = performance.now();
    const postgres = pgUserCommand(join(binDirOf(bench.cluster.pgbin), "postgres"), [
      "-D",
      pgdata,
    ], { stdin: "null", stdout: "null", stderr: "null" }).spawn();
    try {
      await waitForPostgresReady(port, postgres, { timeoutMs: 60_000, pollMs: POLL_MS });
      const ready = performance.now();
      return {
        fetchMs: fetched - started,
        extractMs: extracted - fetched,
        postgresMs: ready - postgresStarted,
        totalMs: ready - started,
        bytes: bytes.length,
      };
    } finally {
      await stopPostgres(pgdata, postgres);
    }
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

async function stopPostgres(pgdata: string, postgres: Deno.ChildProcess): Promise<void> {
  const pidLine = await Deno.readTextFile(join(pgdata, "postmaster.pid")).catch(() => "");
  const pid = Number(pidLine.split("\n")[0]);
  if (pid > 0) signalQuietly(pid, "SIGQUIT");
  else signalQuietly(postgres.pid, "SIGTERM");
  await postgres.status;
}
