/**
 * @module
 * PostgreSQL's WAL layout (PG 14–17, default build: 8 KiB pages, 8-byte
 * MAXALIGN) as far as a fake safekeeper needs it: segment arithmetic and file
 * names, page header sizes, where the record after a given end starts, and
 * {@link WalRecordScanner}, which follows a WAL byte stream fed in chunks of any
 * size and reports each record once all of its bytes (and padding) arrived.
 *
 * The scanner checks structure, not content: page addresses, the long header's
 * segment and page sizes, continuation flags and lengths, record lengths and
 * `xl_prev` links. It does not verify record CRCs (`xl_crc`) and ignores
 * `xlp_magic`, `xlp_tli` and `xlp_sysid`, so a record with a corrupt body passes.
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
function segmentSizeOf(segmentSize: number): bigint {
  const powerOfTwo = Number.isInteger(segmentSize) && (segmentSize & (segmentSize - 1)) === 0;
  if (!powerOfTwo || segmentSize < 1 << 20 || segmentSize > 1 << 30) {
    throw new RangeError(
      `invalid WAL segment size ${segmentSize}: not a power of two in 1MiB..1GiB`,
    );
  }
  return BigInt(segmentSize);
}

function pageOffset(lsn: Lsn): number {
  return Number(lsn % BLCKSZ);
}

function headerSizeAt(lsn: Lsn, segmentSize: bigint): number {
  return lsn - (lsn % BLCKSZ) === lsn - (lsn % segmentSize)
    ? LONG_PAGE_HEADER_SIZE
    : SHORT_PAGE_HEADER_SIZE;
}

function maxAlign(lsn: Lsn): Lsn {
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

/** One WAL record found by {@link WalRecordScanner}. */
export interface ScannedRecord {
  startLsn: Lsn;
  /** As PostgreSQL reports it: MAXALIGNed, or the next segment for a switch. */
  endLsn: Lsn;
  /** `xl_rmid`, the resource manager. */
  rmid: number;
  /** `xl_info`. */
  info: number;
  /** `xl_tot_len`, header included. */
  totalLength: number;
}

/** Whether `record` is a shutdown or online checkpoint. */
export function isCheckpointRecord(record: Pick<ScannedRecord, "rmid" | "info">): boolean {
  const kind = record.info & 0xf0;
  return record.rmid === RM_XLOG_ID &&
    (kind === XLOG_CHECKPOINT_SHUTDOWN || kind === XLOG_CHECKPOINT_ONLINE);
}

/** Whether `record` is an `XLOG_SWITCH`, which ends its segment. */
export function isSwitchRecord(record: Pick<ScannedRecord, "rmid" | "info">): boolean {
  return record.rmid === RM_XLOG_ID && (record.info & 0xf0) === XLOG_SWITCH;
}

/** Options of {@link WalRecordScanner}. */
export interface WalRecordScannerOptions {
  /** End of a complete record in the stream; bytes are fed from here. */
  endOfLastRecord: Lsn;
  segmentSize?: number;
  /** Start of that record, to check the next record's `xl_prev` against. */
  previousRecordStart?: Lsn;
  /**
   * Treat a zero `xl_tot_len` or an all-zero page header as the end of valid
   * WAL (as in a segment file) instead of an error: scanning stops there.
   */
  stopAtZeroLength?: boolean;
}

interface RecordInProgress {
  start: Lsn;
  /** Bytes of the record read so far, header included, page headers not. */
  read: number;
  /** `xl_tot_len`, 0 until its 4 bytes were read. */
  totalLength: number;
}

/**
 * Follows a contiguous WAL byte stream and reports where records end. It keeps
 * no WAL: only the page header and record header being read, so records of any
 * size cost nothing. A record is reported once the stream reaches its end
 * (including alignment padding, and for a switch the rest of the segment).
 */
export class WalRecordScanner {
  /** The WAL segment size the stream was written with. */
  readonly segmentSize: number;
  readonly #segmentSize: bigint;
  readonly #stopAtZeroLength: boolean;
  #fed: Lsn;
  #complete: Lsn;
  #previousStart: Lsn | undefined;
  #stopped = false;
  readonly #pageHeader = new Uint8Array(LONG_PAGE_HEADER_SIZE);
  readonly #recordHeader = new Uint8Array(XLOG_RECORD_HEADER_SIZE);
  #record: RecordInProgress | undefined;
  /** A record whose bytes were all read, waiting for the stream to reach its end. */
  #finished: ScannedRecord | undefined;

