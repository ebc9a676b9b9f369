/**
 * The control-plane spec client (`src/storage/control_plane.ts`) over real
 * sockets, against the harness's fake control plane: the request as it arrives
 * (an empty token's `Bearer ` loses its trailing space on the wire), and a
 * port nobody listens on. The retry rules are unit-tested with an in-memory
 * control plane in `tests/unit/control_plane_test.ts`.
 */

import assert from "node:assert/strict";
import { startControlPlane } from "../../harness/control_plane.ts";
import { ControlPlaneError, fetchComputeConfig } from "../../src/storage/control_plane.ts";

const SPEC = {
  format_version: 1.0,
  cluster: { roles: [], databases: [] },
  suspend_timeout_seconds: -1,
};

Deno.test("the harness control plane receives GET …/spec with the bearer token", async () => {
  await using cp = await startControlPlane();
  cp.setAnswer("compute-1", { kind: "attached", spec: SPEC });
  cp.setAnswer("pooled", { kind: "empty" });
  const attached = await fetchComputeConfig({
    baseUri: cp.url,
    computeId: "compute-1",
    token: "secret-token",
  });
  assert.equal(attached.spec?.format_version, 1);
  assert.deepEqual(cp.requestLog("compute-1"), [{
    method: "GET",
    path: "/compute/api/v2/computes/compute-1/spec",
    authorization: "Bearer secret-token",
  }]);
  const empty = await fetchComputeConfig({ baseUri: cp.url, computeId: "pooled" });
  assert.equal(empty.spec ?? null, null);
  // The header leaves as `Bearer `; HTTP strips trailing whitespace from field values.
  assert.equal(cp.requestLog("pooled")[0].authorization, "Bearer");
});

Deno.test("a port nobody listens on: three attempts labelled unknown", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const labels: string[] = [];
  const error = await fetchComputeConfig({
    baseUri: `http://127.0.0.1:${port}`,
    computeId: "c",
    onAttempt: (l) => labels.push(l),
    sleep: () => Promise.resolve(),
  }).then(() => assert.fail("expected a failure"), (error: unknown) => error);
  assert.ok(error instanceof ControlPlaneError);
  assert.match(error.message, /^Exhausted all attempts/);
  assert.deepEqual(labels, ["unknown", "unknown", "unknown"]);
  assert.match(String((error.cause as Error).message), /could not reach the control plane/);
});
