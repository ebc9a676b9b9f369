/**
 * @module
 * The LSN lease loop of a Static compute (reference neon-01 §4.3): keep the
 * pageservers from garbage-collecting the LSN the compute is pinned at. Each
 * round re-reads the pageserver info and token from the current spec, leases
 * the LSN on every pageserver of every shard and keeps the earliest expiry;
 * then sleeps `max(valid_for − 60 s, valid_for / 2)`. Failures are retried
 * forever (500 ms × 1.5ⁿ, at most 60 s apart); a refusal ends the loop with a
 * warning while the compute keeps running. Every wait ends early when the
 * spec's pageserver info changes, and everything stops when the signal aborts.
 */

import { sleep as abortableSleep } from "../_async.ts";
import { formatLsn, type Lsn } from "../api/lsn.ts";
import { type ParsedSpec, samePageserverConnInfo } from "../api/parsed_spec.ts";
import type { PageserverConnectionInfo } from "../api/spec.ts";
import { errorMessage, getLogger } from "../log.ts";
import { leaseLsn, type LeaseLsnRequest, tenantShardId } from "../storage/lsn_lease.ts";

const log = getLogger("lsn_lease");

/** First delay after a failed round. */
const RETRY_BASE_MS = 500;
/** Longest delay between failed rounds. */
const RETRY_MAX_MS = 60_000;
/** Renew this long before expiry, unless that is less than half the lease. */
const RENEW_MARGIN_MS = 60_000;

/** Leases one LSN on one pageserver: an expiry, or `null` when refused. */
export type LeaseFunction = (libpqUrl: string, request: LeaseLsnRequest) => Promise<Date | null>;