  constructor(options: WalRecordScannerOptions) {
    const { endOfLastRecord, segmentSize = DEFAULT_WAL_SEGMENT_SIZE } = options;
    this.segmentSize = segmentSize;
    this.#segmentSize = segmentSizeOf(segmentSize);
    this.#stopAtZeroLength = options.stopAtZeroLength ?? false;
    const offset = pageOffset(endOfLastRecord);
    if (
      endOfLastRecord % 8n !== 0n ||
      (offset !== 0 && offset < headerSizeAt(endOfLastRecord, this.#segmentSize))
    ) {
      throw new WalFormatError("no record can end here", endOfLastRecord);
    }
    this.#fed = endOfLastRecord;
    this.#complete = endOfLastRecord;
    this.#previousStart = options.previousRecordStart;
  }

  /**
   * A scanner whose first record starts at `recordStart` (a checkpoint location,
   * say) rather than after a known record end; `completeLsn` starts there.
   */
  static atRecordStart(
    recordStart: Lsn,
    options: Omit<WalRecordScannerOptions, "endOfLastRecord"> = {},
  ): WalRecordScanner {
    if (pageOffset(recordStart) === 0) {
      throw new WalFormatError("no record starts on a page boundary", recordStart);
    }
    return new WalRecordScanner({ ...options, endOfLastRecord: recordStart });
  }

  /** End of the last complete record (where a cut keeps only whole records). */
  get completeLsn(): Lsn {
    return this.#complete;
  }

  /** End of the bytes fed so far: where the next {@link push} must start. */
  get fedLsn(): Lsn {
    return this.#fed;
  }

  /** Whether the scan stopped at the end of valid WAL (`stopAtZeroLength`). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Feeds `bytes` of WAL starting at `lsn`, which must be {@link fedLsn}, and
   * returns the records they complete, in order. Throws {@link WalFormatError}
   * on a gap or overlap, or on bytes PostgreSQL would not have written; after
   * that the scanner is unusable. Once {@link stopped}, bytes are only counted.
   */
  push(lsn: Lsn, bytes: Uint8Array): ScannedRecord[] {
    if (lsn !== this.#fed) {
      throw new WalFormatError(
        `WAL not contiguous: expected bytes from ${formatLsn(this.#fed)}`,
        lsn,
      );
    }
    const completed: ScannedRecord[] = [];
    let at = 0;
    while (at < bytes.length && !this.#stopped) {
      at += this.#step(bytes.subarray(at), completed);
    }
    this.#fed = lsn + BigInt(bytes.length);
    return completed;
  }

  /** Consumes the start of `chunk` up to the next thing to look at; returns its length. */
  #step(chunk: Uint8Array, completed: ScannedRecord[]): number {
    if (this.#finished) return this.#skipPadding(chunk, completed);
    const offset = pageOffset(this.#fed);
    const headerSize = headerSizeAt(this.#fed, this.#segmentSize);
    if (offset < headerSize) return this.#readPageHeader(chunk, offset, headerSize);
    return this.#readRecord(chunk.subarray(0, XLOG_BLCKSZ - offset), completed);
  }

  #skipPadding(chunk: Uint8Array, completed: ScannedRecord[]): number {
    const length = Math.min(chunk.length, Number(this.#finished!.endLsn - this.#fed));
    this.#fed += BigInt(length);
    this.#reportIfReached(completed);
    return length;
  }

  #reportIfReached(completed: ScannedRecord[]): void {
    if (this.#finished && this.#fed === this.#finished.endLsn) {
      completed.push(this.#finished);
      this.#complete = this.#finished.endLsn;
      this.#finished = undefined;
    }
  }

  #readPageHeader(chunk: Uint8Array, offset: number, headerSize: number): number {
    const length = Math.min(chunk.length, headerSize - offset);
    this.#pageHeader.set(chunk.subarray(0, length), offset);
    this.#fed += BigInt(length);
    if (offset + length === headerSize) {
      this.#checkPageHeader(this.#fed - BigInt(headerSize), headerSize);
    }
    return length;
  }

  #checkPageHeader(pageStart: Lsn, headerSize: number): void {
    const header = this.#pageHeader.subarray(0, headerSize);
    const view = new DataView(header.buffer, header.byteOffset, headerSize);
    if (this.#stopAtZeroLength && header.every((byte) => byte === 0)) return this.#stop();
    const address = view.getBigUint64(8, true);
    if (address !== pageStart) {
      throw new WalFormatError(
        `wrong page address ${formatLsn(address)} in page header`,
        pageStart,
      );
    }
    if (headerSize === LONG_PAGE_HEADER_SIZE) {
      const [segmentSize, blockSize] = [view.getUint32(32, true), view.getUint32(36, true)];
      if (segmentSize !== this.segmentSize || blockSize !== XLOG_BLCKSZ) {
        throw new WalFormatError(
          `long page header says segment size ${segmentSize} and page size ${blockSize}, ` +
            `expected ${this.segmentSize} and ${XLOG_BLCKSZ}`,
          pageStart,
        );
      }
    }
    this.#checkContinuation(pageStart, view.getUint16(2, true), view.getUint32(16, true));
  }

  /** Checks that the page continues the record in progress, or none when there is none. */
  #checkContinuation(pageStart: Lsn, info: number, remainingLength: number): void {
    const record = this.#record;
    if (record === undefined) {
      if (info & XLP_FIRST_IS_CONTRECORD) {
        throw new WalFormatError(
          "page continues a record where a new record should start",
          pageStart,
        );
      }
      return;
    }
    if (info & XLP_FIRST_IS_OVERWRITE_CONTRECORD) {
      this.#record = undefined; // abandoned by a crash: a new record starts here
      return;
    }
    const remaining = record.totalLength - record.read;
    if (!(info & XLP_FIRST_IS_CONTRECORD) || remainingLength !== remaining) {
      throw new WalFormatError(
        `page should continue the record at ${formatLsn(record.start)} with ${remaining} bytes ` +
          `but has xlp_info 0x${info.toString(16)}, xlp_rem_len ${remainingLength}`,
        pageStart,
      );
    }
  }

  /** Reads record bytes; `chunk` ends at the page end at the latest. */
  #readRecord(chunk: Uint8Array, completed: ScannedRecord[]): number {
    const record = this.#record ??= { start: this.#fed, read: 0, totalLength: 0 };
    const before = record.read;
    let length: number;
    if (before < XLOG_RECORD_HEADER_SIZE) {
      length = Math.min(chunk.length, XLOG_RECORD_HEADER_SIZE - before);
      this.#recordHeader.set(chunk.subarray(0, length), before);
    } else {
      length = Math.min(chunk.length, record.totalLength - before);
    }
    record.read += length;
    this.#fed += BigInt(length);
    const header = new DataView(this.#recordHeader.buffer);
    if (before < 4 && record.read >= 4) {
      record.totalLength = header.getUint32(0, true);
      if (record.totalLength === 0 && this.#stopAtZeroLength) {
        this.#stop();
        return length;
      }
      if (record.totalLength < XLOG_RECORD_HEADER_SIZE) {
        throw new WalFormatError(`invalid record length ${record.totalLength}`, record.start);
      }
    }
    if (before < 16 && record.read >= 16) this.#checkPrevious(record, header.getBigUint64(8, true));
    if (record.read >= XLOG_RECORD_HEADER_SIZE && record.read === record.totalLength) {
      this.#finishRecord(record, completed);
    }
    return length;
  }

  #checkPrevious(record: RecordInProgress, previous: Lsn): void {
    const expected = this.#previousStart;
    if (expected !== undefined && previous !== expected) {
      throw new WalFormatError(
        `record xl_prev ${formatLsn(previous)} is not the previous record's start ` +
          formatLsn(expected),
        record.start,
      );
    }
  }

  #finishRecord(record: RecordInProgress, completed: ScannedRecord[]): void {
    const [info, rmid] = [this.#recordHeader[16], this.#recordHeader[17]];
    let endLsn = maxAlign(this.#fed);
    if (isSwitchRecord({ rmid, info })) {
      endLsn = (endLsn + this.#segmentSize - 1n) / this.#segmentSize * this.#segmentSize;
    }
    this.#finished = {
      startLsn: record.start,
      endLsn,
      rmid,
      info,
      totalLength: record.totalLength,
    };
    this.#previousStart = record.start;
    this.#record = undefined;
    this.#reportIfReached(completed);
  }

  #stop(): void {
    this.#stopped = true;
    this.#record = undefined;
  }
}

/** What {@link scanRecords} found. */
export interface ScanResult {
  records: ScannedRecord[];
  /** End of the last complete record. */
  completeLsn: Lsn;
  /** Whether the scan stopped at the end of valid WAL (`stopAtZeroLength`). */
  stopped: boolean;
}

/**
 * Scans a whole buffer of WAL that starts at `bytesStartLsn` and contains
 * `endOfLastRecord` (a record end, or a record start); bytes before it are
 * ignored. Returns the records after it and the end of the last complete one.
 */
export function scanRecords(
  bytes: Uint8Array,
  bytesStartLsn: Lsn,
  endOfLastRecord: Lsn,
  segmentSize = DEFAULT_WAL_SEGMENT_SIZE,
  options: Pick<WalRecordScannerOptions, "previousRecordStart" | "stopAtZeroLength"> = {},
): ScanResult {
  const skip = endOfLastRecord - bytesStartLsn;
  if (skip < 0n || skip > BigInt(bytes.length)) {
    throw new WalFormatError(
      `scan start is outside the ${bytes.length} bytes from ${formatLsn(bytesStartLsn)}`,
      endOfLastRecord,
    );
  }
  const scanner = new WalRecordScanner({ ...options, endOfLastRecord, segmentSize });
  const records = scanner.push(endOfLastRecord, bytes.subarray(Number(skip)));
  return { records, completeLsn: scanner.completeLsn, stopped: scanner.stopped };
}
