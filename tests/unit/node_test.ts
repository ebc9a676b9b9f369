/**
 * `src/compute/node.ts` without Postgres: a compute that is terminated before
 * any spec arrived. `run()` owns the services the routes use: before it
 * returns it has stopped them and waited for their work (a promotion whose
 * replay wait is faked and held).
 */

import assert from "node:assert/strict";
import type { ComputeConfig } from "../../src/api/config.ts";
import type { PromoteState } from "../../src/api/promote.ts";
import { ComputeNode } from "../../src/compute/node.ts";
import { Promoter } from "../../src/compute/promote.ts";
import { createComputeServices } from "../../src/compute/services.ts";
import type { NodeSettings } from "../../src/compute/settings.ts";
import { DEAD_CONNSTR, testParsedSpec } from "../_support/specs.ts";

const SETTINGS: NodeSettings = {
  pgbin: "/nonexistent/bin/postgres",
  pgdata: "/nonexistent/pgdata",
  connstr: DEAD_CONNSTR,
  privilegedRoleName: "neon_superuser",
  internalHttpPort: 3081,
  exitDelayMs: 0,
  basebackupRetries: 0,
  computeId: "unit",
};

const EMPTY: ComputeConfig = { spec: null, compute_ctl_config: { jwks: { keys: [] } } };

Deno.test("run() stops the services and waits for their work before it returns", async () => {
  const replayed = Promise.withResolvers<number>();
  const stopping = Promise.withResolvers<void>();
  let stopCalled = false;
  class WatchedPromoter extends Promoter {
    override stop(): Promise<void> {
      stopCalled = true;
      stopping.resolve();
      return super.stop();
    }
  }
  const node = new ComputeNode(SETTINGS, EMPTY, {
    exitProcess: () => assert.fail("the node must not end the process"),
    createServices: (compute) => ({
      ...createComputeServices(compute),
      promoter: new WatchedPromoter({
        currentSpec: () => testParsedSpec({ mode: "Replica" }),
        connstr: DEAD_CONNSTR,
        prewarmState: () => ({ status: "skipped" }),
        waitForReplay: () => replayed.promise,
        leaveRecovery: () => Promise.resolve(),
        installPromotedSpec: () => Promise.resolve(),
      }),
    }),
  });
  const events: string[] = [];
  const promotion = node.services.promoter.promote({
    spec: testParsedSpec().spec,
    wal_flush_lsn: 0x100n,
  }).then((state: PromoteState) => {
    events.push(`promotion ${state.status}`);
  });
  const running = node.run().then((code) => {
    events.push("run ended");
    return code;
  });

  const terminated = await node.terminate("fast");
  assert.deepEqual(terminated, { body: { lsn: null }, alreadyTerminated: false });
  await Promise.race([stopping.promise, running]);
  assert.ok(stopCalled, "run() ended without stopping its services");
  // One turn of the event loop: a run() that did not wait for the promotion would end in it.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(events, []);

  replayed.resolve(0);
  assert.equal(await running, 0);
  await promotion;
  assert.deepEqual(events, ["promotion completed", "run ended"]);
  assert.throws(() => node.services.lfc.startPrewarm(), /the compute is shutting down/);
});
