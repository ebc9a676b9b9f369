/**
 * @module
 * One safekeeper's copy of one timeline's WAL, on disk: 16 MiB segment files
 * named as PostgreSQL names them (timeline 1), and `state.json` with the term
 * the WAL belongs to and the flush LSN.
 *
 * The flush LSN is the end of the last *complete* WAL record that is on disk
 * and fsynced (a {@linkcode WalRecordScanner} finds record ends), so it is
 * always a position a compute's crash recovery ends at exactly. `state.json` is
 * written (temporary file, fsync, rename) before a new flush LSN is reported to
 * anyone: a killed safekeeper restarts with every LSN it ever reported. Bytes
 * past the flush LSN may sit in the files; nothing reads them, and the next
 * append overwrites them.
 */

import { join } from "node:path";
import { formatLsn, type Lsn, parseLsn } from "../src/api/lsn.ts";
import { DEFAULT_WAL_SEGMENT_SIZE, segmentFileName, segmentNumber } from "./wal_format.ts";
import { WalRecordScanner } from "./wal_records.ts";

const STATE_FILE = "state.json";
const SEGMENT_SIZE = DEFAULT_WAL_SEGMENT_SIZE;

/** What `state.json` holds. */
export interface WalState {
  /** The term (primary compute generation) of the newest WAL held. */
  term: number;
  /** End of the last complete, fsynced record. */
  flushLsn: Lsn;
  /** The first byte held (the start of the oldest segment kept). */
  startLsn: Lsn;
  /** The database system identifier, from the timeline's base image. */
  systemId: string;
}

/** The first WAL of a timeline, copied from its base image when a safekeeper first needs it. */
export interface WalSeed {
  systemId: string;
  /** Whole segments, zero after `endLsn`. */
  segments: { segmentNumber: bigint; bytes: Uint8Array }[];
  /** End of the base image's last record. */
  endLsn: Lsn;
}

/** A WAL range that this copy does not hold. */
export class WalNotHeldError extends Error {
  constructor(from: Lsn, to: Lsn, state: WalState) {
    super(
      `requested WAL ${formatLsn(from)}..${formatLsn(to)} is not held here ` +
        `(held ${formatLsn(state.startLsn)}..${formatLsn(state.flushLsn)})`,
    );
    this.name = "WalNotHeldError";
  }
}

/** Reads `state.json` of the WAL copy in `dir`; null when there is none yet. */
export async function readWalState(dir: string): Promise<WalState | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, STATE_FILE));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  const raw = JSON.parse(text);
  return {
    term: raw.term,
    flushLsn: parseLsn(raw.flush_lsn),
    startLsn: parseLsn(raw.start_lsn),
    systemId: raw.system_id,
  };
}

/**
 * Reads the bytes `[from, to)` of the WAL copy in `dir`. `to` must not pass
 * the flush LSN, nor `from` precede the oldest byte held.
 */
export async function readWalRange(dir: string, from: Lsn, to: Lsn): Promise<Uint8Array> {
  const state = await readWalState(dir);
  if (state === null || from < state.startLsn || to > state.flushLsn || from > to) {
    throw new WalNotHeldError(from, to, state ?? emptyState());
  }
  const out = new Uint8Array(Number(to - from));
  let position = from;
  while (position < to) {
    const segno = segmentNumber(position, SEGMENT_SIZE);
    const segmentEnd = (segno + 1n) * BigInt(SEGMENT_SIZE);
    const end = to < segmentEnd ? to : segmentEnd;
    const file = await Deno.open(join(dir, segmentFileName(1, segno, SEGMENT_SIZE)));
    try {
      await file.seek(Number(position - segno * BigInt(SEGMENT_SIZE)), Deno.SeekMode.Start);
      const target = out.subarray(Number(position - from), Number(end - from));
      let filled = 0;
      while (filled < target.length) {
        const count = await file.read(target.subarray(filled));
        if (count === null) break; // a sparse tail reads as zeros already
        filled += count;
      }
    } finally {
      file.close();
    }
    position = end;
  }
  return out;
}

/**
 * One whole segment as PostgreSQL expects it in `pg_wal`: 16 MiB, with every
 * byte at or after `zeroFrom` zeroed (so recovery ends there).
 */
export async function readWalSegment(
  dir: string,
  segno: bigint,
  zeroFrom: Lsn,
): Promise<Uint8Array> {
  const start = segno * BigInt(SEGMENT_SIZE);
  const out = new Uint8Array(SEGMENT_SIZE);
  const end = zeroFrom < start + BigInt(SEGMENT_SIZE) ? zeroFrom : start + BigInt(SEGMENT_SIZE);
  if (end > start) out.set(await readWalRange(dir, start, end));
  return out;
}

/** Options of {@linkcode openTimelineWal}. */
export interface OpenTimelineWalOptions {
  /** Produces the first WAL when the directory holds none yet. */
  seed: () => Promise<WalSeed>;
  /** Called after every persisted change of the flush LSN or term. */
  onChange?: (state: WalState) => void;
  /** Once aborted (the safekeeper was killed), nothing more is written or persisted. */
  signal?: AbortSignal;
}

/** A writable WAL copy; see the module doc. */
export interface TimelineWal {
  readonly dir: string;
  readonly state: Readonly<WalState>;
  /** End of the bytes appended so far (may pass the flush LSN mid-record). */
  readonly receivedLsn: Lsn;
  /**
   * Writes `bytes` at `lsn` (which must be {@linkcode TimelineWal.receivedLsn}),
   * fsyncs them, and persists the new flush LSN when a record was completed.
   * Returns the flush LSN. Throws on malformed WAL, leaving the flush LSN alone.
   */
  append(lsn: Lsn, bytes: Uint8Array): Promise<Lsn>;
  /** Forgets everything after `lsn` (flush = min(flush, lsn)); appends resume there. */
  truncate(lsn: Lsn): Promise<void>;
  /** Records that the WAL held belongs to `term` from now on. */
  setTerm(term: number): Promise<void>;
  /** Drops whole segments that end at or before `lsn`. */
  removeSegmentsBefore(lsn: Lsn): Promise<void>;
}

