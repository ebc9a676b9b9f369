/**
 * `src/compute/promote.ts`'s `Promoter` when the replica's Postgres cannot be
 * reached: a failed prewarm is only a warning, then waiting for the replay
 * fails, and the outcome says so without installing the new spec. (The
 * refusals are unit-tested; whole promotions are in `promote_test.ts`.)
 */

import assert from "node:assert/strict";
import { Promoter } from "../../src/compute/promote.ts";
import { DEAD_CONNSTR, testParsedSpec } from "../_support/specs.ts";

Deno.test("promotion: an unreachable Postgres fails it after a failed prewarm, nothing installed", async () => {
  let installs = 0;
  const promoter = new Promoter({
    currentSpec: () => testParsedSpec({ mode: "Replica" }),
    connstr: DEAD_CONNSTR,
    prewarmState: () => ({ status: "failed", error: "no LFC here" }),
    installPromotedSpec: () => {
      installs++;
      return Promise.resolve();
    },
    replay: { retries: 0, retryIntervalMs: 1 },
  });
  const unreachable = await promoter.promote({
    spec: testParsedSpec().spec,
    wal_flush_lsn: 0x100n,
  });
  assert.equal(unreachable.status, "failed");
  assert.match((unreachable as { error: string }).error, /^connecting to postgres: /);
  assert.equal(installs, 0);
});
