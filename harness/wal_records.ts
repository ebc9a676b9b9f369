/**
 * @module
 * Following PostgreSQL WAL records through a byte stream:
 * {@link WalRecordScanner} takes chunks of any size and reports each record
 * once all of its bytes (and padding) arrived, so a safekeeper knows the end of
 * the last complete record it holds.
 *
 * The scanner checks structure, not content: page addresses, the long header's
 * segment and page sizes, continuation flags and lengths, record lengths and
 * `xl_prev` links. It does not verify record CRCs (`xl_crc`) and ignores
 * `xlp_magic`, `xlp_tli` and `xlp_sysid`, so a record with a corrupt body passes.
 */

import { formatLsn, type Lsn } from "../src/api/lsn.ts";
import {
  DEFAULT_WAL_SEGMENT_SIZE,
  headerSizeAt,
  LONG_PAGE_HEADER_SIZE,
  maxAlign,
  pageOffset,
  RM_XLOG_ID,
  segmentSizeOf,
  WalFormatError,
  XLOG_BLCKSZ,
  XLOG_CHECKPOINT_ONLINE,
  XLOG_CHECKPOINT_SHUTDOWN,
  XLOG_RECORD_HEADER_SIZE,
  XLOG_SWITCH,
  XLP_FIRST_IS_CONTRECORD,
  XLP_FIRST_IS_OVERWRITE_CONTRECORD,
} from "./wal_format.ts";

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
