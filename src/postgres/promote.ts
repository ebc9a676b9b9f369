/**
 * @module
 * Turning the local hot standby into a primary, in one session: wait until it
 * has replayed the old primary's last flushed WAL, point the Neon extension at
 * the new safekeepers (`ALTER SYSTEM`), reload, `pg_promote()`, and check that
 * it accepts writes. Errors read as a cause chain: `<step>: <why>`.
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

/** `application_name` of the promotion session. */
export const PROMOTE_APPLICATION_NAME = "compute_ctl:promote";

/** Replay checks before giving up: the first plus 20 retries, 1 s apart (reference). */
export const REPLAY_RETRIES = 20;
export const REPLAY_RETRY_INTERVAL_MS = 1_000;

/** Options of {@link promotePostgres}. */
export interface PromotePostgresOptions {
  connstr: string;
  /** The old primary's `pg_current_wal_flush_lsn()`: replay must reach it. */
  walFlushLsn: Lsn;
  /** The new spec's safekeepers, for `neon.safekeepers`. */
  safekeepers: readonly string[];
  /** Runs just before `pg_promote()` (the `compute-promotion` failpoint). */
  beforePromote?: () => Promise<void>;
  retries?: number;
  retryIntervalMs?: number;
}

/** Where the time went. */
export interface PromoteTimings {
  lsnWaitTimeMs: number;
  pgPromoteTimeMs: number;
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

/** Whether `shared_preload_libraries` lists the Neon extension (which has the walproposer). */
async function hasWalproposer(client: pg.Client): Promise<boolean> {
  const result = await client.query<{ libraries: string }>(
    "SELECT pg_catalog.current_setting('shared_preload_libraries') AS libraries",
  );
  return result.rows[0].libraries.split(",").some((library) => library.trim() === "neon");
}

/** Promotes the standby; throws with the step that failed. */
export async function promotePostgres(options: PromotePostgresOptions): Promise<PromoteTimings> {
  const retries = options.retries ?? REPLAY_RETRIES;
  const interval = options.retryIntervalMs ?? REPLAY_RETRY_INTERVAL_MS;
  const client = new pg.Client(
    clientConfig(options.connstr, { applicationName: PROMOTE_APPLICATION_NAME }),
  );
  client.on("error", () => {});
  try {
    await step("connecting to postgres", client.connect());
    return await promoteIn(client, options, retries, interval);
  } finally {
    await client.end().catch(() => {});
  }
}

async function promoteIn(
  client: pg.Client,
  options: PromotePostgresOptions,
  retries: number,
  interval: number,
): Promise<PromoteTimings> {
  let started = performance.now();
  let replayed = 0n;
  for (let attempt = 0; attempt <= retries; attempt++) {
    const result = await step(
      "getting last replay lsn",
      client.query<{ lsn: string | null }>("SELECT pg_catalog.pg_last_wal_replay_lsn() AS lsn"),
    );
    const text = result.rows[0].lsn;
    replayed = text === null ? 0n : parseLsn(text);
    if (replayed >= options.walFlushLsn) break;
    log.info(`catching up, try ${attempt}`, {
      standby_lsn: formatLsn(replayed),
      primary_lsn: formatLsn(options.walFlushLsn),
    });
    if (attempt < retries) await new Promise((resolve) => setTimeout(resolve, interval));
  }
  if (replayed < options.walFlushLsn) {
    throw new Error(`didn't catch up with primary in ${retries} retries`);
  }
  const lsnWaitTimeMs = msSince(started);
  started = performance.now();

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
  const pgPromoteTimeMs = msSince(started);

  const readOnly = await step(
    "getting transaction_read_only",
    client.query<{ transaction_read_only: string }>("SHOW transaction_read_only"),
  );
  if (readOnly.rows[0].transaction_read_only === "on") {
    throw new Error("replica in read only mode after promotion");
  }
  return { lsnWaitTimeMs, pgPromoteTimeMs };
}
