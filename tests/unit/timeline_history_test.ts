/**
 * The emulated storage's history rules, without any storage: what a
 * safekeeper's copy may keep across terms, the quorum commit LSN, when an
 * announcement is the same primary again, and which base images leases keep.
 */

import assert from "node:assert/strict";
import {
  canonicalEnd,
  imagesToKeep,
  isSamePrimary,
  quorumLsn,
  type Term,
} from "../../harness/timeline_history.ts";

const source = { host: "127.0.0.1", port: 5432, user: "cloud_admin" };

function term(number: number, startLsn: bigint, instanceId?: string): Term {
  return {
    term: number,
    startLsn,
    source: number === 0 ? null : { ...source, instanceId },
    names: new Map(),
  };
}

Deno.test("canonicalEnd: WAL of an older term past the next term's start is cut off", () => {
  const terms = [term(0, 100n), term(1, 100n), term(2, 500n), term(3, 900n)];
  // Term 1's copy went past where term 2 began: only up to 500 is the timeline's.
  assert.equal(canonicalEnd(terms, { term: 1, flushLsn: 700n }), 500n);
  // Behind the next term's start: all of it agrees.
  assert.equal(canonicalEnd(terms, { term: 1, flushLsn: 400n }), 400n);
  // The first later term decides, not the newest one.
  assert.equal(canonicalEnd(terms, { term: 1, flushLsn: 1000n }), 500n);
  // The newest term's copy is the history itself.
  assert.equal(canonicalEnd(terms, { term: 3, flushLsn: 1200n }), 1200n);
  // A copy that never left term 0 ends where term 1 began at the latest.
  assert.equal(canonicalEnd(terms, { term: 0, flushLsn: 300n }), 100n);
});

Deno.test("quorumLsn: the highest LSN a majority reaches", () => {
  assert.equal(quorumLsn([300n, 100n, 200n], 0n), 200n);
  assert.equal(quorumLsn([300n, 300n, 100n], 0n), 300n);
  assert.equal(quorumLsn([500n, 100n, 200n, 400n, 300n], 0n), 300n);
  assert.equal(quorumLsn([400n, 100n], 0n), 100n, "two need both");
  assert.equal(quorumLsn([700n], 0n), 700n);
  assert.equal(quorumLsn([], 42n), 42n);
});

Deno.test("isSamePrimary: an instance id decides; without one, address and start LSN do", () => {
  assert.equal(isSamePrimary(term(0, 100n), { ...source, startLsn: 100n }), false);
  assert.equal(
    isSamePrimary(term(1, 100n, "a@0/64"), { ...source, startLsn: 100n, instanceId: "a@0/64" }),
    true,
  );
  assert.equal(
    isSamePrimary(term(1, 100n, "a@0/64"), { ...source, startLsn: 100n, instanceId: "b@0/64" }),
    false,
  );
  assert.equal(isSamePrimary(term(1, 100n), { ...source, startLsn: 100n }), true);
  assert.equal(isSamePrimary(term(1, 100n), { ...source, startLsn: 108n }), false);
  assert.equal(isSamePrimary(term(1, 100n), { ...source, port: 5433, startLsn: 100n }), false);
  assert.equal(isSamePrimary(term(1, 100n, "a"), { ...source, startLsn: 100n }), false);
});

Deno.test("imagesToKeep: the newest, and each older one a lease falls into", () => {
  const images = [{ lsn: 100n }, { lsn: 500n }, { lsn: 900n }];
  assert.deepEqual(imagesToKeep(images, []), [{ lsn: 900n }]);
  assert.deepEqual(imagesToKeep(images, [150n]), [{ lsn: 100n }, { lsn: 900n }]);
  assert.deepEqual(imagesToKeep(images, [500n, 950n]), [{ lsn: 500n }, { lsn: 900n }]);
  assert.deepEqual(imagesToKeep(images, [499n, 899n]), images);
  assert.deepEqual(imagesToKeep(images, [50n]), [{ lsn: 900n }], "before every image");
});
