/**
 * @module
 * The failover benchmark's pure decisions: the WAL sizes per run, the
 * repetitions per size, the `INSERT` batch that writes the next WAL, the
 * phase of the probe cycle each kill lands in, and the check that Postgres
 * names the pageserver a tenant moved to.
 */

import assert from "node:assert/strict";
import {
  batchRows,
  MIB,
  mibBetween,
  namesPageserver,
  probePhaseOffsetMs,
  restartRepetitions,
  WAL_BYTES_PER_ROW,
  walSizesMiB,
} from "../bench/_failover_plan.ts";

Deno.test("a full run restarts with 64 and 512 MiB of WAL, a quick one with 16 and 64", () => {
  assert.deepEqual(walSizesMiB(false), [64, 512]);
  assert.deepEqual(walSizesMiB(true), [8, 16]);
});

Deno.test("512 MiB and more is repeated at most 3 times, smaller sizes as often as asked", () => {
  assert.equal(restartRepetitions(512, 5), 3);
  assert.equal(restartRepetitions(1024, 2), 2);
  assert.equal(restartRepetitions(64, 5), 5);
  assert.equal(restartRepetitions(16, 15), 15);
  assert.equal(restartRepetitions(64, 0), 1);
  assert.equal(restartRepetitions(512, 2.7), 2);
});

Deno.test("a batch covers what is left, between 1,000 and 50,000 rows", () => {
  assert.equal(batchRows(0), 0);
  assert.equal(batchRows(-5n), 0);
  assert.equal(batchRows(1), 1_000);
  assert.equal(batchRows(2_000 * WAL_BYTES_PER_ROW), 2_000);
  assert.equal(batchRows(2_000 * WAL_BYTES_PER_ROW + 1), 2_001);
  assert.equal(batchRows(BigInt(512 * MIB)), 50_000);
});

Deno.test("distances between LSNs are in MiB, negative backwards", () => {
  assert.equal(mibBetween(0x1000000n, 0x5000000n), 64);
  assert.equal(mibBetween(0x5000000n, 0x1000000n), -64);
  assert.equal(mibBetween(0n, BigInt(MIB / 2)), 0.5);
});

Deno.test("the pageserver a compute uses is shard 0 of its connstring", () => {
  const one = "postgresql://no_user@127.0.0.1:6400";
  const two = "postgresql://no_user@127.0.0.1:6401";
  assert.ok(namesPageserver(one, one));
  assert.ok(namesPageserver(`${one},${two}`, one));
  assert.ok(!namesPageserver(`${two},${one}`, one));
  assert.ok(!namesPageserver(`${one}0`, one));
  assert.ok(!namesPageserver("", one));
  assert.ok(!namesPageserver(null, one));
  assert.ok(!namesPageserver(undefined, one));
});

Deno.test("the kills of a run sample the probe cycle in equal slices", () => {
  assert.deepEqual([1, 2, 3, 4].map((rep) => probePhaseOffsetMs(rep, 4, 100)), [
    12.5,
    37.5,
    62.5,
    87.5,
  ]);
  assert.equal(probePhaseOffsetMs(1, 1, 100), 50);
  assert.equal(probePhaseOffsetMs(5, 4, 100), 12.5);
  assert.equal(probePhaseOffsetMs(1, 0, 100), 50);
});
