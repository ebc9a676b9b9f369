/**
 * @module
 * The pure decisions of the failover benchmark: which WAL sizes a run
 * replays, how many restarts each gets, how many rows the next `INSERT`
 * batch writes while WAL is generated, when in the probe cycle a pageserver
 * is killed, and when a compute answers through the pageserver it was moved to.
 */

/** Bytes in a MiB. */
export const MIB = 1024 * 1024;

/** The restart benchmark never repeats the largest size more often than this. */
const MAX_LARGE_REPETITIONS = 3;
/** From this size (MiB) on, a size counts as large. */
const LARGE_WAL_MIB = 512;

/**
 * The WAL sizes (MiB since the last compaction) a run restarts a compute
 * with: 64 and 512 MiB, or 8 and 16 MiB for `--quick`.
 */
export function walSizesMiB(quick: boolean): number[] {
  return quick ? [8, 16] : [64, 512];
}

/** Restart pairs for a WAL size: `repetitions`, at most 3 from 512 MiB on, at least 1. */
export function restartRepetitions(walMiB: number, repetitions: number): number {
  const wanted = Math.max(1, Math.floor(repetitions));
  return walMiB >= LARGE_WAL_MIB ? Math.min(wanted, MAX_LARGE_REPETITIONS) : wanted;
}

/** WAL one generated row costs, about: a 1000-byte body, the tuple header, the record header. */
export const WAL_BYTES_PER_ROW = 1_100;
const MIN_BATCH_ROWS = 1_000;
const MAX_BATCH_ROWS = 50_000;

/**
 * Rows for the next `INSERT … generate_series` batch when `remainingBytes` of
 * WAL are still to be written: enough to cover them at
 * {@linkcode WAL_BYTES_PER_ROW}, between 1,000 and 50,000 rows so that one
 * batch stays a short transaction and the last one does not overshoot much.
 */
export function batchRows(remainingBytes: number | bigint): number {
  const remaining = Number(remainingBytes);
  if (!(remaining > 0)) return 0;
  const rows = Math.ceil(remaining / WAL_BYTES_PER_ROW);
  return Math.min(MAX_BATCH_ROWS, Math.max(MIN_BATCH_ROWS, rows));
}

/** The distance from `from` to `to` in MiB (negative when `to` is before `from`). */
export function mibBetween(from: bigint, to: bigint): number {
  return Number(to - from) / MIB;
}

/**
 * Whether `neon.pageserver_connstring` (a comma-separated list, shard 0
 * first) names `libpqUrl` for shard 0: the compute reads pages from there.
 */
export function namesPageserver(connstring: string | null | undefined, libpqUrl: string): boolean {
  return (connstring ?? "").split(",")[0].trim() === libpqUrl;
}

/**
 * How long after a good probe repetition `rep` (1-based, of `repetitions`)
 * kills the pageserver: the middle of its `1/repetitions` slice of the probe
 * interval, so the repetitions together sample every phase of the probe
 * cycle instead of always landing just after a probe.
 */
export function probePhaseOffsetMs(rep: number, repetitions: number, intervalMs: number): number {
  const slices = Math.max(1, repetitions);
  const slice = ((Math.max(1, rep) - 1) % slices) + 0.5;
  return (intervalMs * slice) / slices;
}
