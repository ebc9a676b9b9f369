/**
 * The refusals of `src/compute/promote.ts`'s `Promoter`, which come before it
 * touches Postgres: a primary, a prewarm that has not ended, no spec, a spec
 * without safekeepers; concurrent and later calls share one outcome. Reaching
 * (or failing to reach) Postgres is in `tests/integration/promoter_test.ts`,
 * a whole promotion in `tests/integration/promote_test.ts`.
 */

import assert from "node:assert/strict";
import type { ParsedSpec } from "../../src/api/parsed_spec.ts";
import type { Lfc } from "../../src/compute/lfc.ts";
import { Promoter } from "../../src/compute/promote.ts";
import { DEAD_CONNSTR, testParsedSpec } from "../_support/specs.ts";

Deno.test("promotion: replica only, prewarm must have ended, one result for every call", async () => {
  let spec: ParsedSpec | null = testParsedSpec();
  let prewarm: ReturnType<Lfc["prewarmState"]> = { status: "not_prewarmed" };
  let installs = 0;
  const promoter = () =>
    new Promoter({
      currentSpec: () => spec,
      connstr: DEAD_CONNSTR,
      prewarmState: () => prewarm,
      installPromotedSpec: () => {
        installs++;
        return Promise.resolve();
      },
      replay: { retries: 0, retryIntervalMs: 1 },
    });
  const config = { spec: testParsedSpec().spec, wal_flush_lsn: 0x100n };

  const onPrimary = promoter();
  const first = onPrimary.promote(config);
  const second = onPrimary.promote(config);
  assert.equal(first, second, "concurrent calls share one promotion");
  assert.deepEqual(await first, {
    status: "failed",
    error: 'compute mode "primary" is not replica',
  });
  spec = testParsedSpec({ mode: "Replica" });
  assert.deepEqual(await onPrimary.promote(config), await first, "later calls get the same result");

  assert.deepEqual(await promoter().promote(config), {
    status: "failed",
    error: "compute NotPrewarmed",
  });
  prewarm = { status: "prewarming" };
  assert.deepEqual(await promoter().promote(config), {
    status: "failed",
    error: "compute Prewarming",
  });
  spec = null;
  assert.deepEqual(await promoter().promote(config), {
    status: "failed",
    error: "the compute has no spec yet",
  });
  assert.equal(installs, 0);

  assert.throws(
    () => promoter().promote({ ...config, spec: { ...config.spec, safekeeper_connstrings: [] } }),
    /safekeeper_connstrings is empty|safekeeper connstrings should be provided/,
  );
});
