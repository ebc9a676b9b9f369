/**
 * @module
 * A basebackup at LSN X, composed from a timeline store (reference neon-04
 * §A.3, §E.2): wait until X is committed (Neon's wait_lsn), refuse an X before
 * the oldest base image (Neon's GC cutoff check), then the newest base image at
 * or before X plus the WAL from its redo point through X, bytes after X zeroed,
 * read from a safekeeper that holds it (or, on a fresh timeline, from the first
 * image itself). The compute's crash recovery replays that WAL and ends at X.
 */

import { formatLsn, type Lsn } from "../src/api/lsn.ts";
import { seedSegment } from "./base_image.ts";
import { basebackupStream, type WalSegmentFile } from "./basebackup_tar.ts";
import { readWalSegment } from "./safekeeper_wal.ts";
import type { TimelineStore } from "./timeline_store.ts";
import { segmentFileName, segmentNumber } from "./wal_format.ts";
import type { Pack } from "tar-stream";

/** A basebackup at an LSN the timeline did not reach in time (Neon's wait_lsn timeout). */
export class LsnNotReachedError extends Error {
  constructor(lsn: Lsn, lastLsn: Lsn, baseLsn: Lsn) {
    super(
      `Timed out while waiting for WAL record at LSN ${formatLsn(lsn)} to arrive, ` +
        `last_record_lsn ${formatLsn(lastLsn)} disk consistent LSN=${formatLsn(baseLsn)}, ` +
        "WalReceiver status: (none)",
    );
    this.name = "LsnNotReachedError";
  }
}

/** A basebackup before the oldest base image kept (Neon's GC cutoff check). */
export class LsnBeforeCutoffError extends Error {
  constructor(lsn: Lsn, cutoff: Lsn) {
    super(
      `invalid basebackup lsn: LSN ${formatLsn(lsn)} is earlier than latest GC cutoff ` +
        `${formatLsn(cutoff)} (we might've already garbage collected needed data)`,
    );
    this.name = "LsnBeforeCutoffError";
  }
}

/** What {@linkcode composeBasebackup} needs besides the store. */
export interface ComposeOptions {
  /** `0n` means the commit LSN. */
  lsn: Lsn;
  gzip?: boolean;
  /** How long to wait for a future LSN to be committed. */
  waitLsnTimeoutMs: number;
}

/** Builds the tar stream; rejects before producing a byte when the LSN cannot be served. */
export async function composeBasebackup(
  store: TimelineStore,
  tenantId: string,
  timelineId: string,
  { lsn: requested, gzip, waitLsnTimeoutMs }: ComposeOptions,
): Promise<{ stream: ReadableStream<Uint8Array>; pack: Pack }> {
  const lsn = requested === 0n ? store.commitLsn(tenantId, timelineId) : requested;
  if (requested !== 0n) await waitForCommit(store, tenantId, timelineId, lsn, waitLsnTimeoutMs);
  const cutoff = store.gcCutoffLsn(tenantId, timelineId);
  if (lsn < cutoff) throw new LsnBeforeCutoffError(lsn, cutoff);
  const base = store.baseImages(tenantId, timelineId).findLast((image) => image.lsn <= lsn)!;
  const segments = await walSegments(store, tenantId, timelineId, base.redoLsn, lsn);
  return basebackupStream({ baseDir: base.dir, segments, gzip });
}

async function waitForCommit(
  store: TimelineStore,
  tenantId: string,
  timelineId: string,
  lsn: Lsn,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (store.commitLsn(tenantId, timelineId) < lsn) {
    const left = deadline - Date.now();
    if (left <= 0) {
      const newest = store.baseImages(tenantId, timelineId).at(-1)!;
      throw new LsnNotReachedError(lsn, store.commitLsn(tenantId, timelineId), newest.lsn);
    }
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), Math.min(left, 1000));
    try {
      await store.changed(tenantId, timelineId, timeout.signal);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** WAL segments `[from, lsn]` from a safekeeper holding them, or the seed of a fresh timeline. */
async function walSegments(
  store: TimelineStore,
  tenantId: string,
  timelineId: string,
  from: Lsn,
  lsn: Lsn,
): Promise<WalSegmentFile[]> {
  const numbers: bigint[] = [];
  for (let segno = segmentNumber(from); segno <= segmentNumber(lsn); segno++) numbers.push(segno);
  const holder = await store.walHolderDir(tenantId, timelineId, from, lsn);
  if (holder !== null) {
    return numbers.map((segno) => ({
      name: segmentFileName(1, segno),
      read: () => readWalSegment(holder, segno, lsn),
    }));
  }
  if (lsn > store.initialLsn(tenantId, timelineId)) {
    throw new Error(`no safekeeper holds WAL ${formatLsn(from)}..${formatLsn(lsn)}`);
  }
  const seed = await store.walSeed(tenantId, timelineId);
  return numbers.map((segno) => ({
    name: segmentFileName(1, segno),
    read: () => Promise.resolve(seedSegment(seed, segno)),
  }));
}