/** Opens (creating from the seed if needed) the WAL copy in `dir`. */
export async function openTimelineWal(
  dir: string,
  options: OpenTimelineWalOptions,
): Promise<TimelineWal> {
  await Deno.mkdir(dir, { recursive: true });
  let state = await readWalState(dir);
  if (state === null) {
    const seed = await options.seed();
    for (const segment of seed.segments) {
      // Only the part before the end LSN: the rest of the (sparse) file reads as zeros.
      const used = seed.endLsn - segment.segmentNumber * BigInt(SEGMENT_SIZE);
      const length = used < 0n ? 0 : Math.min(segment.bytes.length, Number(used));
      await writeDurably(join(dir, segmentFileName(1, segment.segmentNumber, SEGMENT_SIZE)), [
        0,
        segment.bytes.subarray(0, length),
      ]);
    }
    state = {
      term: 0,
      flushLsn: seed.endLsn,
      startLsn: seed.segments[0].segmentNumber * BigInt(SEGMENT_SIZE),
      systemId: seed.systemId,
    };
    await persistState(dir, state);
  }
  let current: WalState = state;
  let scanner = new WalRecordScanner({ endOfLastRecord: current.flushLsn });

  // One state write at a time, each applied to the state the previous one left:
  // an append and a prune running together must not undo each other's field.
  let writes: Promise<void> = Promise.resolve();
  const persist = (update: (state: WalState) => WalState): Promise<void> => {
    const write = writes.then(async () => {
      options.signal?.throwIfAborted();
      const next = update(current);
      await persistState(dir, next);
      current = next;
      options.onChange?.(current);
    });
    writes = write.catch(() => {});
    return write;
  };

  return {
    dir,
    get state() {
      return current;
    },
    get receivedLsn() {
      return scanner.fedLsn;
    },
    append: async (lsn, bytes) => {
      if (lsn !== scanner.fedLsn) {
        throw new Error(
          `WAL append at ${formatLsn(lsn)} is not contiguous with ${formatLsn(scanner.fedLsn)}`,
        );
      }
      options.signal?.throwIfAborted();
      await writeSegments(dir, lsn, bytes);
      scanner.push(lsn, bytes);
      const completeLsn = scanner.completeLsn;
      if (completeLsn > current.flushLsn) {
        await persist((state) => ({ ...state, flushLsn: completeLsn }));
      }
      return current.flushLsn;
    },
    truncate: async (lsn) => {
      const flushLsn = lsn < current.flushLsn ? lsn : current.flushLsn;
      scanner = new WalRecordScanner({ endOfLastRecord: flushLsn });
      if (flushLsn !== current.flushLsn) await persist((state) => ({ ...state, flushLsn }));
    },
    setTerm: async (term) => {
      if (term !== current.term) await persist((state) => ({ ...state, term }));
    },
    removeSegmentsBefore: async (lsn) => {
      const keepFrom = segmentNumber(lsn, SEGMENT_SIZE);
      const first = segmentNumber(current.startLsn, SEGMENT_SIZE);
      if (keepFrom <= first) return;
      await persist((state) => ({ ...state, startLsn: keepFrom * BigInt(SEGMENT_SIZE) }));
      for (let segno = first; segno < keepFrom; segno++) {
        await Deno.remove(join(dir, segmentFileName(1, segno, SEGMENT_SIZE))).catch(() => {});
      }
    },
  };
}

async function writeSegments(dir: string, lsn: Lsn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const position = lsn + BigInt(offset);
    const segno = segmentNumber(position, SEGMENT_SIZE);
    const within = Number(position - segno * BigInt(SEGMENT_SIZE));
    const take = Math.min(bytes.length - offset, SEGMENT_SIZE - within);
    await writeDurably(join(dir, segmentFileName(1, segno, SEGMENT_SIZE)), [
      within,
      bytes.subarray(offset, offset + take),
    ]);
    offset += take;
  }
}

/** Writes `data` at `offset` of a segment file (created sparse, 16 MiB) and fdatasyncs it. */
async function writeDurably(path: string, [offset, data]: [number, Uint8Array]): Promise<void> {
  const file = await Deno.open(path, { read: true, write: true, create: true });
  try {
    if ((await file.stat()).size < SEGMENT_SIZE) await file.truncate(SEGMENT_SIZE);
    await file.seek(offset, Deno.SeekMode.Start);
    for (let written = 0; written < data.length;) {
      written += await file.write(data.subarray(written));
    }
    await file.syncData();
  } finally {
    file.close();
  }
}

async function persistState(dir: string, state: WalState): Promise<void> {
  const path = join(dir, STATE_FILE);
  const temporary = `${path}.tmp`;
  const text = JSON.stringify({
    term: state.term,
    flush_lsn: formatLsn(state.flushLsn),
    start_lsn: formatLsn(state.startLsn),
    system_id: state.systemId,
  });
  const file = await Deno.open(temporary, { write: true, create: true, truncate: true });
  try {
    await file.write(new TextEncoder().encode(text));
    await file.syncData();
  } finally {
    file.close();
  }
  await Deno.rename(temporary, path);
}

function emptyState(): WalState {
  return { term: 0, flushLsn: 0n, startLsn: 0n, systemId: "" };
}