/** Options of {@link startLsnLeaseLoop}. */
export interface LsnLeaseLoopOptions {
  tenantId: string;
  timelineId: string;
  /** The Static compute's LSN. */
  lsn: Lsn;
  /** The spec in force; read anew before every round. */
  currentSpec(): ParsedSpec | null;
  /** Stops the loop, including a lease request in flight. */
  signal: AbortSignal;
  /** {@link leaseLsn} by default. */
  lease?: LeaseFunction;
  /** Milliseconds since the Unix epoch; `Date.now` by default. */
  now?: () => number;
  /** Resolves after `ms`, rejects when `signal` aborts; `sleep` of `_async.ts` by default. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** A running loop. */
export interface LsnLeaseLoop {
  /** Call after a new spec was installed: a wait ends early if the pageserver info changed. */
  notifySpecChanged(): void;
  /** Resolves (never rejects) once the loop has ended: refused, or aborted. */
  readonly stopped: Promise<void>;
}

/** One pageserver to ask, and the shard it serves. */
export interface LeaseTarget {
  libpqUrl: string;
  tenantShardId: string;
}

/**
 * How long to sleep after a lease valid for `validForMs`: 60 s before expiry,
 * but at least half of the validity (never negative).
 */
export function leaseSleepMs(validForMs: number): number {
  const validFor = Math.max(0, validForMs);
  return Math.max(validFor - RENEW_MARGIN_MS, validFor / 2);
}

/** The wait after the `attempt`-th failed round (from 0): ⌊500 × 1.5ⁿ⌋ ms, at most 60 s. */
export function leaseRetryDelayMs(attempt: number): number {
  return Math.floor(Math.min(RETRY_BASE_MS * 1.5 ** attempt, RETRY_MAX_MS));
}

/**
 * Every pageserver of every shard (shards in index order), with the tenant
 * shard id taken from the shard's index key, as compute_ctl does. Throws when a
 * pageserver has no libpq URL (gRPC leases are not supported) or there is none.
 */
export function leaseTargets(tenantId: string, info: PageserverConnectionInfo): LeaseTarget[] {
  const targets: LeaseTarget[] = [];
  for (const key of Object.keys(info.shards).sort()) {
    const shardNumber = parseInt(key.slice(0, 2), 16);
    const shardCount = parseInt(key.slice(2, 4), 16);
    for (const pageserver of info.shards[key].pageservers) {
      if (!pageserver.libpq_url) {
        throw new Error(`shard ${key}: a pageserver without libpq_url (gRPC is not supported)`);
      }
      targets.push({
        libpqUrl: pageserver.libpq_url,
        tenantShardId: tenantShardId(tenantId, shardNumber, shardCount),
      });
    }
  }
  if (targets.length === 0) throw new Error("no pageserver to lease the LSN from");
  return targets;
}

/** Starts the loop; it runs until a pageserver refuses the lease or `signal` aborts. */
export function startLsnLeaseLoop(options: LsnLeaseLoopOptions): LsnLeaseLoop {
  const { tenantId, timelineId, lsn, signal } = options;
  const lease = options.lease ?? leaseLsn;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? abortableSleep;
  const fields = { tenant_id: tenantId, timeline_id: timelineId, lsn: formatLsn(lsn) };
  /** The pageserver info the last round used: a wait ends when the spec's differs. */
  let used: PageserverConnectionInfo | null = null;
  let wake: AbortController | null = null;

  const pageserversChanged = () => {
    const info = options.currentSpec()?.pageserverConnInfo;
    return used !== null && info !== undefined && !samePageserverConnInfo(used, info);
  };

  /** Sleeps `ms` unless the pageserver info changes first; rejects on abort. */
  const waitWhileUnchanged = async (ms: number) => {
    if (!pageserversChanged()) {
      wake = new AbortController();
      try {
        await sleep(ms, AbortSignal.any([signal, wake.signal]));
        return;
      } catch (error) {
        if (signal.aborted) throw error;
      } finally {
        wake = null;
      }
    }
    log.info("pageserver config changed", fields);
  };

  /** Leases on every pageserver; the earliest expiry, or null if any refused. */
  const leaseEverywhere = async (): Promise<Date | null> => {
    const pspec = options.currentSpec();
    if (pspec === null) throw new Error("no spec");
    used = pspec.pageserverConnInfo;
    const authToken = pspec.spec.storage_auth_token ?? undefined;
    let earliest: Date | null = null;
    let refused = false;
    for (const target of leaseTargets(tenantId, used)) {
      const request = { tenantShardId: target.tenantShardId, timelineId, lsn, authToken, signal };
      let expiry: Date | null;
      try {
        expiry = await lease(target.libpqUrl, request);
      } catch (error) {
        if (signal.aborted) throw error;
        throw new Error(`${target.libpqUrl} (${target.tenantShardId}): ${errorMessage(error)}`);
      }
      if (expiry === null) refused = true;
      else if (earliest === null || expiry < earliest) earliest = expiry;
    }
    return refused ? null : earliest;
  };

  const acquireWithRetry = async (): Promise<Date | null> => {
    for (let attempt = 0;; attempt++) {
      signal.throwIfAborted();
      try {
        return await leaseEverywhere();
      } catch (error) {
        if (signal.aborted) throw error;
        log.warn(
          `failed to acquire lsn lease: ${errorMessage(error)} (attempt ${attempt})`,
          fields,
        );
        await waitWhileUnchanged(leaseRetryDelayMs(attempt));
      }
    }
  };

  const run = async () => {
    while (true) {
      const expiry = await acquireWithRetry();
      if (expiry === null) {
        log.warn(
          "LSN lease loop stopped: Permanent error: lease could not be obtained, " +
            "LSN is behind the GC cutoff",
          fields,
        );
        return;
      }
      const sleepMs = leaseSleepMs(expiry.getTime() - now());
      log.info(`lease acquired, sleeping for ${Math.floor(sleepMs / 1000)} seconds`, {
        ...fields,
        valid_until: expiry.toISOString(),
      });
      await waitWhileUnchanged(sleepMs);
    }
  };

  const stopped = run().catch((error) => {
    if (!signal.aborted) {
      log.error("LSN lease loop failed", { ...fields, error: errorMessage(error) });
    }
  });
  return {
    notifySpecChanged: () => {
      if (wake !== null && pageserversChanged()) wake.abort();
    },
    stopped,
  };
}
