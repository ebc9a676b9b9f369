import assert from "node:assert/strict";
import { parseLsn } from "../../src/api/lsn.ts";
import {
  DEFAULT_WAL_SEGMENT_SIZE,
  LONG_PAGE_HEADER_SIZE,
  nextRecordStart,
  pageHeaderSize,
  parseSegmentFileName,
  segmentFileName,
  segmentNumber,
  segmentStart,
  SHORT_PAGE_HEADER_SIZE,
  WalFormatError,
  XLOG_BLCKSZ,
  XLOG_CHECKPOINT_ONLINE,
  XLOG_CHECKPOINT_SHUTDOWN,
  XLOG_RECORD_HEADER_SIZE,
  XLOG_SWITCH,
  XLP_FIRST_IS_CONTRECORD,
  XLP_FIRST_IS_OVERWRITE_CONTRECORD,
  XLP_LONG_HEADER,
} from "../../harness/wal_format.ts";
import {
  isCheckpointRecord,
  isSwitchRecord,
  type ScannedRecord,
  scanRecords,
  WalRecordScanner,
} from "../../harness/wal_records.ts";

const BLCK = BigInt(XLOG_BLCKSZ);
/** 1 MiB segments (the smallest PostgreSQL allows) keep synthetic streams small. */
const SEG = 1 << 20;
const SEGN = BigInt(SEG);

/** Payload bytes (page headers excluded) between `from` and `to`. */
function payloadBetween(from: bigint, to: bigint): number {
  let length = Number(to - from);
  for (let page = from - (from % BLCK) + BLCK; page < to; page += BLCK) {
    length -= pageHeaderSize(page, SEG);
  }
  return length;
}

/**
 * Writes WAL as PostgreSQL lays it out: page headers (long on a segment's
 * first page) with continuation flags and lengths, MAXALIGNed records, zeros
 * (and zeroed page headers) after a switch. Remembers what it wrote.
 */
class WalBuilder {
  readonly records: ScannedRecord[] = [];
  #buffer = new Uint8Array(1 << 16);
  #length = 0;
  #previous: bigint;
  #overwriteNext = false;

  constructor(readonly startLsn: bigint, previousRecordStart: bigint) {
    assert.equal(startLsn % BLCK, 0n, "the builder starts on a page boundary");
    this.#previous = previousRecordStart;
  }

