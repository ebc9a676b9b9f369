/**
 * The control-plane spec client against the harness's fake control plane, over
 * real sockets: request shape, the empty/attached answers, and which failures
 * are retried (3 attempts, 100 ms apart) and which end at once.
 */

import assert from "node:assert/strict";
import { startControlPlane } from "../../harness/control_plane.ts";
import {
  ControlPlaneError,
  fetchComputeConfig,
  httpStatusLabel,
} from "../../src/storage/control_plane.ts";

const SPEC = {
  format_version: 1.0,
  cluster: { roles: [], databases: [] },
  suspend_timeout_seconds: -1,
};

const JWKS = { jwks: { keys: [{ kty: "OKP", crv: "Ed25519", x: "AAAA" }] } };

async function rejectsWith(promise: Promise<unknown>, message: string | RegExp) {
  const error = await promise.then(
    () => assert.fail("expected fetchComputeConfig to fail"),
    (error: unknown) => error,
  );
  assert.ok(error instanceof ControlPlaneError, `unexpected error: ${error}`);
  if (typeof message === "string") assert.equal(error.message, message);
  else assert.match(error.message, message);
  return error;
}

Deno.test("attached: GET {uri}/compute/api/v2/computes/{id}/spec with the bearer token", async () => {
  await using cp = await startControlPlane();
  cp.setAnswer("compute-1", { kind: "attached", spec: SPEC, computeCtlConfig: JWKS });
  const labels: string[] = [];
  const config = await fetchComputeConfig({
    baseUri: cp.url,
    computeId: "compute-1",
    token: "secret-token",
    onAttempt: (label) => labels.push(label),
  });
  assert.equal(config.spec?.format_version, 1);
  assert.equal(config.spec?.suspend_timeout_seconds, -1);
  assert.deepEqual(config.compute_ctl_config.jwks.keys, JWKS.jwks.keys);
  assert.deepEqual(labels, ["200 OK"]);
  assert.deepEqual(cp.requestLog("compute-1"), [{
    method: "GET",
    path: "/compute/api/v2/computes/compute-1/spec",
    authorization: "Bearer secret-token",
  }]);
});

Deno.test("empty: a config without spec, and an empty token still sends Bearer", async () => {
  await using cp = await startControlPlane();
  cp.setAnswer("pooled", { kind: "empty" });
  const config = await fetchComputeConfig({ baseUri: cp.url, computeId: "pooled" });
  assert.equal(config.spec ?? null, null);
  assert.deepEqual(config.compute_ctl_config.jwks, { keys: [] });
  // The header leaves as `Bearer `; HTTP strips trailing whitespace from field values.
  assert.equal(cp.requestLog("pooled")[0].authorization, "Bearer");
});

Deno.test("attached without a spec fails at once", async () => {
  await using cp = await startControlPlane();
  cp.setAnswer("c", { kind: "attached", spec: null });
  await rejectsWith(
    fetchComputeConfig({ baseUri: cp.url, computeId: "c" }),
    "compute is attached, but spec is empty",
  );
  assert.equal(cp.requests("c"), 1);
});

Deno.test("503 is retried, and the next answer is used", async () => {
  await using cp = await startControlPlane();
  cp.setAnswer("c", { kind: "http-error", status: 503 });
  const labels: string[] = [];
  const started = performance.now();
  const config = await fetchComputeConfig({
    baseUri: cp.url,
    computeId: "c",
    onAttempt: (label) => {
      labels.push(label);
      cp.setAnswer("c", { kind: "attached", spec: SPEC });
    },
  });
  assert.ok(config.spec);
  assert.deepEqual(labels, ["503 Service Unavailable", "200 OK"]);
  assert.ok(performance.now() - started >= 90, "attempts are 100 ms apart");
});

Deno.test("502 on every attempt: three attempts, then exhausted", async () => {
  await using cp = await startControlPlane();
  cp.setAnswer("c", { kind: "http-error", status: 502 });
  const labels: string[] = [];
  const started = performance.now();
  const error = await rejectsWith(
    fetchComputeConfig({ baseUri: cp.url, computeId: "c", onAttempt: (l) => labels.push(l) }),
    "Exhausted all attempts to retrieve the config from the control plane",
  );
  assert.equal(error.retryable, false);
  assert.equal(cp.requests("c"), 3);
  assert.deepEqual(labels, Array(3).fill("502 Bad Gateway"));
  assert.ok(performance.now() - started >= 190, "two pauses of 100 ms");
});

Deno.test("an undecodable body is retried, counted as 200 OK", async () => {
  await using cp = await startControlPlane();
  cp.setAnswer("c", { kind: "garbage" });
  const labels: string[] = [];
  await rejectsWith(
    fetchComputeConfig({ baseUri: cp.url, computeId: "c", onAttempt: (l) => labels.push(l) }),
    /^Exhausted all attempts/,
  );
  assert.deepEqual(labels, Array(3).fill("200 OK"));
  assert.equal(cp.requests("c"), 3);
});

Deno.test("a spec that does not decode is retried like any bad body", async () => {
  await using cp = await startControlPlane();
  cp.setAnswer("c", { kind: "attached", spec: { format_version: 1.0 } });
  await rejectsWith(
    fetchComputeConfig({ baseUri: cp.url, computeId: "c" }),
    /^Exhausted all attempts/,
  );
  assert.equal(cp.requests("c"), 3);
});

Deno.test("other statuses end at once: 404 for an unknown compute, 500", async () => {
  await using cp = await startControlPlane();
  const labels: string[] = [];
  await rejectsWith(
    fetchComputeConfig({ baseUri: cp.url, computeId: "nobody", onAttempt: (l) => labels.push(l) }),
    /404 Not Found/,
  );
  assert.equal(cp.requests("nobody"), 1);
  cp.setAnswer("c", { kind: "http-error", status: 500, body: "boom" });
  await rejectsWith(
    fetchComputeConfig({ baseUri: cp.url, computeId: "c", onAttempt: (l) => labels.push(l) }),
    "control plane responded with 500 Internal Server Error: boom",
  );
  assert.equal(cp.requests("c"), 1);
  assert.deepEqual(labels, ["404 Not Found", "500 Internal Server Error"]);
});

Deno.test("a trailing slash on the base URI is concatenated as is", async () => {
  await using cp = await startControlPlane();
  cp.setAnswer("c", { kind: "attached", spec: SPEC });
  await rejectsWith(
    fetchComputeConfig({ baseUri: `${cp.url}/`, computeId: "c" }),
    /404 Not Found/,
  );
  assert.equal(cp.requests("c"), 0);
});

Deno.test("transport errors are retried and labelled unknown", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const labels: string[] = [];
  const error = await rejectsWith(
    fetchComputeConfig({
      baseUri: `http://127.0.0.1:${port}`,
      computeId: "c",
      onAttempt: (l) => labels.push(l),
    }),
    /^Exhausted all attempts/,
  );
  assert.deepEqual(labels, ["unknown", "unknown", "unknown"]);
  assert.match(String((error.cause as Error).message), /could not reach the control plane/);
});

Deno.test("httpStatusLabel renders like Rust's http::StatusCode", () => {
  assert.equal(httpStatusLabel(200), "200 OK");
  assert.equal(httpStatusLabel(503), "503 Service Unavailable");
  assert.equal(httpStatusLabel(203), "203 Non Authoritative Information");
  assert.equal(httpStatusLabel(599), "599 <unknown status code>");
});
