/**
 * @module
 * The installed-extensions statistics on the reference's schedule: one scan as
 * soon as a primary is `running`, then, in any mode, a loop that sleeps first
 * (2 × the interval) and scans again. The interval starts from
 * `--installed-extensions-collection-interval` and is replaced by the spec's
 * `suspend_timeout_seconds` (3600 for -1 or 0) whenever a spec is applied or
 * reconfigured; the loop's sleep only ever grows. Each scan sets
 * `compute_installed_extensions` (series are never removed) and logs
 * `[NEON_EXT_STAT] <json>`.
 */

import { sleep } from "../_async.ts";
import type { ComputeSpec } from "../api/spec.ts";
import { errorMessage, getLogger } from "../log.ts";
import { installedExtensions } from "../metrics.ts";
import {
  getInstalledExtensions,
  type InstalledExtensions,
} from "../postgres/installed_extensions.ts";
import type { ComputeState } from "./state.ts";

const log = getLogger("installed_extensions");

/** `--installed-extensions-collection-interval`'s default, and the fallback for -1 and 0. */
export const DEFAULT_COLLECTION_INTERVAL_SECONDS = 3600;

/** The interval a spec asks for: its `suspend_timeout_seconds`, or 3600 for -1 and 0. */
export function collectionIntervalFor(spec: Pick<ComputeSpec, "suspend_timeout_seconds">): number {
  const seconds = spec.suspend_timeout_seconds;
  return seconds === -1 || seconds === 0 ? DEFAULT_COLLECTION_INTERVAL_SECONDS : seconds;
}

/**
 * The current interval: the node's state (the reference's atomic), starting
 * from the command line's and replaced by every applied spec.
 */
export interface CollectionInterval {
  seconds: number;
}

/** Called on every apply and reconfigure: the spec decides the next interval. */
export function updateCollectionInterval(
  target: CollectionInterval,
  spec: Pick<ComputeSpec, "suspend_timeout_seconds">,
): void {
  target.seconds = collectionIntervalFor(spec);
}

/** Sets one `compute_installed_extensions` series per entry; older series stay. */
export function recordInstalledExtensions(stats: InstalledExtensions): void {
  for (const ext of stats.extensions) {
    installedExtensions.set({
      extension_name: ext.extname,
      version: ext.version,
      owned_by_superuser: ext.owned_by_superuser,
    }, ext.n_databases);
  }
}

/** One scan: updates the gauge and logs `[NEON_EXT_STAT]`; a failure is logged, never thrown. */
export async function collectInstalledExtensions(
  connstr: string,
): Promise<InstalledExtensions | null> {
  try {
    const stats = await getInstalledExtensions(connstr);
    recordInstalledExtensions(stats);
    log.info(`[NEON_EXT_STAT] ${JSON.stringify(stats)}`);
    return stats;
  } catch (error) {
    log.error(`could not get installed extensions: ${errorMessage(error)}`);
    return null;
  }
}

/** The longest delay a timer takes; longer sleeps are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

async function sleepLong(ms: number, signal: AbortSignal): Promise<void> {
  for (let left = ms; left > 0; left -= MAX_TIMER_MS) {
    await sleep(Math.min(left, MAX_TIMER_MS), signal);
  }
}

/** What the statistics task needs from the node. */
export interface ExtensionStatsContext {
  connstr: string;
  state: ComputeState;
  /** Holds the interval; updated by {@link updateCollectionInterval}. */
  interval: Readonly<CollectionInterval>;
  /** Whether the compute runs as a primary (only a primary scans at start). */
  isPrimary(): boolean;
  /** One scan; default {@link collectInstalledExtensions}. Replaceable for tests. */
  collect?: (connstr: string) => Promise<unknown>;
}

/**
 * Runs until `signal` aborts: waits for the first `running`, scans once if
 * primary, then sleeps 2 × interval and scans, forever. Resolves quietly on abort.
 */
export async function runInstalledExtensionsStats(
  ctx: ExtensionStatsContext,
  signal: AbortSignal,
): Promise<void> {
  const collect = ctx.collect ?? collectInstalledExtensions;
  let firstScan: Promise<unknown> | undefined;
  try {
    await ctx.state.waitForStatus(["running"], signal);
    // Runs beside the loop's first sleep, as the reference's spawned scan; awaited at the end.
    if (ctx.isPrimary()) firstScan = collect(ctx.connstr);
    let sleepSeconds = 2 * ctx.interval.seconds;
    log.info(`[NEON_EXT_SPAWN] installed extensions worker, interval ${sleepSeconds} s`);
    while (true) {
      await sleepLong(sleepSeconds * 1000, signal);
      await collect(ctx.connstr);
      sleepSeconds = Math.max(sleepSeconds, 2 * ctx.interval.seconds);
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  } finally {
    await firstScan;
  }
}
