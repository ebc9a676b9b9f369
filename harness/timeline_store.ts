/**
 * @module
 * The timelines of the emulated storage cluster, shared by its pageservers and
 * safekeepers. A timeline is a list of base images (data directories in the
 * "shut down in recovery" state, see `base_image.ts`) plus WAL, and the WAL's
 * source of truth is the safekeepers: each keeps its own copy
 * (`safekeeper_wal.ts`), and the timeline's commit LSN is the highest LSN a
 * majority of them holds (reference neon-04 §B.4).
 *
 * Terms stand in for Neon's walproposer elections: every primary compute that
 * starts on a timeline opens a new term at the LSN it started from (its
 * basebackup LSN, where its own WAL begins). A safekeeper holding WAL of an
 * older term past that point holds WAL nobody acknowledged, and cuts it off
 * before it takes WAL of the new term ({@linkcode canonicalEnd}).
 *
 * A basebackup at LSN X is the newest base image at or before X plus the WAL
 * from that image's redo point through X (bytes after X zeroed), read from a
 * safekeeper that holds it. Compaction (`compaction.ts`) replays WAL into newer
 * base images; leases keep older ones for Static computes.
 */

import { join } from "node:path";
import { formatLsn, type Lsn } from "../src/api/lsn.ts";
import {
  BASE_IMAGE_STATE,
  baseImageInfo,
  binDirOf,
  templateFor,
  walEndOfImage,
} from "./base_image.ts";
import { basebackupStream, type WalSegmentFile } from "./basebackup_tar.ts";
import { compactTimeline } from "./compaction.ts";
import { pgFileOwner } from "./_processes.ts";
import { readWalSegment, readWalState, type WalSeed, type WalState } from "./safekeeper_wal.ts";
import { segmentFileName, segmentNumber } from "./wal_format.ts";
import type { Pack } from "tar-stream";

export { BASEBACKUP_EXCLUDED_FILES } from "./basebackup_tar.ts";
export { CommandFailedError } from "./_processes.ts";

const ID_PATTERN = /^[0-9a-f]{32}$/;
const DEFAULT_WAIT_LSN_TIMEOUT_MS = 10_000;

/** Options of {@link createTimelineStore}. */
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

/** What a `START_WAL_PULL` announces. */
export interface WalSourceAddress {
  host: string;
  port: number;
  user: string;
  /** Tells restarts of one compute apart when everything else is equal. */
  instanceId?: string;
}

/** A safekeeper as the store sees it. */
export interface SafekeeperRegistration {
  id: number;
  address: string;
  /** The directory of its WAL copy of a timeline (may not exist yet). */
  walDir(tenantId: string, timelineId: string): string;
  /** Drops its WAL below `lsn` if it is running; a stopped one keeps it. */
  pruneWal(tenantId: string, timelineId: string, lsn: Lsn): Promise<void>;
}

