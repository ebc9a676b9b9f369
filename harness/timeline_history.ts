/**
 * @module
 * The rules of a timeline's history, as pure functions the store applies:
 * which WAL a safekeeper's copy may keep (terms, the stand-in for Neon's
 * walproposer elections), what the commit LSN is (the highest LSN a majority
 * holds), when an announcement is the same primary again, and which base
 * images leases still need.
 */

import type { Lsn } from "../src/api/lsn.ts";

/** Where a primary compute's Postgres streams WAL from, as `START_WAL_PULL` announces it. */
export interface WalSourceAddress {
  host: string;
  port: number;
  user: string;
  /** Tells restarts of one compute apart when everything else is equal. */
  instanceId?: string;
}

/** A primary compute's generation on a timeline; term 0 is the timeline's creation. */
export interface Term {
  term: number;
  /** Where the term's WAL begins. */
  startLsn: Lsn;
  /** Where its compute's Postgres streams WAL from; null for term 0. */
  source: WalSourceAddress | null;
  /** The `application_name` each safekeeper (by id) streams under. */
  names: Map<number, string>;
}

/** The part of a safekeeper's WAL state the rules look at. */
export interface HeldWal {
  term: number;
  flushLsn: Lsn;
}

/**
 * How far a WAL copy agrees with the timeline: WAL of an older term past the
 * start of the next term was never acknowledged (a new primary started before
 * it), so the copy is good only up to there.
 */
export function canonicalEnd(terms: readonly Term[], held: HeldWal): Lsn {
  const next = terms.find((term) => term.term > held.term);
  return next !== undefined && next.startLsn < held.flushLsn ? next.startLsn : held.flushLsn;
}

/** The highest LSN a majority (⌊n/2⌋+1) of `ends` reaches; `fallback` when there are none. */
export function quorumLsn(ends: readonly Lsn[], fallback: Lsn): Lsn {
  if (ends.length === 0) return fallback;
  const sorted = [...ends].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
  return sorted[Math.floor(ends.length / 2)];
}

/**
 * Whether an announcement comes from the primary of `latest` again: the same
 * instance when it names one, else the same address and start LSN.
 */
export function isSamePrimary(
  latest: Term,
  source: WalSourceAddress & { startLsn: Lsn },
): boolean {
  if (latest.source === null) return false;
  if (source.instanceId !== undefined) return latest.source.instanceId === source.instanceId;
  return latest.source.instanceId === undefined && latest.source.host === source.host &&
    latest.source.port === source.port && latest.startLsn === source.startLsn;
}

/**
 * Which base images (sorted by LSN) are still needed: the newest, and every
 * older one a lease falls into (at or after it, before the next one).
 */
export function imagesToKeep<T extends { lsn: Lsn }>(
  images: readonly T[],
  leasedLsns: readonly Lsn[],
): T[] {
  return images.filter((image, index) => {
    const next = images[index + 1];
    return next === undefined || leasedLsns.some((lsn) => lsn >= image.lsn && lsn < next.lsn);
  });
}
