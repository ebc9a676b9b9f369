import assert from "node:assert/strict";
import { z } from "zod";
import { InvalidStatusError } from "../../src/compute/state.ts";
import { HttpError } from "../../src/http/errors.ts";
import { readJsonBody } from "../../src/http/json_body.ts";
import { allowedMethods, buildApp, type Route } from "../../src/http/server.ts";
import { assertRequestId } from "../_support/http.ts";

const bodySchema = z.object({ name: z.string() });

/** Middleware-only routes: no compute behind them. */
const routes: Route[] = [
  { method: "GET", path: "/ok", auth: false, handler: (c) => c.json({ ok: true }) },
  { method: "POST", path: "/ok", auth: false, handler: (c) => c.json({ posted: true }) },
  {
    method: "POST",
    path: "/echo",
    auth: true,
    handler: async (c) => c.json(await readJsonBody(c, bodySchema)),
  },
  {
    method: "POST",
    path: "/plain",
    auth: false,
    handler: async (c) => c.json(await readJsonBody(c, bodySchema, { style: "plain" })),
  },
  {
    method: "GET",
    path: "/precondition",
    auth: false,
    handler: () => {
      throw new InvalidStatusError("configuration_pending");
    },
  },
  {
    method: "GET",
    path: "/crash",
    auth: false,
    handler: () => {
      throw new Error("boom");
    },
  },
];

const app = buildApp(routes, { name: "test" });

function request(path: string, init: RequestInit = {}): Promise<Response> {
  return Promise.resolve(app.fetch(new Request(`http://compute${path}`, init)));
}

function postJson(path: string, body: string, headers: HeadersInit = {}): Promise<Response> {
  return request(path, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...headers },
  });
}

async function assertErrorBody(response: Response, status: number, message: RegExp | string) {
  assert.equal(response.status, status);
  assert.equal(response.headers.get("content-type"), "application/json");
  const body = await response.json();
  assert.deepEqual(Object.keys(body), ["error"]);
  if (typeof message === "string") assert.equal(body.error, message);
  else assert.match(body.error, message);
}

Deno.test("a client's x-request-id is echoed; a missing one is a fresh UUID v4", async () => {
  const echoed = await request("/ok", { headers: { "x-request-id": "req-123" } });
  assert.equal(echoed.headers.get("x-request-id"), "req-123");
  await echoed.body?.cancel();
  const generated = await request("/ok");
  assertRequestId(generated);
  await generated.body?.cancel();
  const again = await request("/ok");
  assert.notEqual(again.headers.get("x-request-id"), generated.headers.get("x-request-id"));
  await again.body?.cancel();
});

Deno.test("JSON success bodies use application/json", async () => {
  const response = await request("/ok");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/json");
  assert.deepEqual(await response.json(), { ok: true });
});

Deno.test("an unknown path is 404 with an empty body and a request id", async () => {
  const response = await request("/nope", { headers: { "x-request-id": "r404" } });
  assert.equal(response.status, 404);
  assert.equal(await response.text(), "");
  assert.equal(response.headers.get("content-type"), null);
  assert.equal(response.headers.get("x-request-id"), "r404");
});

Deno.test("a wrong method is 405 with Allow, an empty body and a request id", async () => {
  const response = await request("/echo", { method: "GET" });
  assert.equal(response.status, 405);
  assert.equal(response.headers.get("allow"), "POST");
  assert.equal(await response.text(), "");
  assertRequestId(response);

  const del = await request("/ok", { method: "DELETE" });
  assert.equal(del.status, 405);
  assert.equal(del.headers.get("allow"), "GET,HEAD,POST");
  await del.body?.cancel();
});

Deno.test("GET routes answer HEAD without a body", async () => {
  const response = await request("/ok", { method: "HEAD" });
  assert.equal(response.status, 200);
  assert.equal(await response.text(), "");
});

Deno.test("allowedMethods lists registration order with HEAD after GET", () => {
  assert.deepEqual(allowedMethods(routes, "/ok"), ["GET", "HEAD", "POST"]);
  assert.deepEqual(allowedMethods(routes, "/echo"), ["POST"]);
  assert.deepEqual(allowedMethods(routes, "/missing"), []);
});

Deno.test("invalid JSON is 400 with a lower-cased message", async () => {
  const response = await postJson("/echo", "{not json", { "x-request-id": "bad-json" });
  await assertErrorBody(response, 400, /^failed to parse the request body as json: /);
  assert.equal(response.headers.get("x-request-id"), "bad-json");
});

Deno.test("JSON of the wrong shape is 422", async () => {
  await assertErrorBody(
    await postJson("/echo", '{"name": 1}'),
    422,
    /^failed to deserialize the json body into the target type: /,
  );
});

Deno.test("a body without a JSON content type is 415", async () => {
  const response = await request("/echo", { method: "POST", body: '{"name":"x"}' });
  await assertErrorBody(response, 415, "expected request with `content-type: application/json`");
});

Deno.test("a body over 2 MiB is 413", async () => {
  const big = JSON.stringify({ name: "x".repeat(2 * 1024 * 1024) });
  await assertErrorBody(
    await postJson("/echo", big),
    413,
    "failed to buffer the request body: length limit exceeded",
  );
});

Deno.test("plain-style body refusals: axum's words as text/plain, not lower-cased", async () => {
  const plain = async (response: Response, status: number, message: RegExp | string) => {
    assert.equal(response.status, status);
    assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
    const text = await response.text();
    if (typeof message === "string") assert.equal(text, message);
    else assert.match(text, message);
  };
  await plain(
    await request("/plain", { method: "POST", body: "{}" }),
    415,
    "Expected request with `Content-Type: application/json`",
  );
  await plain(
    await postJson("/plain", JSON.stringify({ name: "x".repeat(2 * 1024 * 1024) })),
    413,
    "Failed to buffer the request body: length limit exceeded",
  );
  await plain(
    await postJson("/plain", "{not json"),
    400,
    /^Failed to parse the request body as JSON: [^A-Z]+$/,
  );
  await plain(
    await postJson("/plain", '{"name": 1}'),
    422,
    /^Failed to deserialize the JSON body into the target type: name: /,
  );
});

Deno.test("a valid body reaches the handler", async () => {
  const response = await postJson("/echo", '{"name":"x","extra":true}');
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { name: "x" });
});

Deno.test("an invalid-status error is 412 with the kebab-case status", async () => {
  await assertErrorBody(
    await request("/precondition"),
    412,
    "invalid compute status: configuration-pending",
  );
});

Deno.test("an unexpected error is 500 with its message and keeps the request id", async () => {
  const response = await request("/crash", { headers: { "x-request-id": "r500" } });
  assert.equal(response.headers.get("x-request-id"), "r500");
  await assertErrorBody(response, 500, "boom");
});

Deno.test("the auth slot runs only for routes marked auth", async () => {
  const guarded = buildApp(routes, {
    name: "guarded",
    auth: () => {
      throw new HttpError(401, "failed to verify authorization token");
    },
  });
  const open = await guarded.fetch(new Request("http://compute/ok"));
  assert.equal(open.status, 200);
  await open.body?.cancel();
  const closed = await guarded.fetch(
    new Request("http://compute/echo", {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json", "x-request-id": "auth" },
    }),
  );
  assert.equal(closed.headers.get("x-request-id"), "auth");
  await assertErrorBody(closed, 401, "failed to verify authorization token");
});
