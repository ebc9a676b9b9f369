/**
 * The WAL scanner against WAL PostgreSQL really wrote: `initdb` a throwaway
 * cluster, read the segment holding the latest checkpoint (as `pg_control`
 * records it) and scan it, from the segment start and from the checkpoint, in
 * one piece and in random chunks. Nothing here is synthetic, so a layout rule
 * the unit tests' builder gets wrong in the same way as the scanner shows here.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { pgFileOwner, runAsPgUser } from "../../harness/_processes.ts";
import { readControlFile } from "../../harness/pg_control.ts";
import { locatePostgresOnce } from "../../harness/pg_locate.ts";
import {
  DEFAULT_WAL_SEGMENT_SIZE,
  LONG_PAGE_HEADER_SIZE,
  nextRecordStart,
  segmentFileName,
  segmentNumber,
  segmentStart,
  XLOG_BLCKSZ,
  XLOG_CHECKPOINT_SHUTDOWN,
} from "../../harness/wal_format.ts";
import {
  isCheckpointRecord,
  type ScannedRecord,
  scanRecords,
  WalRecordScanner,
} from "../../harness/wal_records.ts";

const PG_BIN = (await locatePostgresOnce()).binDir;

/** Runs a Postgres program as the user Postgres runs as; returns its output. */
async function runPg(program: string, args: string[]): Promise<string> {
  return (await runAsPgUser(join(PG_BIN, program), args)).output;
}

/** A seeded PRNG (mulberry32), so the random chunking is repeatable. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("the scanner reads a real initdb segment up to its end of WAL", async () => {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "wal-format-real-" });
  try {
    const owner = await pgFileOwner();
    if (owner) await Deno.chown(dir, owner.uid, owner.gid);
    const data = join(dir, "data");
    await runPg("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
    const control = await readControlFile(data);
    assert.equal(control.state, "shut down");
    const checkpointLsn = control.checkpointLsn;
    const segmentSize = DEFAULT_WAL_SEGMENT_SIZE; // initdb's default; the length is checked below
    const timeline = control.timeline;
    const start = segmentStart(checkpointLsn, segmentSize);
    const name = segmentFileName(timeline, segmentNumber(checkpointLsn, segmentSize), segmentSize);
    const segment = await Deno.readFile(join(data, "pg_wal", name));
    assert.equal(segment.length, segmentSize);
    const options = { stopAtZeroLength: true };

    const full = scanRecords(segment, start, start, segmentSize, options);
    assert.equal(full.stopped, true, "WAL ends inside the segment");
    assert.equal(full.records[0].startLsn, start + BigInt(LONG_PAGE_HEADER_SIZE));
    const page = (lsn: bigint) => lsn / BigInt(XLOG_BLCKSZ);
    const spanning = full.records.filter((r) => page(r.startLsn) !== page(r.endLsn - 1n));
    assert.ok(spanning.length > 10, `only ${spanning.length} records cross a page`);
    for (const [i, record] of full.records.slice(1).entries()) {
      assert.equal(record.startLsn, nextRecordStart(full.records[i].endLsn, segmentSize));
    }
    const checkpoint = full.records.find((r) => r.startLsn === checkpointLsn);
    assert.ok(checkpoint, "a full scan finds the checkpoint record");
    assert.ok(isCheckpointRecord(checkpoint));
    assert.equal(checkpoint.info & 0xf0, XLOG_CHECKPOINT_SHUTDOWN, "initdb shuts down cleanly");
    assert.equal(full.completeLsn, checkpoint.endLsn, "the shutdown checkpoint is the last record");

    const fromCheckpoint = WalRecordScanner.atRecordStart(checkpointLsn, {
      segmentSize,
      ...options,
    });
    const tail = fromCheckpoint.push(
      checkpointLsn,
      segment.subarray(Number(checkpointLsn - start)),
    );
    assert.deepEqual(tail, [checkpoint]);
    assert.equal(fromCheckpoint.completeLsn, full.completeLsn);
    assert.equal(fromCheckpoint.stopped, true);

    const chunked = new WalRecordScanner({ endOfLastRecord: start, segmentSize, ...options });
    const random = prng(15);
    const found: ScannedRecord[] = [];
    for (let at = 0; at < segment.length;) {
      const length = 1 + Math.floor(random() * 3 * XLOG_BLCKSZ);
      found.push(...chunked.push(start + BigInt(at), segment.subarray(at, at + length)));
      at += length;
    }
    assert.deepEqual(found, full.records);
    assert.equal(chunked.completeLsn, full.completeLsn);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