  get lsn(): bigint {
    return this.startLsn + BigInt(this.#length);
  }

  get previousRecordStart(): bigint {
    return this.#previous;
  }

  bytes(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }

  /** Appends a record; `prev` overrides its `xl_prev`. */
  record(options: { totalLength: number; rmid?: number; info?: number; prev?: bigint }) {
    const { totalLength, rmid = 10, info = 0 } = options;
    if (this.lsn % BLCK === 0n) this.#pageHeader(0, false);
    const startLsn = this.lsn;
    this.#recordBytes(recordBytes(totalLength, options.prev ?? this.#previous, rmid, info));
    let endLsn = (this.lsn + 7n) & ~7n;
    if (isSwitchRecord({ rmid, info })) endLsn = (endLsn + SEGN - 1n) / SEGN * SEGN;
    this.zerosTo(endLsn);
    const record = { startLsn, endLsn, rmid, info, totalLength };
    this.records.push(record);
    this.#previous = startLsn;
    return record;
  }

  /** Appends a record whose end is exactly `endLsn` (8-aligned). */
  recordEndingAt(endLsn: bigint) {
    const start = this.lsn % BLCK === 0n
      ? this.lsn + BigInt(pageHeaderSize(this.lsn, SEG))
      : this.lsn;
    return this.record({ totalLength: payloadBetween(start, endLsn) });
  }

  /** Writes the start of a record up to the page end, as before a crash. */
  tornRecord(totalLength: number): void {
    const bytes = recordBytes(totalLength, this.#previous, 10, 0);
    this.#recordBytes(bytes.subarray(0, Number(BLCK - (this.lsn % BLCK))));
    this.#overwriteNext = true;
  }

  zerosTo(lsn: bigint): void {
    this.#append(new Uint8Array(Number(lsn - this.lsn)));
  }

  #recordBytes(data: Uint8Array): void {
    for (let written = 0; written < data.length;) {
      if (this.lsn % BLCK === 0n) this.#pageHeader(data.length - written, written > 0);
      const length = Math.min(Number(BLCK - (this.lsn % BLCK)), data.length - written);
      this.#append(data.subarray(written, written + length));
      written += length;
    }
  }

  #pageHeader(remaining: number, continues: boolean): void {
    const long = this.lsn % SEGN === 0n;
    const header = new Uint8Array(long ? LONG_PAGE_HEADER_SIZE : SHORT_PAGE_HEADER_SIZE);
    const view = new DataView(header.buffer);
    const info = (continues ? XLP_FIRST_IS_CONTRECORD : 0) | (long ? XLP_LONG_HEADER : 0) |
      (this.#overwriteNext ? XLP_FIRST_IS_OVERWRITE_CONTRECORD : 0);
    this.#overwriteNext = false;
    view.setUint16(0, 0xd110, true);
    view.setUint16(2, info, true);
    view.setUint32(4, 1, true);
    view.setBigUint64(8, this.lsn, true);
    view.setUint32(16, remaining, true);
    if (long) {
      view.setBigUint64(24, 7_123_456_789_012_345_678n, true);
      view.setUint32(32, SEG, true);
      view.setUint32(36, XLOG_BLCKSZ, true);
    }
    this.#append(header);
  }

  #append(data: Uint8Array): void {
    while (this.#length + data.length > this.#buffer.length) {
      const bigger = new Uint8Array(this.#buffer.length * 2);
      bigger.set(this.#buffer);
      this.#buffer = bigger;
    }
    this.#buffer.set(data, this.#length);
    this.#length += data.length;
  }
}

function recordBytes(totalLength: number, prev: bigint, rmid: number, info: number): Uint8Array {
  const bytes = new Uint8Array(totalLength);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, totalLength, true);
  view.setUint32(4, 731, true);
  view.setBigUint64(8, prev, true);
  view.setUint8(16, info);
  view.setUint8(17, rmid);
  view.setUint32(20, 0xdeadbeef, true);
  for (let i = XLOG_RECORD_HEADER_SIZE; i < totalLength; i++) bytes[i] = (i % 251) + 1;
  return bytes;
}

const nextPage = (lsn: bigint) => lsn - (lsn % BLCK) + BLCK;

/**
 * A stream from 3 pages before a segment end over two segment boundaries with
 * every layout case, named by what each record exercises.
 */
function mixedStream() {
  const wal = new WalBuilder(0x2f_0000n, 0x2e_ffc8n);
  const small = wal.record({ totalLength: 50 });
  const multiPage = wal.record({ totalLength: 20_000 });
  wal.recordEndingAt(nextPage(wal.lsn) + BLCK - 16n);
  const straddlingHeader = wal.record({ totalLength: 100 });
  const endsOnPage = wal.recordEndingAt(nextPage(wal.lsn) + BLCK);
  const checkpoint = wal.record({ totalLength: 114, rmid: 0, info: XLOG_CHECKPOINT_ONLINE });
  wal.recordEndingAt(0x30_0000n - 16n);
  const crossesSegment = wal.record({ totalLength: 300 });
  const afterSegment = wal.record({ totalLength: 1_000 });
  const large = wal.recordEndingAt(0x40_0000n - 3n * BLCK + 48n);
  const xlogSwitch = wal.record({ totalLength: 24, rmid: 0, info: XLOG_SWITCH });
  const afterSwitch = wal.record({ totalLength: 64, rmid: 0, info: XLOG_CHECKPOINT_SHUTDOWN });
  const last = wal.recordEndingAt(0x40_0000n + 2n * BLCK);
  const named = {
    small,
    multiPage,
    straddlingHeader,
    endsOnPage,
    checkpoint,
    crossesSegment,
    afterSegment,
    large,
    xlogSwitch,
    afterSwitch,
    last,
  };
  return { wal, bytes: wal.bytes(), named };
}

const MIXED = mixedStream();

function scannerFor(wal: WalBuilder) {
  return new WalRecordScanner({
    endOfLastRecord: wal.startLsn,
    segmentSize: SEG,
    previousRecordStart: 0x2e_ffc8n,
  });
}

/** A seeded PRNG (mulberry32), so random chunkings are repeatable. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Feeds the mixed stream in chunks of `nextSize()` bytes and checks after every
 * push that exactly the records ending at or before the fed position were
 * reported, and that `completeLsn` is the last of their ends.
 */
function feedMixed(nextSize: () => number): ScannedRecord[] {
  const { wal, bytes } = MIXED;
  const scanner = scannerFor(wal);
  const found: ScannedRecord[] = [];
  let expected = 0;
  for (let at = 0; at < bytes.length;) {
    const length = Math.min(Math.max(1, nextSize()), bytes.length - at);
    found.push(...scanner.push(wal.startLsn + BigInt(at), bytes.subarray(at, at + length)));
    at += length;
    const fed = wal.startLsn + BigInt(at);
    while (expected < wal.records.length && wal.records[expected].endLsn <= fed) expected++;
    const complete = expected === 0 ? wal.startLsn : wal.records[expected - 1].endLsn;
    if (found.length !== expected || scanner.completeLsn !== complete || scanner.fedLsn !== fed) {
      assert.fail(
        `after ${at} bytes: ${found.length} records (want ${expected}), complete ` +
          `${scanner.completeLsn} (want ${complete}), fed ${scanner.fedLsn}`,
      );
    }
  }
  return found;
}

Deno.test("segment arithmetic and page header sizes", () => {
  assert.equal(DEFAULT_WAL_SEGMENT_SIZE, 16 * 1024 * 1024);
  assert.equal(segmentStart(parseLsn("0/1500790")), parseLsn("0/1000000"));
  assert.equal(segmentStart(parseLsn("1/0")), parseLsn("1/0"));
  assert.equal(segmentStart(parseLsn("0/2FFFFF"), SEG), parseLsn("0/200000"));
  assert.equal(segmentNumber(parseLsn("0/1500790")), 1n);
  assert.equal(segmentNumber(parseLsn("1/0")), 256n);
  assert.equal(segmentNumber(parseLsn("1/0"), SEG), 4096n);
  assert.equal(pageHeaderSize(parseLsn("0/1000000")), LONG_PAGE_HEADER_SIZE);
  assert.equal(pageHeaderSize(parseLsn("0/1000028")), LONG_PAGE_HEADER_SIZE, "any LSN of the page");
  assert.equal(pageHeaderSize(parseLsn("0/1002000")), SHORT_PAGE_HEADER_SIZE);
  assert.equal(pageHeaderSize(parseLsn("0/100000")), SHORT_PAGE_HEADER_SIZE);
  assert.equal(pageHeaderSize(parseLsn("0/100000"), SEG), LONG_PAGE_HEADER_SIZE);
});

Deno.test("a segment size must be a power of two from 1 MiB to 1 GiB", () => {
  for (const bad of [0, 1 << 19, 3 << 20, 1 << 31, 16.5, -(1 << 24)]) {
    assert.throws(() => segmentStart(0n, bad), RangeError, String(bad));
  }
  assert.equal(segmentStart(parseLsn("1/0"), 1 << 30), parseLsn("1/0"));
});

Deno.test("nextRecordStart skips the page header only on a page boundary", () => {
  assert.equal(nextRecordStart(parseLsn("0/1500790")), parseLsn("0/1500790"));
  assert.equal(nextRecordStart(parseLsn("0/1502000")), parseLsn("0/1502018"));
  assert.equal(nextRecordStart(parseLsn("0/2000000")), parseLsn("0/2000028"));
  assert.equal(nextRecordStart(parseLsn("0/100000")), parseLsn("0/100018"));
  assert.equal(nextRecordStart(parseLsn("0/100000"), SEG), parseLsn("0/100028"));
});

Deno.test("segmentFileName names segments as PostgreSQL does", () => {
  const name = (tli: number, lsn: string, size?: number) =>
    segmentFileName(tli, segmentNumber(parseLsn(lsn), size), size);
  assert.equal(name(1, "0/1500790"), "000000010000000000000001");
  assert.equal(name(1, "1/0"), "000000010000000100000000");
  assert.equal(name(1, "0/FFFFFFFF"), "0000000100000000000000FF");
  assert.equal(name(0x2a, "AB/CD123456"), "0000002A000000AB000000CD");
  assert.equal(name(1, "1/0", 1 << 30), "000000010000000100000000");
  assert.equal(name(1, "1/C0000000", 1 << 30), "000000010000000100000003");
  assert.equal(name(1, "0/300000", SEG), "000000010000000000000003");
  assert.throws(() => segmentFileName(0, 1n), RangeError);
  assert.throws(() => segmentFileName(1, -1n), RangeError);
});

Deno.test("parseSegmentFileName inverts segmentFileName and rejects other names", () => {
  for (
    const [tli, segno, size] of [[1, 1n, undefined], [7, 256n, undefined], [3, 4099n, SEG]] as const
  ) {
    const name = segmentFileName(tli, segno, size);
    assert.deepEqual(parseSegmentFileName(name, size), { timelineId: tli, segmentNumber: segno });
  }
  assert.deepEqual(parseSegmentFileName("000000010000000100000003", 1 << 30), {
    timelineId: 1,
    segmentNumber: 7n,
  });
  for (
    const bad of [
      "00000001000000000000000a",
      "000000010000000000000001.partial",
      "00000002.history",
      "00000001000000000000001",
      "000000000000000000000001",
      "000000010000000000000100",
    ]
  ) {
    assert.equal(parseSegmentFileName(bad), null, bad);
  }
  assert.equal(parseSegmentFileName("000000010000000000000004", 1 << 30), null);
});

Deno.test("record kinds: checkpoints and switches are XLOG records by info", () => {
  assert.ok(isCheckpointRecord({ rmid: 0, info: XLOG_CHECKPOINT_SHUTDOWN }));
  assert.ok(isCheckpointRecord({ rmid: 0, info: XLOG_CHECKPOINT_ONLINE | 0x0f }));
  assert.ok(!isCheckpointRecord({ rmid: 0, info: XLOG_SWITCH }));
  assert.ok(!isCheckpointRecord({ rmid: 1, info: 0 }));
  assert.ok(isSwitchRecord({ rmid: 0, info: XLOG_SWITCH }));
  assert.ok(!isSwitchRecord({ rmid: 10, info: XLOG_SWITCH }));
});

Deno.test("the synthetic stream has every layout case", () => {
  const { small, straddlingHeader, endsOnPage, checkpoint, crossesSegment } = MIXED.named;
  const { multiPage, large, xlogSwitch, afterSwitch, last } = MIXED.named;
  assert.equal(small.startLsn, 0x2f_0018n);
  assert.equal(small.endLsn, 0x2f_0018n + 56n, "MAXALIGNed");
  assert.ok(multiPage.endLsn - multiPage.startLsn > 2n * BLCK, "spans 3 pages");
  assert.equal(straddlingHeader.startLsn % BLCK, BLCK - 16n, "header split by a page");
  assert.equal(endsOnPage.endLsn % BLCK, 0n);
  assert.equal(checkpoint.startLsn, endsOnPage.endLsn + 24n);
  assert.equal(crossesSegment.startLsn, 0x30_0000n - 16n, "header split by a segment");
  assert.equal(crossesSegment.endLsn, 0x30_0000n + 40n + 288n, "284 bytes after the header");
  assert.ok(large.endLsn - large.startLsn > SEGN * 9n / 10n);
  assert.equal(xlogSwitch.endLsn, 0x40_0000n);
  assert.equal(afterSwitch.startLsn, 0x40_0028n);
  assert.equal(last.endLsn, 0x40_4000n);
  assert.equal(MIXED.bytes.length, Number(last.endLsn - MIXED.wal.startLsn));
});

Deno.test("scanRecords finds every record boundary of a whole buffer", () => {
  const { wal, bytes, named } = MIXED;
  const result = scanRecords(bytes, wal.startLsn, wal.startLsn, SEG, {
    previousRecordStart: 0x2e_ffc8n,
  });
  assert.deepEqual(result.records, wal.records);
  assert.equal(result.completeLsn, named.last.endLsn);
  assert.equal(result.stopped, false);
  assert.deepEqual(result.records.filter(isCheckpointRecord), [
    named.checkpoint,
    named.afterSwitch,
  ]);
});

Deno.test("byte-by-byte and random chunkings give the same records", () => {
  const whole = feedMixed(() => MIXED.bytes.length);
  assert.deepEqual(whole, MIXED.wal.records);
  assert.deepEqual(feedMixed(() => 1), whole);
  for (const seed of [1, 42, 2024]) {
    const random = prng(seed);
    const sizes = () =>
      random() < 0.5 ? 1 + Math.floor(random() * 48) : Math.floor(random() * 30_000);
    assert.deepEqual(feedMixed(sizes), whole, `seed ${seed}`);
  }
});

Deno.test("scanning can begin at any record end or record start", () => {
  const { wal, bytes } = MIXED;
  for (const [index, record] of wal.records.entries()) {
    const rest = wal.records.slice(index + 1);
    const fromEnd = scanRecords(bytes, wal.startLsn, record.endLsn, SEG, {
      previousRecordStart: record.startLsn,
    });
    assert.deepEqual(fromEnd.records, rest, `after record ${index}`);
    const scanner = WalRecordScanner.atRecordStart(record.startLsn, { segmentSize: SEG });
    assert.equal(scanner.completeLsn, record.startLsn);
    const skip = Number(record.startLsn - wal.startLsn);
    assert.deepEqual(scanner.push(record.startLsn, bytes.subarray(skip)), [record, ...rest]);
  }
});

Deno.test("a scanner rejects starting positions where no record ends or starts", () => {
  const make = (lsn: bigint) => () => new WalRecordScanner({ endOfLastRecord: lsn });
  assert.throws(make(parseLsn("0/1500794")), /no record can end here at 0\/1500794/);
  assert.throws(make(parseLsn("0/1502010")), WalFormatError, "inside a short header");
  assert.throws(make(parseLsn("0/2000020")), WalFormatError, "inside a long header");
  make(parseLsn("0/1502018"))();
  make(parseLsn("0/2000000"))();
  assert.throws(() => WalRecordScanner.atRecordStart(parseLsn("0/1502000")), /page boundary/);
});

Deno.test("push rejects bytes that do not continue the stream", () => {
  const scanner = scannerFor(MIXED.wal);
  scanner.push(MIXED.wal.startLsn, MIXED.bytes.subarray(0, 100));
  const fed = scanner.fedLsn;
  assert.throws(() => scanner.push(fed + 8n, new Uint8Array(8)), /not contiguous.*at 0\/2F006C/);
  assert.throws(() => scanner.push(fed - 8n, new Uint8Array(8)), WalFormatError);
  assert.equal(scanner.fedLsn, fed);
});

/** Scans the mixed stream with `edit` applied to a copy of its bytes. */
function scanEdited(
  edit: (bytes: Uint8Array, view: DataView, at: (lsn: bigint) => number) => void,
) {
  const bytes = MIXED.bytes.slice();
  edit(bytes, new DataView(bytes.buffer), (lsn) => Number(lsn - MIXED.wal.startLsn));
  return () => scanRecords(bytes, MIXED.wal.startLsn, MIXED.wal.startLsn, SEG);
}

Deno.test("a wrong page address is an error naming the page", () => {
  const page = nextPage(MIXED.named.small.startLsn);
  const scan = scanEdited((_, view, at) => view.setBigUint64(at(page) + 8, page + BLCK, true));
  assert.throws(scan, (error: unknown) => {
    assert.ok(error instanceof WalFormatError);
    assert.match(error.message, /wrong page address 0\/2F4000 in page header at 0\/2F2000/);
    assert.equal(error.lsn, page);
    return true;
  });
});

Deno.test("a zero or too small record length is an error", () => {
  const start = MIXED.named.checkpoint.startLsn;
  assert.throws(
    scanEdited((_, view, at) => view.setUint32(at(start), 0, true)),
    new RegExp(`invalid record length 0 at 0/${start.toString(16).toUpperCase()}`),
  );
  assert.throws(scanEdited((_, view, at) => view.setUint32(at(start), 23, true)), /length 23/);
});

Deno.test("an xl_prev that is not the previous record's start is an error", () => {
  const { checkpoint, endsOnPage } = MIXED.named;
  const scan = scanEdited((_, view, at) =>
    view.setBigUint64(at(checkpoint.startLsn) + 8, 8n, true)
  );
  const wanted = endsOnPage.startLsn.toString(16).toUpperCase();
  assert.throws(scan, new RegExp(`xl_prev 0/8 is not the previous record's start 0/${wanted}`));
  const split = MIXED.named.straddlingHeader.startLsn;
  assert.throws(scanEdited((_, view, at) => view.setBigUint64(at(split) + 8, 8n, true)), /xl_prev/);
});

Deno.test("continuation pages must carry the flag and remaining length of the record", () => {
  const page = nextPage(MIXED.named.multiPage.startLsn);
  assert.throws(
    scanEdited((_, view, at) => view.setUint32(at(page) + 16, 1, true)),
    /should continue the record at 0\/2F0050 with \d+ bytes but has xlp_info 0x1, xlp_rem_len 1/,
  );
  assert.throws(scanEdited((_, view, at) => view.setUint16(at(page) + 2, 0, true)), /xlp_info 0x0/);
  const fresh = MIXED.named.checkpoint.startLsn - 24n;
  assert.throws(
    scanEdited((_, view, at) => view.setUint16(at(fresh) + 2, XLP_FIRST_IS_CONTRECORD, true)),
    /page continues a record where a new record should start/,
  );
});

Deno.test("a long page header must match the segment and page size", () => {
  assert.throws(
    scanEdited((_, view, at) => view.setUint32(at(0x30_0000n) + 32, SEG * 2, true)),
    /segment size 2097152 and page size 8192, expected 1048576 and 8192 at 0\/300000/,
  );
  const { wal, bytes } = MIXED;
  assert.throws(() => scanRecords(bytes, wal.startLsn, wal.startLsn, SEG * 2), WalFormatError);
});

Deno.test("a page flagged as overwriting a torn record restarts at its first record", () => {
  const wal = new WalBuilder(0x10_0000n, 0n);
  const before = wal.record({ totalLength: 7_000 });
  wal.tornRecord(5_000);
  const after = wal.record({ totalLength: 80 });
  assert.equal(after.startLsn, 0x10_2018n);
  const { records, completeLsn } = scanRecords(wal.bytes(), wal.startLsn, wal.startLsn, SEG, {
    previousRecordStart: 0n,
  });
  assert.deepEqual(records, [before, after]);
  assert.equal(completeLsn, after.endLsn);
});

Deno.test("stopAtZeroLength ends the scan where WAL was never written", () => {
  const { wal, bytes, named } = MIXED;
  const options = { stopAtZeroLength: true };
  const cut = (end: bigint, zeros: bigint) => {
    const out = new Uint8Array(Number(end - wal.startLsn + zeros));
    out.set(bytes.subarray(0, Number(end - wal.startLsn)));
    return scanRecords(out, wal.startLsn, wal.startLsn, SEG, options);
  };
  const midPage = cut(named.small.endLsn, 64n);
  assert.deepEqual(midPage.records, [named.small]);
  assert.equal(midPage.completeLsn, named.small.endLsn);
  assert.equal(midPage.stopped, true);
  const atPage = cut(named.endsOnPage.endLsn, BLCK);
  assert.equal(atPage.completeLsn, named.endsOnPage.endLsn, "a zeroed page header");
  assert.equal(atPage.stopped, true);
  const torn = cut(nextPage(named.multiPage.startLsn), BLCK);
  assert.equal(torn.completeLsn, named.small.endLsn, "a record cut by a zeroed page");
  assert.deepEqual(torn.records, [named.small]);
  const scanner = new WalRecordScanner({ endOfLastRecord: named.small.endLsn, ...options });
  assert.deepEqual(scanner.push(named.small.endLsn, new Uint8Array(16)), []);
  assert.equal(scanner.stopped, true);
  assert.deepEqual(scanner.push(named.small.endLsn + 16n, bytes), [], "ignored once stopped");
  assert.equal(scanner.fedLsn, named.small.endLsn + 16n + BigInt(bytes.length));
  assert.equal(scanner.completeLsn, named.small.endLsn);
  const whole = scanRecords(bytes, wal.startLsn, wal.startLsn, SEG, options);
  assert.deepEqual(whole.records, wal.records);
  assert.equal(whole.stopped, false, "a switch's zeroed padding is not the end");
  const zeros = new Uint8Array(2 * XLOG_BLCKSZ);
  const [recordEnd, pageEnd] = [named.small.endLsn, named.endsOnPage.endLsn];
  assert.throws(() => scanRecords(zeros, recordEnd, recordEnd, SEG), /invalid record length 0/);
  assert.throws(() => scanRecords(zeros, pageEnd, pageEnd, SEG), /wrong page address 0\/0/);
});

Deno.test("scanRecords needs its starting point inside the buffer", () => {
  const { wal, bytes } = MIXED;
  assert.throws(() => scanRecords(bytes, wal.startLsn, wal.startLsn - BLCK, SEG), WalFormatError);
  const beyond = wal.startLsn + BigInt(bytes.length) + BLCK;
  assert.throws(() => scanRecords(bytes, wal.startLsn, beyond, SEG), /outside the/);
  const end = wal.startLsn + BigInt(bytes.length);
  assert.deepEqual(scanRecords(bytes, wal.startLsn, end, SEG).completeLsn, end);
});