/** The timelines of the emulated storage. */
export interface TimelineStore extends AsyncDisposable {
  readonly dir: string;
  readonly pgbin: string;
  /** Creates a timeline from the (cached) template; rejects a duplicate. */
  createTimeline(tenantId: string, timelineId: string): Promise<void>;
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

interface TimelineEntry {
  tenantId: string;
  timelineId: string;
  root: string;
  bases: BaseImage[];
  /** The end of the first base image's WAL: every safekeeper's copy starts there. */
  initialLsn: Lsn;
  systemId: string;
  terms: Term[];
  walStates: Map<number, WalState>;
  leases: Map<Lsn, number>;
  waiters: Set<() => void>;
  compaction: Promise<BaseImage> | null;
}

/**
 * Returns a store keeping timelines under `dir`; nothing is created until the
 * first {@link TimelineStore.createTimeline}. Close it to remove what it created.
 */
export function createTimelineStore(options: TimelineStoreOptions): TimelineStore {
  const { dir, pgbin } = options;
  const binDir = binDirOf(pgbin);
  const timelines = new Map<string, TimelineEntry>();
  const creating = new Set<string>();
  const activePacks = new Set<Pack>();
  const registrations: SafekeeperRegistration[] = [];
  let ownsDir: boolean | undefined;
  let closed = false;

  const entryFor = (tenantId: string, timelineId: string) => {
    const entry = timelines.get(timelineKey(tenantId, timelineId));
    if (!entry) throw new TimelineNotFoundError(tenantId, timelineId);
    return entry;
  };
  const notify = (entry: TimelineEntry) => {
    const waiters = [...entry.waiters];
    entry.waiters.clear();
    for (const wake of waiters) wake();
  };

  const createTimeline = async (tenantId: string, timelineId: string) => {
    if (closed) throw new Error("timeline store is closed");
    validateIds(tenantId, timelineId);
    const key = timelineKey(tenantId, timelineId);
    if (timelines.has(key) || creating.has(key)) throw new Error(`timeline ${key} already exists`);
    creating.add(key);
    try {
      ownsDir ??= !(await exists(dir));
      const root = join(dir, "tenants", tenantId, "timelines", timelineId);
      const baseDir = join(root, "base-0");
      await Deno.mkdir(root, { recursive: true });
      const owner = await pgFileOwner();
      if (owner) await Deno.chown(root, owner.uid, owner.gid);
      const copy = await new Deno.Command("cp", {
        args: ["-a", await templateFor(binDir), baseDir],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!copy.success) throw new Error(`cp: ${new TextDecoder().decode(copy.stderr)}`);
      const info = await baseImageInfo(binDir, baseDir);
      const initialLsn = await walEndOfImage(baseDir, info);
      timelines.set(key, {
        tenantId,
        timelineId,
        root,
        bases: [{ dir: baseDir, lsn: initialLsn, redoLsn: info.redoLsn }],
        initialLsn,
        systemId: info.systemId,
        terms: [{ term: 0, startLsn: initialLsn, source: null, names: new Map() }],
        walStates: new Map(),
        leases: new Map(),
        waiters: new Set(),
        compaction: null,
      });
    } finally {
      creating.delete(key);
    }
  };

  const canonicalEnd = (entry: TimelineEntry, state: WalState): Lsn => {
    const next = entry.terms.find((term) => term.term > state.term);
    return next !== undefined && next.startLsn < state.flushLsn ? next.startLsn : state.flushLsn;
  };

  const commitLsn = (entry: TimelineEntry): Lsn => {
    if (registrations.length === 0) return entry.initialLsn;
    const ends = registrations.map((sk) => {
      const state = entry.walStates.get(sk.id);
      return state === undefined ? entry.initialLsn : canonicalEnd(entry, state);
    }).sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    return ends[Math.floor(ends.length / 2)];
  };

  const waitForCommit = async (entry: TimelineEntry, lsn: Lsn): Promise<void> => {
    const deadline = Date.now() + (options.waitLsnTimeoutMs ?? DEFAULT_WAIT_LSN_TIMEOUT_MS);
    while (commitLsn(entry) < lsn) {
      const left = deadline - Date.now();
      if (left <= 0 || closed) {
        throw new LsnNotReachedError(lsn, commitLsn(entry), entry.bases.at(-1)!.lsn);
      }
      const { promise, resolve } = Promise.withResolvers<void>();
      const timer = setTimeout(resolve, Math.min(left, 1000));
      entry.waiters.add(resolve);
      await promise;
      clearTimeout(timer);
      entry.waiters.delete(resolve);
    }
  };

  /** WAL segments `[redo, lsn]` from the seed (fresh timeline) or a safekeeper holding them. */
  const walSegments = async (
    entry: TimelineEntry,
    base: BaseImage,
    lsn: Lsn,
  ): Promise<WalSegmentFile[]> => {
    const first = segmentNumber(base.redoLsn);
    const last = segmentNumber(lsn);
    const numbers: bigint[] = [];
    for (let segno = first; segno <= last; segno++) numbers.push(segno);
    const holder = await walHolder(entry, base.redoLsn, lsn);
    if (holder === null) {
      if (lsn > entry.initialLsn) {
        throw new Error(`no safekeeper holds WAL ${formatLsn(base.redoLsn)}..${formatLsn(lsn)}`);
      }
      const seed = await seedOf(entry);
      return numbers.map((segno) => ({
        name: segmentFileName(1, segno),
        read: () => Promise.resolve(seedSegment(seed, segno)),
      }));
    }
    return numbers.map((segno) => ({
      name: segmentFileName(1, segno),
      read: () => readWalSegment(holder, segno, lsn),
    }));
  };

  /** A safekeeper directory whose WAL agrees with the timeline on `[from, to)`. */
  const walHolder = async (entry: TimelineEntry, from: Lsn, to: Lsn): Promise<string | null> => {
    for (const sk of registrations) {
      const walDir = sk.walDir(entry.tenantId, entry.timelineId);
      const state = entry.walStates.get(sk.id) ?? await readWalState(walDir);
      if (state === null) continue;
      const startSegment = segmentNumber(state.startLsn);
      if (startSegment <= segmentNumber(from) && canonicalEnd(entry, state) >= to) return walDir;
    }
    return null;
  };

  const seedOf = async (entry: TimelineEntry): Promise<WalSeed> => {
    const base = entry.bases[0];
    const segments: WalSeed["segments"] = [];
    for (
      let segno = segmentNumber(base.redoLsn);
      segno <= segmentNumber(entry.initialLsn);
      segno++
    ) {
      const bytes = await Deno.readFile(join(base.dir, "pg_wal", segmentFileName(1, segno)));
      segments.push({ segmentNumber: segno, bytes });
    }
    const seed = { systemId: entry.systemId, segments, endLsn: entry.initialLsn };
    for (const segment of seed.segments) {
      segment.bytes = seedSegment(seed, segment.segmentNumber);
    }
    return seed;
  };

  const basebackupTar = async (
    tenantId: string,
    timelineId: string,
    requested: Lsn,
    tarOptions: BasebackupTarOptions = {},
  ): Promise<ReadableStream<Uint8Array>> => {
    const entry = entryFor(tenantId, timelineId);
    const lsn = requested === 0n ? commitLsn(entry) : requested;
    if (requested !== 0n) await waitForCommit(entry, lsn);
    const cutoff = entry.bases[0].lsn;
    if (lsn < cutoff) throw new LsnBeforeCutoffError(lsn, cutoff);
    const base = entry.bases.findLast((image) => image.lsn <= lsn)!;
    const segments = await walSegments(entry, base, lsn);
    const { stream, pack } = basebackupStream(
      { baseDir: base.dir, segments, gzip: tarOptions.gzip },
      () => activePacks.delete(pack),
    );
    activePacks.add(pack);
    return stream;
  };

  const dropUnneeded = async (entry: TimelineEntry) => {
    const now = Date.now();
    for (const [lsn, until] of entry.leases) if (until <= now) entry.leases.delete(lsn);
    const leased = [...entry.leases.keys()];
    const keep = entry.bases.filter((base, index) => {
      const next = entry.bases[index + 1];
      return next === undefined || leased.some((lsn) => lsn >= base.lsn && lsn < next.lsn);
    });
    const dropped = entry.bases.filter((base) => !keep.includes(base));
    entry.bases = keep;
    for (const base of dropped) await Deno.remove(base.dir, { recursive: true }).catch(() => {});
    // WAL below the oldest redo point is needed by no base image; a safekeeper behind
    // that point still needs its peers' copies, so keep what the slowest one lacks.
    let horizon = keep[0].redoLsn;
    for (const sk of registrations) {
      const state = entry.walStates.get(sk.id);
      const end = state === undefined ? entry.initialLsn : canonicalEnd(entry, state);
      if (end < horizon) horizon = end;
    }
    await Promise.all(
      registrations.map((sk) =>
        sk.pruneWal(entry.tenantId, entry.timelineId, horizon).catch(() => {})
      ),
    );
  };

  const compact = (entry: TimelineEntry): Promise<BaseImage> => {
    entry.compaction ??= compactTimeline(store, entry.tenantId, entry.timelineId)
      .then(() => entry.bases.at(-1)!)
      .finally(() => entry.compaction = null);
    return entry.compaction;
  };

  const maybeCompact = (entry: TimelineEntry) => {
    const threshold = options.compactionThresholdBytes ?? 0;
    if (threshold <= 0 || entry.compaction !== null || closed) return;
    if (commitLsn(entry) - entry.bases.at(-1)!.lsn < BigInt(threshold)) return;
    compact(entry).catch((error) => {
      if (!closed) (options.onError ?? console.error)(error);
    });
  };

  const close = async () => {
    if (closed) return;
    closed = true;
    await Promise.allSettled(
      [...timelines.values()].map((entry) => entry.compaction).filter((c) => c !== null),
    );
    for (const pack of activePacks) pack.destroy(new Error("timeline store closed"));
    for (const entry of timelines.values()) notify(entry);
    timelines.clear();
    const target = ownsDir ? dir : join(dir, "tenants");
    await Deno.remove(target, { recursive: true }).catch(() => {});
  };

  const store: TimelineStore = {
    dir,
    pgbin,
    createTimeline,
    hasTimeline: (tenantId, timelineId) => timelines.has(timelineKey(tenantId, timelineId)),
    commitLsn: (tenantId, timelineId) => commitLsn(entryFor(tenantId, timelineId)),
    lastLsn: (tenantId, timelineId) => commitLsn(entryFor(tenantId, timelineId)),
    initialLsn: (tenantId, timelineId) => entryFor(tenantId, timelineId).initialLsn,
    gcCutoffLsn: (tenantId, timelineId) => entryFor(tenantId, timelineId).bases[0].lsn,
    baseImages: (tenantId, timelineId) => entryFor(tenantId, timelineId).bases,
    baseImageDir: (tenantId, timelineId) => entryFor(tenantId, timelineId).bases.at(-1)!.dir,
    basebackupTar,
    leaseLsn: (tenantId, timelineId, lsn, durationMs) => {
      const entry = entryFor(tenantId, timelineId);
      if (lsn < entry.bases[0].lsn) return null;
      const until = Date.now() + durationMs;
      entry.leases.set(lsn, Math.max(until, entry.leases.get(lsn) ?? 0));
      return new Date(until);
    },
    activeLeases: (tenantId, timelineId) => {
      const now = Date.now();
      return [...entryFor(tenantId, timelineId).leases].filter(([, until]) => until > now)
        .map(([lsn]) => lsn);
    },
    addBaseImage: async (tenantId, timelineId, image) => {
      const entry = entryFor(tenantId, timelineId);
      if (image.lsn <= entry.bases.at(-1)!.lsn) {
        throw new Error(`base image at ${formatLsn(image.lsn)} is not newer than the newest`);
      }
      const { state } = await baseImageInfo(binDir, image.dir);
      if (state !== BASE_IMAGE_STATE) {
        throw new Error(`base image ${image.dir} is in state ${JSON.stringify(state)}`);
      }
      entry.bases.push(image);
      await dropUnneeded(entry);
      notify(entry);
    },
    registerSafekeeper: (registration) => {
      if (registrations.some((sk) => sk.id === registration.id)) {
        throw new Error(`safekeeper ${registration.id} is already registered`);
      }
      registrations.push(registration);
    },
    safekeepers: () => registrations,
    walSeed: (tenantId, timelineId) => seedOf(entryFor(tenantId, timelineId)),
    reportWalState: (safekeeperId, tenantId, timelineId, state) => {
      const entry = timelines.get(timelineKey(tenantId, timelineId));
      if (!entry) return;
      entry.walStates.set(safekeeperId, state);
      notify(entry);
      maybeCompact(entry);
    },
    walStates: (tenantId, timelineId) => entryFor(tenantId, timelineId).walStates,
    terms: (tenantId, timelineId) => entryFor(tenantId, timelineId).terms,
    announcePrimary: (tenantId, timelineId, source, safekeeperId, applicationName) => {
      const entry = entryFor(tenantId, timelineId);
      const latest = entry.terms.at(-1)!;
      const same = latest.source !== null && (
        source.instanceId !== undefined
          ? latest.source.instanceId === source.instanceId
          : latest.source.instanceId === undefined && latest.source.host === source.host &&
            latest.source.port === source.port && latest.startLsn === source.startLsn
      );
      const term = same ? latest : {
        term: latest.term + 1,
        startLsn: source.startLsn,
        source: {
          host: source.host,
          port: source.port,
          user: source.user,
          instanceId: source.instanceId,
        },
        names: new Map<number, string>(),
      };
      if (!same) entry.terms.push(term);
      term.names.set(safekeeperId, applicationName);
      notify(entry);
      return term;
    },
    canonicalEnd: (tenantId, timelineId, state) =>
      canonicalEnd(entryFor(tenantId, timelineId), state),
    changed: (tenantId, timelineId, signal) => {
      const entry = entryFor(tenantId, timelineId);
      if (signal?.aborted || closed) return Promise.resolve();
      const { promise, resolve } = Promise.withResolvers<void>();
      const onAbort = () => resolve();
      signal?.addEventListener("abort", onAbort, { once: true });
      entry.waiters.add(resolve);
      return promise.finally(() => signal?.removeEventListener("abort", onAbort));
    },
    timelineIds: () =>
      [...timelines.values()].map(({ tenantId, timelineId }) => ({ tenantId, timelineId })),
    compact: (tenantId, timelineId) => compact(entryFor(tenantId, timelineId)),
    walHolderDir: (tenantId, timelineId, from, to) =>
      walHolder(entryFor(tenantId, timelineId), from, to),
    close,
    [Symbol.asyncDispose]: close,
  };
  return store;
}

/** Segment `segno` of the seed, zero after its end LSN. */
function seedSegment(seed: WalSeed, segno: bigint): Uint8Array {
  const segment = seed.segments.find((s) => s.segmentNumber === segno);
  const out = new Uint8Array(16 * 1024 * 1024);
  if (!segment) return out;
  const start = segno * BigInt(out.length);
  const keep = seed.endLsn - start;
  if (keep > 0n) out.set(segment.bytes.subarray(0, Number(keep < out.length ? keep : out.length)));
  return out;
}

function timelineKey(tenantId: string, timelineId: string): string {
  return `${tenantId}/${timelineId}`;
}

function validateIds(tenantId: string, timelineId: string): void {
  for (const id of [tenantId, timelineId]) {
    if (!ID_PATTERN.test(id)) throw new Error(`invalid id ${JSON.stringify(id)}: need 32 hex`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
