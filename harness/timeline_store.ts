/**
 * @module
 * The timelines of the emulated storage cluster, shared by its pageservers and
 * safekeepers. A timeline is a list of base images (`base_image.ts`) plus WAL
 * whose source of truth is the safekeepers: each keeps its own copy
 * (`safekeeper_wal.ts`) and reports it here; the commit LSN is the highest LSN
 * a majority holds, and terms cut off WAL nobody acknowledged
 * (`timeline_history.ts`). Basebackups are composed in `timeline_basebackup.ts`,
 * newer base images by `compaction.ts`; leases keep older ones for Static
 * computes.
 */

import { pathExists } from "./_fs.ts";
import { join } from "node:path";
import { formatLsn, type Lsn } from "../src/api/lsn.ts";
import {
  BASE_IMAGE_STATE,
  baseImageInfo,
  binDirOf,
  copyImage,
  imageWalSeed,
  prepareImportedImage,
  templateFor,
  walEndOfImage,
} from "./base_image.ts";
import { composeBasebackup } from "./timeline_basebackup.ts";
import { compactTimeline } from "./compaction.ts";
import { pgFileOwner } from "./_processes.ts";
import { readWalState, type WalSeed, type WalState } from "./safekeeper_wal.ts";
import { segmentNumber } from "./wal_format.ts";
import {
  canonicalEnd as historyEnd,
  imagesToKeep,
  isSamePrimary,
  quorumLsn,
  type Term,
} from "./timeline_history.ts";
import type { Pack } from "tar-stream";
import { isHexId } from "../src/api/ids.ts";

export type { Term, WalSourceAddress } from "./timeline_history.ts";
export type {
  BasebackupTarOptions,
  BaseImage,
  SafekeeperRegistration,
  TimelineStore,
  TimelineStoreOptions,
} from "./timeline_types.ts";
export { TimelineNotFoundError } from "./timeline_types.ts";
import {
  type BasebackupTarOptions,
  type BaseImage,
  type SafekeeperRegistration,
  TimelineNotFoundError,
  type TimelineStore,
  type TimelineStoreOptions,
} from "./timeline_types.ts";
export { BASEBACKUP_EXCLUDED_FILES } from "./basebackup_tar.ts";
export { LsnBeforeCutoffError, LsnNotReachedError } from "./timeline_basebackup.ts";

