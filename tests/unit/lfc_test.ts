/**
 * The parts of `src/compute/lfc.ts` that need no service: where the LFC state
 * lives; prewarms that fail before reaching endpoint storage (no spec, no
 * address, the `compute-prewarm` failpoint); the stop at shutdown, which
 * cancels a running prewarm and waits for it. Prewarm and offload against a
 * fake endpoint storage are in `tests/integration/lfc_test.ts`.
 */

import assert from "node:assert/strict";
import { TaskGroupClosedError } from "../../src/_async.ts";
import type { ParsedSpec } from "../../src/api/parsed_spec.ts";
import { FailpointRegistry } from "../../src/compute/failpoints.ts";
import { Lfc, lfcStateLocation } from "../../src/compute/lfc.ts";
import { DEAD_CONNSTR, TEST_TENANT, TEST_TIMELINE, testParsedSpec } from "../_support/specs.ts";

Deno.test("LFC state location needs a spec, an endpoint, an address and a token", () => {
  assert.throws(() => lfcStateLocation(null), /no spec yet/);
  assert.throws(() => lfcStateLocation(testParsedSpec()), /endpoint_storage_addr missing/);
  assert.throws(
    () => lfcStateLocation(testParsedSpec({ endpoint_storage_addr: "h:1" })),
    /endpoint_storage_token missing/,
  );
  assert.deepEqual(
    lfcStateLocation(
      testParsedSpec({ endpoint_storage_addr: "h:1", endpoint_storage_token: "t" }),
      "ep-2",
    ),
    { url: `http://h:1/${TEST_TENANT}/${TEST_TIMELINE}/ep-2/lfc_state`, token: "t" },
  );
});

Deno.test("prewarm without spec or endpoint storage fails; failpoint fails it too", async () => {
  let spec: ParsedSpec | null = null;
  const failpoints = new FailpointRegistry();
  const lfc = new Lfc({ currentSpec: () => spec, connstr: DEAD_CONNSTR, failpoints });
  lfc.startPrewarm();
  await lfc.idle();
  assert.deepEqual(lfc.prewarmState(), {
    status: "failed",
    error: "the compute has no spec yet",
  });
  spec = testParsedSpec();
  lfc.startPrewarm();
  await lfc.idle();
  assert.deepEqual(lfc.prewarmState(), {
    status: "failed",
    error: "pspec.endpoint_storage_addr missing",
  });
  spec = testParsedSpec({ endpoint_storage_addr: "127.0.0.1:1", endpoint_storage_token: "t" });
  failpoints.configure("compute-prewarm", "return");
  lfc.startPrewarm();
  await lfc.idle();
  assert.deepEqual(lfc.prewarmState(), { status: "failed", error: "compute-prewarm failpoint" });
});

Deno.test("stop cancels a running prewarm, waits for it to end, then refuses new jobs", async () => {
  const failpoints = new FailpointRegistry();
  failpoints.configure("compute-prewarm", "pause");
  const spec = testParsedSpec({
    endpoint_storage_addr: "127.0.0.1:1",
    endpoint_storage_token: "t",
  });
  const lfc = new Lfc({ currentSpec: () => spec, connstr: DEAD_CONNSTR, failpoints });
  assert.equal(lfc.startPrewarm(), true);
  const events: string[] = [];
  const stopped = lfc.stop().then(() => events.push("stopped"));
  // One turn of the event loop: a stop that did not wait for the paused job would end in it.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(events, []);
  assert.deepEqual(lfc.prewarmState(), { status: "prewarming" });
  failpoints.remove("compute-prewarm");
  await stopped;
  assert.deepEqual(events, ["stopped"]);
  assert.deepEqual(lfc.prewarmState(), { status: "cancelled" }, "the stop cancelled it");
  assert.throws(() => lfc.startPrewarm(), TaskGroupClosedError);
  assert.throws(() => lfc.startOffload(), /LFC jobs: the compute is shutting down/);
  assert.deepEqual(lfc.offloadState(), { status: "not_offloaded" });
});
