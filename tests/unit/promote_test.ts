/**
 * The refusals of `src/compute/promote.ts`'s `Promoter`, which come before it
 * touches Postgres: a primary, a prewarm that has not ended, no spec, a spec
 * without safekeepers; concurrent and later calls share one outcome; the stop
 * at shutdown waits for a running promotion (replay faked) and refuses a new one. Reaching
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

Deno.test("promotion: stop waits for the running one; after it none starts", async () => {
  const replayed = Promise.withResolvers<number>();
  const steps: string[] = [];
  const promoter = new Promoter({
    currentSpec: () => testParsedSpec({ mode: "Replica" }),
    connstr: DEAD_CONNSTR,
    prewarmState: () => ({ status: "skipped" }),
    waitForReplay: () => replayed.promise,
    leaveRecovery: () => {
      steps.push("left recovery");
      return Promise.resolve();
    },
    installPromotedSpec: () => {
      steps.push("installed");
      return Promise.resolve();
    },
  });
  const config = { spec: testParsedSpec().spec, wal_flush_lsn: 0x100n };
  const outcome = promoter.promote(config);
  const stopped = promoter.stop().then(() => steps.push("stopped"));
  // One turn of the event loop: a stop that did not wait for the promotion would end in it.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(steps, []);
  replayed.resolve(5);
  await stopped;
  assert.deepEqual(steps, ["left recovery", "installed", "stopped"]);
  assert.equal((await outcome).status, "completed");
  assert.equal(await promoter.promote(config), await outcome, "later calls get the same result");

  const late = new Promoter({
    currentSpec: () => testParsedSpec({ mode: "Replica" }),
    connstr: DEAD_CONNSTR,
    prewarmState: () => ({ status: "skipped" }),
    waitForReplay: () => Promise.reject(new Error("must not run")),
    installPromotedSpec: () => Promise.reject(new Error("must not run")),
  });
  await late.stop();
  assert.deepEqual(await late.promote(config), {
    status: "failed",
    error: "promotion: the compute is shutting down",
  });
});
