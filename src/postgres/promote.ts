/**
 * @module
 * The steps that turn the local hot standby into a primary. First
 * {@link waitForReplay}: it must have replayed the old primary's last flushed
 * WAL. Then one of two ways out of recovery:
 *
 * - Neon's, {@link promoteInPlace}: point the Neon extension at the new
 *   safekeepers (`ALTER SYSTEM`), reload, `pg_promote()`. Postgres forks a new
 *   timeline, which the walproposer carries to the safekeepers.
 * - Vanilla storage's, a restart the compute node runs: stop the standby,
 *   {@link removeRecoverySignals}, start it again. Crash recovery replays to
 *   the end of its WAL and Postgres goes on writing timeline 1, the only one
 *   the emulated safekeepers store; {@link endOfRecoveryLsn} says where.
 *
 * Both end with {@link checkWritable}. Errors read as a cause chain:
 * `<step>: <why>`.
 *
 * `synchronous_standby_names=walproposer` is set only where the Neon extension
 * is preloaded: on vanilla Postgres nothing would ever confirm a commit to a
 * standby of that name, so every commit after promotion would hang.
 */

import pg from "pg";
import { formatLsn, type Lsn, parseLsn } from "../api/lsn.ts";
import { getLogger } from "../log.ts";
import { clientConfig } from "./connect.ts";
import { quoteLiteral } from "./sql_quote.ts";

const log = getLogger("promote");

/** `application_name` of the promotion sessions. */
export const PROMOTE_APPLICATION_NAME = "compute_ctl:promote";

/** Replay checks before giving up: the first plus 20 retries, 1 s apart (reference). */
export const REPLAY_RETRIES = 20;
export const REPLAY_RETRY_INTERVAL_MS = 1_000;

/** The files that start Postgres in recovery (as a standby, or for archive recovery). */
export const RECOVERY_SIGNAL_FILES = ["standby.signal", "recovery.signal"] as const;

/** Options of {@link waitForReplay}. */
export interface ReplayWaitOptions {
  connstr: string;
  /** The old primary's `pg_current_wal_flush_lsn()`: replay must reach it. */
  walFlushLsn: Lsn;
  retries?: number;
  retryIntervalMs?: number;
}

/** Options of {@link promoteInPlace}. */
export interface PromoteInPlaceOptions {
  connstr: string;
  /** The new spec's safekeepers, for `neon.safekeepers`. */
  safekeepers: readonly string[];
  /** Runs just before `pg_promote()` (the `compute-promotion` failpoint). */
  beforePromote?: () => Promise<void>;
}

