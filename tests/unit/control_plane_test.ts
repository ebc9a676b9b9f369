/**
 * The control-plane spec client (`src/storage/control_plane.ts`) against an
 * in-memory control plane handed in as `fetchImpl`, with the pauses between
 * attempts recorded instead of slept: request shape, the empty/attached
 * answers, and which failures are retried (3 attempts, 100 ms apart) and which
 * end at once. Over a real socket, against the harness's control plane:
 * `tests/integration/control_plane_test.ts`.
 */

import assert from "node:assert/strict";
import {
  ControlPlaneError,
  fetchComputeConfig,
  type FetchComputeConfigOptions,
  httpStatusLabel,
} from "../../src/storage/control_plane.ts";

const BASE = "http://control-plane.test";

const SPEC = {
  format_version: 1.0,
  cluster: { roles: [], databases: [] },
  suspend_timeout_seconds: -1,
};

const JWKS = { jwks: { keys: [{ kty: "OKP", crv: "Ed25519", x: "AAAA" }] } };

/** What the fake answers one compute with (the harness control plane's answers). */
type Answer =
  | { kind: "empty" }
  | { kind: "attached"; spec: unknown; computeCtlConfig?: unknown }
  | { kind: "http-error"; status: number; body?: string }
  | { kind: "garbage" }
  | { kind: "unreachable" };

interface SeenRequest {
  method: string;
  url: string;
  authorization: string | null;
}

/** An in-memory control plane: answers by compute id, records requests and requested pauses. */
function fakeControlPlane() {
  const answers = new Map<string, Answer>();
  const requests: SeenRequest[] = [];
  const sleeps: number[] = [];
  const pattern = new URLPattern({ pathname: "/compute/api/v2/computes/:id/spec" });
  const fetchImpl = (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    const headers = new Headers(init?.headers);
    requests.push({
      method: init?.method ?? "GET",
      url,
      authorization: headers.get("authorization"),
    });
    const id = pattern.exec(url)?.pathname.groups.id;
    const answer: Answer = id === undefined
      ? { kind: "http-error", status: 404 }
      : answers.get(id) ?? { kind: "http-error", status: 404 };
    switch (answer.kind) {
      case "unreachable":
        return Promise.reject(new TypeError("error sending request: connection refused"));
      case "empty":
        return Promise.resolve(
          Response.json({
            status: "empty",
            spec: null,
            compute_ctl_config: { jwks: { keys: [] } },
          }),
        );
      case "attached":
        return Promise.resolve(Response.json({
          status: "attached",
          spec: answer.spec,
          compute_ctl_config: answer.computeCtlConfig ?? { jwks: { keys: [] } },
        }));
      case "http-error":
        return Promise.resolve(new Response(answer.body ?? null, { status: answer.status }));
      case "garbage":
        return Promise.resolve(new Response("this is not a control plane response"));
    }
  };
  return {
    answers,
    requests,
    sleeps,
    /** Options for `fetchComputeConfig` talking to this fake. */
    options(
      computeId: string,
      extra: Partial<FetchComputeConfigOptions> = {},
    ): FetchComputeConfigOptions {
      return {
        baseUri: BASE,
        computeId,
        fetchImpl: fetchImpl as typeof fetch,
        sleep: (ms) => {
          sleeps.push(ms);
          return Promise.resolve();
        },
        ...extra,
      };
    },
  };
}

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
  const cp = fakeControlPlane();
  cp.answers.set("compute-1", { kind: "attached", spec: SPEC, computeCtlConfig: JWKS });
  const labels: string[] = [];
  const config = await fetchComputeConfig(cp.options("compute-1", {
    token: "secret-token",
    onAttempt: (label) => labels.push(label),
  }));
  assert.equal(config.spec?.format_version, 1);
  assert.equal(config.spec?.suspend_timeout_seconds, -1);
  assert.deepEqual(config.compute_ctl_config.jwks.keys, JWKS.jwks.keys);
  assert.deepEqual(labels, ["200 OK"]);
  assert.deepEqual(cp.requests, [{
    method: "GET",
    url: `${BASE}/compute/api/v2/computes/compute-1/spec`,
    authorization: "Bearer secret-token",
  }]);
  assert.deepEqual(cp.sleeps, []);
});

Deno.test("empty: a config without spec, and an empty token still asks with Bearer", async () => {
  const cp = fakeControlPlane();
  cp.answers.set("pooled", { kind: "empty" });
  const config = await fetchComputeConfig(cp.options("pooled"));
  assert.equal(config.spec ?? null, null);
  assert.deepEqual(config.compute_ctl_config.jwks, { keys: [] });
  assert.equal(cp.requests[0].authorization, "Bearer");
});

