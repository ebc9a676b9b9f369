import assert from "node:assert/strict";
import { parseLsn } from "../../src/api/lsn.ts";
import {
  decideSynced,
  parseSafekeeperAddress,
  quorumSize,
  type TimelineStatus,
} from "../../src/storage/safekeepers.ts";

const A = parseLsn("0/1500708");
const B = parseLsn("0/16B9188");
const at = (flush: bigint, commit = flush): TimelineStatus => ({
  flushLsn: flush,
  commitLsn: commit,
});

Deno.test("quorumSize is floor(n/2)+1", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(quorumSize), [1, 1, 2, 2, 3, 3]);
});

Deno.test("decideSynced returns the LSN a quorum agrees on", () => {
  assert.equal(decideSynced([at(A), at(A)], 3), A);
  assert.equal(decideSynced([at(A), at(A), at(A)], 3), A);
  assert.equal(decideSynced([at(B)], 1), B);
});

Deno.test("decideSynced needs at least a quorum of replies", () => {
  assert.equal(decideSynced([at(A)], 3), null);
  assert.equal(decideSynced([at(A), at(A)], 4), null);
  assert.equal(decideSynced([], 0), null);
});

Deno.test("decideSynced: a reply without the timeline means not synced", () => {
  assert.equal(decideSynced([at(A), null], 3), null);
  assert.equal(decideSynced([null, null], 3), null);
});

Deno.test("decideSynced: disagreeing or lagging safekeepers mean not synced", () => {
  assert.equal(decideSynced([at(A), at(B)], 3), null, "different flush and commit");
  assert.equal(decideSynced([at(B, A), at(B, A)], 3), null, "commit behind flush");
  assert.equal(decideSynced([at(A, A), at(B, A)], 3), null, "same commit, different flush");
  assert.equal(decideSynced([at(A, A), at(A, B)], 3), null, "same flush, different commit");
});

Deno.test("parseSafekeeperAddress splits host:port", () => {
  assert.deepEqual(parseSafekeeperAddress("127.0.0.1:5454"), { host: "127.0.0.1", port: 5454 });
  assert.deepEqual(parseSafekeeperAddress("sk-1.local:1"), { host: "sk-1.local", port: 1 });
  assert.deepEqual(parseSafekeeperAddress("[::1]:7676"), { host: "::1", port: 7676 });
  for (const bad of ["127.0.0.1", "host:", ":5454", "host:70000", "host:0"]) {
    assert.throws(() => parseSafekeeperAddress(bad), /invalid safekeeper address/, bad);
  }
});
