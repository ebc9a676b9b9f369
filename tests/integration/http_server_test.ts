/**
 * `serveApp` (`src/http/server.ts`) on a real socket: whatever a request does
 * (a handler throwing a non-Error, an unknown path, malformed or oversized
 * bodies), the server answers and keeps the connection; a port that is taken
 * is a `BindError`. The middleware itself
 * is unit-tested through `app.fetch` in `tests/unit/http_middleware_test.ts`.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { readJsonBody } from "../../src/http/json_body.ts";
import { BindError, buildApp, type Route, serveApp } from "../../src/http/server.ts";

const shapeSchema = z.object({ name: z.string() });

const routes: Route[] = [
  {
    method: "POST",
    path: "/shape",
    auth: false,
    handler: async (c) => c.json(await readJsonBody(c, shapeSchema)),
  },
  {
    method: "GET",
    path: "/weird",
    auth: false,
    handler: () => {
      throw Object.create(null); // not even an Error, no toString
    },
  },
];

const app = buildApp(routes, { name: "mw" });

Deno.test("over a real socket, no request drops the connection", async () => {
  await using server = serveApp(app, { name: "mw", hostname: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${server.port}`;
  const cases: [string, RequestInit, number][] = [
    ["/weird", {}, 500],
    ["/unknown", {}, 404],
    ["/shape", { method: "POST", body: "{", headers: { "content-type": "application/json" } }, 400],
    ["/shape", { method: "POST", body: "x".repeat(3 * 1024 * 1024) }, 415],
    [
      "/shape",
      {
        method: "POST",
        body: "x".repeat(3 * 1024 * 1024),
        headers: { "content-type": "application/json" },
      },
      413,
    ],
  ];
  for (const [path, init, status] of cases) {
    const response = await fetch(`${base}${path}`, init);
    assert.equal(response.status, status, path);
    await response.body?.cancel();
  }
});

Deno.test("a port that is taken is a BindError naming the server and the address", async () => {
  await using first = serveApp(app, { name: "mw", hostname: "127.0.0.1", port: 0 });
  assert.throws(
    () => serveApp(app, { name: "second", hostname: "127.0.0.1", port: first.port }),
    (error: unknown) =>
      error instanceof BindError &&
      error.message.startsWith(
        `failed to bind the compute_ctl second HTTP server to 127.0.0.1:${first.port}: `,
      ),
  );
});
