/**
 * The parts of `src/compute/lfc.ts` that need no service: where the LFC state
 * lives, and prewarms that fail before reaching endpoint storage (no spec, no
 * address, the `compute-prewarm` failpoint). Prewarm and offload against a
 * fake endpoint storage are in `tests/integration/lfc_test.ts`.
 */

import assert from "node:assert/strict";
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