function step<T>(context: string, work: Promise<T>): Promise<T> {
  return work.catch((error) => {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${context}: ${message}`, { cause: error });
  });
}

function msSince(start: number): number {
  return Math.round(performance.now() - start);
}

/** Runs `fn` in a session of the promotion; a failed connect reads `connecting to postgres: …`. */
async function withPromoteClient<T>(connstr: string, fn: (client: pg.Client) => Promise<T>) {
  const client = new pg.Client(
    clientConfig(connstr, { applicationName: PROMOTE_APPLICATION_NAME }),
  );
  client.on("error", () => {});
  try {
    await step("connecting to postgres", client.connect());
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Polls `pg_last_wal_replay_lsn()` (the first check plus `retries`, one
 * interval apart) until it reaches `walFlushLsn`; returns how long that took
 * (ms). Throws `didn't catch up with primary in N retries` otherwise.
 */
export function waitForReplay(options: ReplayWaitOptions): Promise<number> {
  const retries = options.retries ?? REPLAY_RETRIES;
  const interval = options.retryIntervalMs ?? REPLAY_RETRY_INTERVAL_MS;
  return withPromoteClient(options.connstr, async (client) => {
    const started = performance.now();
    for (let attempt = 0; attempt <= retries; attempt++) {
      const result = await step(
        "getting last replay lsn",
        client.query<{ lsn: string | null }>("SELECT pg_catalog.pg_last_wal_replay_lsn() AS lsn"),
      );
      const text = result.rows[0].lsn;
      const replayed = text === null ? 0n : parseLsn(text);
      if (replayed >= options.walFlushLsn) return msSince(started);
      log.info(`catching up, try ${attempt}`, {
        standby_lsn: formatLsn(replayed),
        primary_lsn: formatLsn(options.walFlushLsn),
      });
      if (attempt < retries) await new Promise((resolve) => setTimeout(resolve, interval));
    }
    throw new Error(`didn't catch up with primary in ${retries} retries`);
  });
}

/** Whether `shared_preload_libraries` lists the Neon extension (which has the walproposer). */
async function hasWalproposer(client: pg.Client): Promise<boolean> {
  const result = await client.query<{ libraries: string }>(
    "SELECT pg_catalog.current_setting('shared_preload_libraries') AS libraries",
  );
  return result.rows[0].libraries.split(",").some((library) => library.trim() === "neon");
}

/**
 * Neon's promotion, in one session: `neon.safekeepers` (and, where the Neon
 * extension is preloaded, `synchronous_standby_names=walproposer`) by
 * `ALTER SYSTEM`, reload, `pg_promote()`, then the writability check. Throws
 * with the step that failed.
 */
export function promoteInPlace(options: PromoteInPlaceOptions): Promise<void> {
  return withPromoteClient(options.connstr, async (client) => {
    await step(
      "setting safekeepers",
      client.query(
        `ALTER SYSTEM SET neon.safekeepers=${quoteLiteral(options.safekeepers.join(","))}`,
      ),
    );
    if (await step("checking for the walproposer", hasWalproposer(client))) {
      await step(
        "setting synchronous_standby_names",
        client.query("ALTER SYSTEM SET synchronous_standby_names=walproposer"),
      );
    } else {
      log.info("neon is not preloaded: leaving synchronous_standby_names alone");
    }
    await step("reloading postgres config", client.query("SELECT pg_catalog.pg_reload_conf()"));
    await options.beforePromote?.();
    const promoted = await step(
      "pg_promote",
      client.query<{ pg_promote: boolean }>("SELECT * FROM pg_catalog.pg_promote()"),
    );
    if (!promoted.rows[0].pg_promote) throw new Error("pg_promote() failed");
    await assertWritable(client);
  });
}

/** Throws `replica in read only mode after promotion` unless the session can write. */
async function assertWritable(client: pg.Client): Promise<void> {
  const readOnly = await step(
    "getting transaction_read_only",
    client.query<{ transaction_read_only: string }>("SHOW transaction_read_only"),
  );
  if (readOnly.rows[0].transaction_read_only === "on") {
    throw new Error("replica in read only mode after promotion");
  }
}

/** After a promotion by restart: throws unless Postgres accepts writes (see {@link promoteInPlace}). */
export function checkWritable(connstr: string): Promise<void> {
  return withPromoteClient(connstr, assertWritable);
}

/**
 * Removes `standby.signal` and `recovery.signal` from `pgdata` (either may be
 * missing), so that the next start runs crash recovery to the end of the WAL
 * and stays on its timeline instead of waiting for more WAL or promoting.
 */
export async function removeRecoverySignals(pgdata: string): Promise<void> {
  for (const name of RECOVERY_SIGNAL_FILES) {
    try {
      await Deno.remove(`${pgdata}/${name}`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}

/**
 * Where a Postgres that just ran crash recovery begins its own WAL: the redo
 * point of its latest checkpoint, which right after start-up is the
 * end-of-recovery checkpoint written where the replayed WAL ended. Throws if
 * Postgres is still in recovery or left timeline 1.
 */
export function endOfRecoveryLsn(connstr: string): Promise<Lsn> {
  return withPromoteClient(connstr, async (client) => {
    const result = await step(
      "reading the end-of-recovery checkpoint",
      client.query<{ redo: string; timeline: number; recovering: boolean }>(
        `SELECT redo_lsn::text AS redo, timeline_id AS timeline,
                pg_catalog.pg_is_in_recovery() AS recovering
           FROM pg_catalog.pg_control_checkpoint()`,
      ),
    );
    const { redo, timeline, recovering } = result.rows[0];
    if (recovering) throw new Error("postgres is still in recovery after the restart");
    if (timeline !== 1) throw new Error(`postgres runs on timeline ${timeline}, not 1`);
    return parseLsn(redo);
  });
}
