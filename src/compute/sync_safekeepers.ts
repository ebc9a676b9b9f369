/**
 * @module
 * Finding the LSN a primary starts from (and stops at): first the fast path,
 * asking a quorum of safekeepers for `TIMELINE_STATUS`; if they are not in
 * sync, `postgres --sync-safekeepers` where the binary has it (Neon's build).
 * Vanilla Postgres lacks the flag: then the quorum check itself is retried on
 * the full sync's schedule, with a longer timeout per safekeeper, before an
 * unsynced quorum becomes an error at start and a null LSN at shutdown.
 */

import { sleep } from "../_async.ts";
import { formatLsn, type Lsn } from "../api/lsn.ts";
import type { ParsedSpec } from "../api/parsed_spec.ts";
import { errorMessage, getLogger } from "../log.ts";
import { runSyncSafekeepers, supportsSyncSafekeepers } from "../postgres/process.ts";
import { checkSafekeepersQuorum, type QuorumCheck } from "../storage/safekeepers.ts";
import { childEnv } from "./postgres_config.ts";
import type { NodeSettings } from "./settings.ts";

/** The settings the sync uses: the binary and its data directory. */
type SyncSettings = Pick<NodeSettings, "pgbin" | "pgdata">;

const log = getLogger("sync_safekeepers");

/** Sleeps before each full-sync retry: 0, then 1.1ⁿ s capped at 3 s (6 attempts). */
export const SYNC_RETRY_DELAYS_MS = [0, 1100, 1210, 1331, 1464, 1611];

/** Per-safekeeper bound of the first quorum check (Neon's), and of the retries without a full sync. */
export const FAST_PATH_TIMEOUT_MS = 100;
export const RETRY_CHECK_TIMEOUT_MS = 1000;

/** Where the time went, for `ComputeMetrics`. */
export interface SyncTimings {
  sync_sk_check_ms: number;
  sync_safekeepers_ms: number;
}

/** Asks the safekeepers whether a quorum agrees on one committed LSN, and why not if not. */
async function fastPath(
  pspec: ParsedSpec,
  timeoutMs = FAST_PATH_TIMEOUT_MS,
): Promise<QuorumCheck> {
  try {
    const check = await checkSafekeepersQuorum(pspec.safekeeperConnstrings, {
      tenantId: pspec.tenantId,
      timelineId: pspec.timelineId,
      authToken: pspec.spec.storage_auth_token ?? undefined,
      timeoutMs,
    });
    if (check.lsn === null) log.info("safekeepers are not synced", { reason: check.reason });
    return check;
  } catch (error) {
    log.warn("checking whether safekeepers are synced failed", { error: errorMessage(error) });
    return { lsn: null, reason: errorMessage(error) };
  }
}

/**
 * The LSN a primary starts from: the fast path, else a full sync with up to six
 * attempts. Throws when neither works (including when the binary has no
 * `--sync-safekeepers`). `signal` aborts a running sync (SIGTERM).
 */
export async function syncSafekeepersForStart(
  settings: SyncSettings,
  pspec: ParsedSpec,
  timings: SyncTimings,
  signal?: AbortSignal,
): Promise<Lsn> {
  const checkStart = performance.now();
  const synced = await fastPath(pspec);
  timings.sync_sk_check_ms = Math.round(performance.now() - checkStart);
  if (synced.lsn !== null) {
    log.info("safekeepers are already synced", { lsn: formatLsn(synced.lsn) });
    return synced.lsn;
  }
  if (!(await supportsSyncSafekeepers(settings.pgbin))) {
    const retried = await retryQuorumCheck(pspec, signal);
    timings.sync_sk_check_ms = Math.round(performance.now() - checkStart);
    if (retried.lsn !== null) return retried.lsn;
    throw new Error(
      `safekeepers are not in sync and ${settings.pgbin} does not support --sync-safekeepers ` +
        `(vanilla Postgres); cannot choose a start LSN: ${retried.reason}`,
    );
  }
  const syncStart = performance.now();
  let lastError: unknown;
  for (const delayMs of SYNC_RETRY_DELAYS_MS) {
    signal?.throwIfAborted();
    if (delayMs > 0) await sleep(delayMs, signal);
    try {
      const lsn = await runSyncSafekeepers({
        pgbin: settings.pgbin,
        pgdata: settings.pgdata,
        env: childEnv(pspec),
        signal,
      });
      timings.sync_safekeepers_ms = Math.round(performance.now() - syncStart);
      return lsn;
    } catch (error) {
      lastError = error;
      log.warn("sync-safekeepers failed", { error: errorMessage(error) });
    }
  }
  throw new Error(`failed to sync safekeepers: ${errorMessage(lastError)}`, { cause: lastError });
}

/**
 * The final flush LSN after Postgres stopped: the fast path, else one full sync
 * where supported. Never throws: returns null and logs why when neither works.
 */
export async function syncSafekeepersOnShutdown(
  settings: SyncSettings,
  pspec: ParsedSpec,
  signal?: AbortSignal,
): Promise<Lsn | null> {
  log.info("syncing safekeepers on shutdown");
  const synced = await fastPath(pspec);
  if (synced.lsn !== null) return synced.lsn;
  if (!(await supportsSyncSafekeepers(settings.pgbin))) {
    const retried = await retryQuorumCheck(pspec, signal, 2);
    if (retried.lsn !== null) return retried.lsn;
    log.warn(
      "safekeepers are not in sync and the postgres binary has no --sync-safekeepers; " +
        "reporting no flush LSN",
      { reason: retried.reason },
    );
    return null;
  }
  try {
    return await runSyncSafekeepers({
      pgbin: settings.pgbin,
      pgdata: settings.pgdata,
      env: childEnv(pspec),
      signal,
    });
  } catch (error) {
    log.warn("sync-safekeepers on shutdown failed; reporting no flush LSN", {
      error: errorMessage(error),
    });
    return null;
  }
}

/**
 * Without a full sync to fall back on, asks the quorum again on the full sync's
 * schedule (at most `attempts` more times) with a longer timeout, so that a
 * slow answer on a loaded machine is not mistaken for safekeepers that disagree.
 * Returns the last check: the LSN, or why the last attempt found none.
 */
async function retryQuorumCheck(
  pspec: ParsedSpec,
  signal: AbortSignal | undefined,
  attempts = SYNC_RETRY_DELAYS_MS.length - 1,
): Promise<QuorumCheck> {
  let check: QuorumCheck = { lsn: null, reason: "the quorum check was not repeated" };
  for (const delayMs of SYNC_RETRY_DELAYS_MS.slice(1, 1 + attempts)) {
    await sleep(delayMs, signal);
    check = await fastPath(pspec, RETRY_CHECK_TIMEOUT_MS);
    if (check.lsn !== null) {
      log.info("safekeepers answered a repeated quorum check", { lsn: formatLsn(check.lsn) });
      return check;
    }
  }
  return check;
}