Deno.test("attached without a spec fails at once", async () => {
  const cp = fakeControlPlane();
  cp.answers.set("c", { kind: "attached", spec: null });
  await rejectsWith(fetchComputeConfig(cp.options("c")), "compute is attached, but spec is empty");
  assert.equal(cp.requests.length, 1);
  assert.deepEqual(cp.sleeps, []);
});

Deno.test("503 is retried after a 100 ms pause, and the next answer is used", async () => {
  const cp = fakeControlPlane();
  cp.answers.set("c", { kind: "http-error", status: 503 });
  const labels: string[] = [];
  const config = await fetchComputeConfig(cp.options("c", {
    onAttempt: (label) => {
      labels.push(label);
      cp.answers.set("c", { kind: "attached", spec: SPEC });
    },
  }));
  assert.ok(config.spec);
  assert.deepEqual(labels, ["503 Service Unavailable", "200 OK"]);
  assert.deepEqual(cp.sleeps, [100], "one pause of 100 ms between the two attempts");
});

Deno.test("502 on every attempt: three attempts, two pauses, then exhausted", async () => {
  const cp = fakeControlPlane();
  cp.answers.set("c", { kind: "http-error", status: 502 });
  const labels: string[] = [];
  const error = await rejectsWith(
    fetchComputeConfig(cp.options("c", { onAttempt: (l) => labels.push(l) })),
    "Exhausted all attempts to retrieve the config from the control plane",
  );
  assert.equal(error.retryable, false);
  assert.equal(cp.requests.length, 3);
  assert.deepEqual(labels, Array(3).fill("502 Bad Gateway"));
  assert.deepEqual(cp.sleeps, [100, 100]);
});

Deno.test("an undecodable body is retried, counted as 200 OK", async () => {
  const cp = fakeControlPlane();
  cp.answers.set("c", { kind: "garbage" });
  const labels: string[] = [];
  await rejectsWith(
    fetchComputeConfig(cp.options("c", { onAttempt: (l) => labels.push(l) })),
    /^Exhausted all attempts/,
  );
  assert.deepEqual(labels, Array(3).fill("200 OK"));
  assert.equal(cp.requests.length, 3);
});

Deno.test("a spec that does not decode is retried like any bad body", async () => {
  const cp = fakeControlPlane();
  cp.answers.set("c", { kind: "attached", spec: { format_version: 1.0 } });
  await rejectsWith(fetchComputeConfig(cp.options("c")), /^Exhausted all attempts/);
  assert.equal(cp.requests.length, 3);
});

Deno.test("other statuses end at once: 404 for an unknown compute, 500", async () => {
  const cp = fakeControlPlane();
  const labels: string[] = [];
  await rejectsWith(
    fetchComputeConfig(cp.options("nobody", { onAttempt: (l) => labels.push(l) })),
    /404 Not Found/,
  );
  assert.equal(cp.requests.length, 1);
  cp.answers.set("c", { kind: "http-error", status: 500, body: "boom" });
  await rejectsWith(
    fetchComputeConfig(cp.options("c", { onAttempt: (l) => labels.push(l) })),
    "control plane responded with 500 Internal Server Error: boom",
  );
  assert.equal(cp.requests.length, 2);
  assert.deepEqual(labels, ["404 Not Found", "500 Internal Server Error"]);
  assert.deepEqual(cp.sleeps, []);
});

Deno.test("a trailing slash on the base URI is concatenated as is", async () => {
  const cp = fakeControlPlane();
  cp.answers.set("c", { kind: "attached", spec: SPEC });
  await rejectsWith(
    fetchComputeConfig(cp.options("c", { baseUri: `${BASE}/` })),
    /404 Not Found/,
  );
  assert.deepEqual(cp.requests.map((request) => request.url), [
    `${BASE}//compute/api/v2/computes/c/spec`,
  ]);
});

Deno.test("transport errors are retried and labelled unknown", async () => {
  const cp = fakeControlPlane();
  cp.answers.set("c", { kind: "unreachable" });
  const labels: string[] = [];
  const error = await rejectsWith(
    fetchComputeConfig(cp.options("c", { onAttempt: (l) => labels.push(l) })),
    /^Exhausted all attempts/,
  );
  assert.deepEqual(labels, ["unknown", "unknown", "unknown"]);
  assert.match(String((error.cause as Error).message), /could not reach the control plane/);
  assert.deepEqual(cp.sleeps, [100, 100]);
});

Deno.test("httpStatusLabel renders like Rust's http::StatusCode", () => {
  assert.equal(httpStatusLabel(200), "200 OK");
  assert.equal(httpStatusLabel(503), "503 Service Unavailable");
  assert.equal(httpStatusLabel(203), "203 Non Authoritative Information");
  assert.equal(httpStatusLabel(599), "599 <unknown status code>");
});