const DEFAULT_WAIT_LSN_TIMEOUT_MS = 10_000;

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
  /** The segment each safekeeper was last told to prune below. */
  pruned: Map<number, bigint>;
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
  const pendingPrunes = new Set<Promise<void>>();
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

  /**
   * Registers a new timeline whose first base image `fill` makes in `baseDir`
   * (which does not exist yet). On any failure the timeline's directory is
   * removed and nothing is registered.
   */
  const addTimeline = async (
    tenantId: string,
    timelineId: string,
    fill: (baseDir: string) => Promise<void>,
  ) => {
    if (closed) throw new Error("timeline store is closed");
    validateIds(tenantId, timelineId);
    const key = timelineKey(tenantId, timelineId);
    if (timelines.has(key) || creating.has(key)) throw new Error(`timeline ${key} already exists`);
    creating.add(key);
    const root = join(dir, "tenants", tenantId, "timelines", timelineId);
    try {
      ownsDir ??= !(await pathExists(dir));
      const baseDir = join(root, "base-0");
      await Deno.mkdir(root, { recursive: true });
      const owner = await pgFileOwner();
      if (owner) await Deno.chown(root, owner.uid, owner.gid);
      await fill(baseDir);
      const info = await baseImageInfo(baseDir);
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
        pruned: new Map(),
      });
    } catch (error) {
      await Deno.remove(root, { recursive: true }).catch(() => {});
      throw error;
    } finally {
      creating.delete(key);
    }
  };

  const createTimeline = (tenantId: string, timelineId: string) =>
    addTimeline(tenantId, timelineId, async (baseDir) => {
      await copyImage(await templateFor(binDir), baseDir);
    });

  const importTimeline = (tenantId: string, timelineId: string, pgdata: string) =>
    addTimeline(tenantId, timelineId, async (baseDir) => {
      await copyImage(pgdata, baseDir);
      await prepareImportedImage(binDir, baseDir);
    });

  const canonicalEnd = (entry: TimelineEntry, state: WalState): Lsn =>
    historyEnd(entry.terms, state);

  /** Every registered safekeeper counts; one that never reported holds the initial WAL. */
  const commitLsn = (entry: TimelineEntry): Lsn =>
    quorumLsn(
      registrations.map((sk) => {
        const state = entry.walStates.get(sk.id);
        return state === undefined ? entry.initialLsn : canonicalEnd(entry, state);
      }),
      entry.initialLsn,
    );

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

  const seedOf = (entry: TimelineEntry): Promise<WalSeed> =>
    imageWalSeed(entry.bases[0], entry.initialLsn, entry.systemId);

  const basebackupTar = async (
    tenantId: string,
    timelineId: string,
    lsn: Lsn,
    tarOptions: BasebackupTarOptions = {},
  ): Promise<ReadableStream<Uint8Array>> => {
    entryFor(tenantId, timelineId);
    const { stream, pack } = await composeBasebackup(store, tenantId, timelineId, {
      lsn,
      gzip: tarOptions.gzip,
      waitLsnTimeoutMs: options.waitLsnTimeoutMs ?? DEFAULT_WAIT_LSN_TIMEOUT_MS,
    });
    activePacks.add(pack);
    pack.on("close", () => activePacks.delete(pack));
    return stream;
  };

  /**
   * Has every running safekeeper drop the WAL segments below the horizon: the
   * oldest base image's redo point, or the slowest safekeeper's end if that is
   * lower (it still needs its peers' copies). Called when an image is added and
   * whenever a safekeeper reports progress, so a laggard catching up (or a
   * stopped one coming back) lets the horizon move on; each safekeeper is asked
   * again only once the horizon has reached a new segment.
   */
  const prune = async (entry: TimelineEntry) => {
    let horizon = entry.bases[0].redoLsn;
    for (const sk of registrations) {
      const state = entry.walStates.get(sk.id);
      const end = state === undefined ? entry.initialLsn : canonicalEnd(entry, state);
      if (end < horizon) horizon = end;
    }
    const segno = segmentNumber(horizon);
    await Promise.all(registrations.map(async (sk) => {
      if ((entry.pruned.get(sk.id) ?? -1n) >= segno) return;
      entry.pruned.set(sk.id, segno);
      const done = await sk.pruneWal(entry.tenantId, entry.timelineId, horizon).catch(() => false);
      if (!done && entry.pruned.get(sk.id) === segno) entry.pruned.delete(sk.id);
    }));
  };

  const dropUnneeded = async (entry: TimelineEntry) => {
    const now = Date.now();
    for (const [lsn, until] of entry.leases) if (until <= now) entry.leases.delete(lsn);
    const keep = imagesToKeep(entry.bases, [...entry.leases.keys()]);
    const dropped = entry.bases.filter((base) => !keep.includes(base));
    entry.bases = keep;
    for (const base of dropped) await Deno.remove(base.dir, { recursive: true }).catch(() => {});
    await prune(entry);
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
    await Promise.allSettled([...pendingPrunes]);
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
    importTimeline,
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
      const { state } = await baseImageInfo(image.dir);
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
      if (!closed) {
        const pruning = prune(entry);
        pendingPrunes.add(pruning);
        pruning.finally(() => pendingPrunes.delete(pruning));
      }
    },
    walStates: (tenantId, timelineId) => entryFor(tenantId, timelineId).walStates,
    terms: (tenantId, timelineId) => entryFor(tenantId, timelineId).terms,
    announcePrimary: (tenantId, timelineId, source, safekeeperId, applicationName) => {
      const entry = entryFor(tenantId, timelineId);
      const latest = entry.terms.at(-1)!;
      const same = isSamePrimary(latest, source);
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

function timelineKey(tenantId: string, timelineId: string): string {
  return `${tenantId}/${timelineId}`;
}

function validateIds(tenantId: string, timelineId: string): void {
  for (const id of [tenantId, timelineId]) {
    if (!isHexId(id) || id !== id.toLowerCase()) {
      throw new Error(`invalid id ${JSON.stringify(id)}: need 32 lower-case hex digits`);
    }
  }
}
