/**
 * @module
 * PostgreSQL's WAL layout (PG 14–17, default build: 8 KiB pages, 8-byte
 * MAXALIGN) as far as a fake safekeeper needs it: segment arithmetic and file
 * names, page header sizes, and where the record after a given end starts.
 * Records themselves are followed by `wal_records.ts`.
 */

import { formatLsn, type Lsn } from "../src/api/lsn.ts";

/** Size of a WAL page. */
export const XLOG_BLCKSZ = 8192;
/** PostgreSQL's default WAL segment size, 16 MiB. */
export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;
/** Size of the header on every page but a segment's first (`SizeOfXLogShortPHD`). */
export const SHORT_PAGE_HEADER_SIZE = 24;
/** Size of the header on a segment's first page (`SizeOfXLogLongPHD`). */
export const LONG_PAGE_HEADER_SIZE = 40;
/** Size of the fixed record header `XLogRecord`. */
export const XLOG_RECORD_HEADER_SIZE = 24;

/** `xlp_info` flag: the page starts with the rest of a record from earlier pages. */
export const XLP_FIRST_IS_CONTRECORD = 0x0001;
/** `xlp_info` flag: the page has a long header. */
export const XLP_LONG_HEADER = 0x0002;
/** `xlp_info` flag: the record continued here was abandoned; a new one starts. */
export const XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008;

/** Resource manager id of the XLOG records (checkpoints, switches). */
export const RM_XLOG_ID = 0;
/** `xl_info` (high nibble) of a shutdown checkpoint record. */
export const XLOG_CHECKPOINT_SHUTDOWN = 0x00;
/** `xl_info` (high nibble) of an online checkpoint record. */
export const XLOG_CHECKPOINT_ONLINE = 0x10;
/** `xl_info` (high nibble) of a segment switch record. */
export const XLOG_SWITCH = 0x40;

const BLCKSZ = BigInt(XLOG_BLCKSZ);

/** Thrown when WAL bytes or positions are not what PostgreSQL would write. */
export class WalFormatError extends Error {
  /** Where the problem is. */
  readonly lsn: Lsn;

  constructor(message: string, lsn: Lsn) {
    super(`${message} at ${formatLsn(lsn)}`);
    this.name = "WalFormatError";
    this.lsn = lsn;
  }
}

/** Checks a segment size as PostgreSQL does (a power of two, 1 MiB–1 GiB). */
export function segmentSizeOf(segmentSize: number): bigint {
  const powerOfTwo = Number.isInteger(segmentSize) && (segmentSize & (segmentSize - 1)) === 0;
  if (!powerOfTwo || segmentSize < 1 << 20 || segmentSize > 1 << 30) {
    throw new RangeError(
      `invalid WAL segment size ${segmentSize}: not a power of two in 1MiB..1GiB`,
    );
  }
  return BigInt(segmentSize);
}

export function pageOffset(lsn: Lsn): number {
  return Number(lsn % BLCKSZ);
}

export function headerSizeAt(lsn: Lsn, segmentSize: bigint): number {
  return lsn - (lsn % BLCKSZ) === lsn - (lsn % segmentSize)
    ? LONG_PAGE_HEADER_SIZE
    : SHORT_PAGE_HEADER_SIZE;
}

export function maxAlign(lsn: Lsn): Lsn {
  return (lsn + 7n) & ~7n;
}

/** The first LSN of the segment holding `lsn`. */
export function segmentStart(lsn: Lsn, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): Lsn {
  return lsn - (lsn % segmentSizeOf(segmentSize));
}

/** The number of the segment holding `lsn` (`XLByteToSeg`). */
export function segmentNumber(lsn: Lsn, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): bigint {
  return lsn / segmentSizeOf(segmentSize);
}

function segmentsPerXLogId(segmentSize: number): bigint {
  return 0x1_0000_0000n / segmentSizeOf(segmentSize);
}

const hex8 = (value: bigint | number) => value.toString(16).toUpperCase().padStart(8, "0");

/**
 * The file name PostgreSQL gives a segment in `pg_wal` (`XLogFileName`): 24
 * upper-case hex digits of timeline, "xlog id" and segment within it.
 */
export function segmentFileName(
  timelineId: number,
  segmentNumber: bigint,
  segmentSize = DEFAULT_WAL_SEGMENT_SIZE,
): string {
  if (!Number.isInteger(timelineId) || timelineId < 1 || timelineId > 0xffff_ffff) {
    throw new RangeError(`invalid timeline id ${timelineId}`);
  }
  const perId = segmentsPerXLogId(segmentSize);
  if (segmentNumber < 0n || segmentNumber / perId > 0xffff_ffffn) {
    throw new RangeError(`invalid segment number ${segmentNumber}`);
  }
  return hex8(timelineId) + hex8(segmentNumber / perId) + hex8(segmentNumber % perId);
}

/**
 * Reads a segment file name back into timeline and segment number, or null
 * when `name` is not one PostgreSQL would give a segment of this size.
 */
export function parseSegmentFileName(
  name: string,
  segmentSize = DEFAULT_WAL_SEGMENT_SIZE,
): { timelineId: number; segmentNumber: bigint } | null {
  const perId = segmentsPerXLogId(segmentSize);
  const match = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/.exec(name);
  if (!match) return null;
  const [timelineId, xlogId, segment] = match.slice(1).map((part) => BigInt(`0x${part}`));
  if (timelineId === 0n || segment >= perId) return null;
  return { timelineId: Number(timelineId), segmentNumber: xlogId * perId + segment };
}

/** The header size of the page holding `lsn`: long on a segment's first page, else short. */
export function pageHeaderSize(lsn: Lsn, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): number {
  return headerSizeAt(lsn, segmentSizeOf(segmentSize));
}

/**
 * Where the record after one ending at `endLsn` starts: `endLsn` itself, or just
 * past the page header when `endLsn` is a page boundary.
 */
export function nextRecordStart(endLsn: Lsn, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): Lsn {
  const size = segmentSizeOf(segmentSize);
  return pageOffset(endLsn) === 0 ? endLsn + BigInt(headerSizeAt(endLsn, size)) : endLsn;
}
