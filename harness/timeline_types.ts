/**
 * @module
 * The contract of the emulated storage's timeline store (`timeline_store.ts`
 * implements it): what pageservers, safekeepers, compaction and the cluster
 * may ask of it.
 */

import type { Lsn } from "../src/api/lsn.ts";
import type { WalSeed, WalState } from "./safekeeper_wal.ts";
import type { Term, WalSourceAddress } from "./timeline_history.ts";

/** Options of `createTimelineStore`. */
export interface TimelineStoreOptions {
  /** Directory under which timelines are kept; created if missing. */
  dir: string;
  /** The `postgres` binary (or its directory); `initdb`, `pg_ctl`, … are found beside it. */
  pgbin: string;
  /** How long a basebackup at a future LSN waits for it to be committed (Neon's wait_lsn). */
  waitLsnTimeoutMs?: number;
  /**
   * Compact a timeline by itself once this much WAL was committed since its
   * newest base image; 0 (the default) compacts only on {@link TimelineStore.compact}.
   */
  compactionThresholdBytes?: number;
  /** Where background compaction failures go; default `console.error`. */
  onError?: (error: unknown) => void;
}

/** Options of {@link TimelineStore.basebackupTar}. */
export interface BasebackupTarOptions {
  gzip?: boolean;
}

/** One base image of a timeline. */
export interface BaseImage {
  dir: string;
  /** The LSN the image is consistent at: basebackups at this LSN or later may use it. */
  lsn: Lsn;
  /** Where recovery from the image starts reading WAL. */
  redoLsn: Lsn;
}

/** A safekeeper as the store sees it. */
export interface SafekeeperRegistration {
  id: number;
  address: string;
  /** Whether it serves now: a stopped or killed one is no peer to catch up from. */
  readonly running: boolean;
  /** The directory of its WAL copy of a timeline (may not exist yet). */
  walDir(tenantId: string, timelineId: string): string;
  /** Drops its WAL below `lsn` if it is running (true); a stopped one keeps it (false). */
  pruneWal(tenantId: string, timelineId: string, lsn: Lsn): Promise<boolean>;
}

/** The timelines of the emulated storage. */
export interface TimelineStore extends AsyncDisposable {
  readonly dir: string;
  readonly pgbin: string;
  /** Creates a timeline from the (cached) template; rejects a duplicate. */
  createTimeline(tenantId: string, timelineId: string): Promise<void>;
  /**
   * Creates a timeline whose first base image is a copy of `pgdata`, a data
   * directory shut down cleanly (fast_import's), prepared as the template is
   * (`prepareImportedImage`); rejects a duplicate. On failure nothing of it
   * is left in the store.
   */
  importTimeline(tenantId: string, timelineId: string, pgdata: string): Promise<void>;
  hasTimeline(tenantId: string, timelineId: string): boolean;
  /** The highest LSN a majority of the safekeepers holds: what "latest" means. */
  commitLsn(tenantId: string, timelineId: string): Lsn;
  /** Alias of {@link TimelineStore.commitLsn}. */
  lastLsn(tenantId: string, timelineId: string): Lsn;
  /** Where every safekeeper's copy of the timeline begins: the end of the first image's WAL. */
  initialLsn(tenantId: string, timelineId: string): Lsn;
  /** The oldest LSN a basebackup may still be taken at. */
  gcCutoffLsn(tenantId: string, timelineId: string): Lsn;
  /** The timeline's base images, oldest first. */
  baseImages(tenantId: string, timelineId: string): readonly BaseImage[];
  /** The newest base image's directory. */
  baseImageDir(tenantId: string, timelineId: string): string;
  /**
   * A tar of the timeline at `lsn` (`0n` = the commit LSN). Rejects before any
   * byte is produced: {@link TimelineNotFoundError}, {@link LsnNotReachedError}
   * after waiting for a future LSN, {@link LsnBeforeCutoffError}.
   */
  basebackupTar(
    tenantId: string,
    timelineId: string,
    lsn: Lsn,
    options?: BasebackupTarOptions,
  ): Promise<ReadableStream<Uint8Array>>;
  /** Grants (or renews) a lease on `lsn`; null when it is behind the GC cutoff. */
  leaseLsn(tenantId: string, timelineId: string, lsn: Lsn, durationMs: number): Date | null;
  /** The LSNs under an unexpired lease. */
  activeLeases(tenantId: string, timelineId: string): Lsn[];
  /** Adds a newer base image (compaction's result) and drops what nothing needs any more. */
  addBaseImage(tenantId: string, timelineId: string, image: BaseImage): Promise<void>;
  /**
   * Replays the WAL up to the commit LSN into a new base image (`compaction.ts`);
   * one at a time per timeline. Resolves with the newest base image.
   */
  compact(tenantId: string, timelineId: string): Promise<BaseImage>;
  /** A safekeeper WAL directory agreeing with the timeline on `[from, to)`, if any. */
  walHolderDir(tenantId: string, timelineId: string, from: Lsn, to: Lsn): Promise<string | null>;

  // The safekeepers' side.
  registerSafekeeper(registration: SafekeeperRegistration): void;
  safekeepers(): readonly SafekeeperRegistration[];
  /** The first WAL of a timeline, for a safekeeper's new copy. */
  walSeed(tenantId: string, timelineId: string): Promise<WalSeed>;
  /** A safekeeper reports its persisted WAL state. */
  reportWalState(safekeeperId: number, tenantId: string, timelineId: string, state: WalState): void;
  /** What each safekeeper last reported. */
  walStates(tenantId: string, timelineId: string): ReadonlyMap<number, WalState>;
  terms(tenantId: string, timelineId: string): readonly Term[];
  /**
   * Records a primary's `START_WAL_PULL`: the same compute (same instance, or
   * same address and start LSN) keeps its term; another one opens a new term.
   */
  announcePrimary(
    tenantId: string,
    timelineId: string,
    source: WalSourceAddress & { startLsn: Lsn },
    safekeeperId: number,
    applicationName: string,
  ): Term;
  /** How far a WAL copy agrees with the timeline's history (see the module doc). */
  canonicalEnd(tenantId: string, timelineId: string, state: WalState): Lsn;
  /** Resolves at the next change of the timeline (WAL state, term), or on abort. */
  changed(tenantId: string, timelineId: string, signal?: AbortSignal): Promise<void>;
  timelineIds(): { tenantId: string; timelineId: string }[];
  close(): Promise<void>;
}

/** The timeline is not in the store. */
export class TimelineNotFoundError extends Error {
  constructor(tenantId: string, timelineId: string) {
    super(`Timeline ${tenantId}/${timelineId} was not found`);
    this.name = "TimelineNotFoundError";
  }
}
