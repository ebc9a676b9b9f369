/**
 * `src/compute/lfc.ts`'s prewarm and offload against a fake endpoint storage
 * and a Postgres that cannot be reached: 429 while one runs, a missing state
 * skipped, a load failure reported, the cancel quirk.
 */

import assert from "node:assert/strict";
import { zstdCompressSync } from "node:zlib";
import type { ParsedSpec } from "../../src/api/parsed_spec.ts";
import { FailpointRegistry } from "../../src/compute/failpoints.ts";
import { Lfc } from "../../src/compute/lfc.ts";
import { DEAD_CONNSTR, TEST_TENANT, TEST_TIMELINE, testParsedSpec } from "../_support/specs.ts";

function deferred<T = void>() {
  return Promise.withResolvers<T>();
}

/** A fake endpoint storage: answers `status` (and a small zstd state for 200) after `gate`. */
function endpointStorage(status: number, gate: Promise<void> = Promise.resolve()) {
  const seen: { path: string; authorization: string | null }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    seen.push({
      path: new URL(req.url).pathname,
      authorization: req.headers.get("authorization"),
    });
    await gate;
    return status === 200
      ? new Response(zstdCompressSync(new Uint8Array([1, 2, 3])))
      : new Response(null, { status });
  });
  return { addr: `127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

Deno.test("prewarm: 429 while running, 404 skipped, load failure failed, cancel quirk", async () => {
  const gate = deferred();
  const storage404 = endpointStorage(404, gate.promise);
  try {
    let spec = testParsedSpec({
      endpoint_storage_addr: storage404.addr,
      endpoint_storage_token: "tok",
    });
    const lfc = new Lfc({
      currentSpec: () => spec,
      connstr: DEAD_CONNSTR,
      failpoints: new FailpointRegistry(),
    });
    assert.deepEqual(lfc.prewarmState(), { status: "not_prewarmed" });
    assert.equal(lfc.startPrewarm(), true);
    assert.deepEqual(lfc.prewarmState(), { status: "prewarming" });
    assert.equal(lfc.startPrewarm(), false, "a second prewarm is refused while one runs");
    gate.resolve();
    await lfc.idle();
    assert.deepEqual(lfc.prewarmState(), { status: "skipped" });
    assert.deepEqual(storage404.seen, [{
      path: `/${TEST_TENANT}/${TEST_TIMELINE}/ep-one/lfc_state`,
      authorization: "Bearer tok",
    }]);

    const storage200 = endpointStorage(200);
    try {
      spec = testParsedSpec({
        endpoint_storage_addr: storage200.addr,
        endpoint_storage_token: "tok",
      });
      assert.equal(lfc.startPrewarm("ep-other"), true);
      await lfc.idle();
      const state = lfc.prewarmState();
      assert.equal(state.status, "failed");
      assert.match((state as { error: string }).error, /^connecting to postgres: /);
      assert.equal(storage200.seen[0].path, `/${TEST_TENANT}/${TEST_TIMELINE}/ep-other/lfc_state`);

      // DELETE while idle: the next prewarm ends cancelled, the one after runs again.
      lfc.cancelPrewarm();
      assert.equal(lfc.startPrewarm(), true);
      await lfc.idle();
      assert.deepEqual(lfc.prewarmState(), { status: "cancelled" });
      assert.equal(lfc.startPrewarm(), true);
      await lfc.idle();
      assert.equal(lfc.prewarmState().status, "failed");
    } finally {
      await storage200.close();
    }
  } finally {
    await storage404.close();
  }
});

Deno.test("offload: 429 while running, failure without endpoint storage or LFC", async () => {
  let spec: ParsedSpec | null = testParsedSpec();
  const lfc = new Lfc({ currentSpec: () => spec, connstr: DEAD_CONNSTR });
  assert.deepEqual(lfc.offloadState(), { status: "not_offloaded" });
  assert.equal(lfc.startOffload(), true);
  assert.equal(lfc.startOffload(), false);
  await lfc.idle();
  assert.deepEqual(lfc.offloadState(), {
    status: "failed",
    error: "pspec.endpoint_storage_addr missing",
  });
  spec = testParsedSpec({ endpoint_storage_addr: "127.0.0.1:1", endpoint_storage_token: "t" });
  lfc.startOffload();
  await lfc.idle();
  const state = lfc.offloadState();
  assert.equal(state.status, "failed");
  assert.match((state as { error: string }).error, /^connecting to postgres: /);
});
