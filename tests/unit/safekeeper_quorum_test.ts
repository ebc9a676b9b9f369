import assert from "node:assert/strict";
import { parseLsn } from "../../src/api/lsn.ts";
import {
  decideSynced,
  explainNotSynced,
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

Deno.test("explainNotSynced names the safekeepers and what is wrong", () => {
  const [sk1, sk2] = ["127.0.0.1:1", "127.0.0.1:2"];
  assert.equal(
    explainNotSynced([{ address: sk1, status: at(A) }], [
      { address: sk2, error: `safekeeper ${sk2} did not answer TIMELINE_STATUS within 100 ms` },
    ], 3),
    "only 1 of 3 safekeepers answered TIMELINE_STATUS (a quorum is 2): " +
      `safekeeper ${sk2} did not answer TIMELINE_STATUS within 100 ms`,
  );
  assert.equal(
    explainNotSynced([], [{ address: sk1, error: "tenantid is required" }], 1),
    `only 0 of 1 safekeepers answered TIMELINE_STATUS (a quorum is 1): safekeeper ${sk1}: ` +
      "tenantid is required",
  );
  assert.equal(
    explainNotSynced([{ address: sk1, status: at(A) }, { address: sk2, status: null }], [], 3),
    `safekeeper ${sk2} does not know the timeline`,
  );
  assert.equal(
    explainNotSynced(
      [{ address: sk1, status: at(B, A) }, { address: sk2, status: at(B, A) }],
      [],
      3,
    ),
    `safekeeper ${sk1} has commit_lsn 0/1500708 behind flush_lsn 0/16B9188`,
  );
  assert.equal(
    explainNotSynced([{ address: sk1, status: at(A) }, { address: sk2, status: at(B) }], [], 3),
    `safekeepers disagree: ${sk1} at 0/1500708, ${sk2} at 0/16B9188`,
  );
});

Deno.test("parseSafekeeperAddress splits host:port", () => {
  assert.deepEqual(parseSafekeeperAddress("127.0.0.1:5454"), { host: "127.0.0.1", port: 5454 });
  assert.deepEqual(parseSafekeeperAddress("sk-1.local:1"), { host: "sk-1.local", port: 1 });
  assert.deepEqual(parseSafekeeperAddress("[::1]:7676"), { host: "::1", port: 7676 });
  for (const bad of ["127.0.0.1", "host:", ":5454", "host:70000", "host:0"]) {
    assert.throws(() => parseSafekeeperAddress(bad), /invalid safekeeper address/, bad);
  }
});
