import type { LogRecord } from "@logtape/logtape";
import assert from "node:assert/strict";
import { z } from "zod";
import { readJsonBody } from "../../src/http/json_body.ts";
import {
  allowedMethods,
  buildApp,
  matchRoutePath,
  pathAndQuery,
  pathPattern,
  type Route,
} from "../../src/http/server.ts";
import { setupLogging } from "../../src/log.ts";
import { renderMetrics } from "../../src/metrics.ts";
import { metricValue } from "../_support/prometheus.ts";

const records: LogRecord[] = [];
setupLogging({ level: "info", sink: (record) => records.push(record) });

const shapeSchema = z.object({
  spec: z.object({ cluster: z.object({ roles: z.array(z.string()) }) }),
});

const routes: Route[] = [
  {
    method: "GET",
    path: "/things/:id",
    auth: false,
    handler: (c) => c.json({ id: c.req.param("id") }),
  },
  {
    method: "POST",
    path: "/files/:name{.+}",
    auth: false,
    handler: (c) => c.json({ name: c.req.param("name") }),
  },
  {
    method: "POST",
    path: "/shape",
    auth: true,
    handler: async (c) => c.json(await readJsonBody(c, shapeSchema)),
  },
  {
    method: "GET",
    path: "/passthrough",
    auth: false,
    // A Response whose headers are immutable, like one straight from fetch().
    handler: () => Response.redirect("http://elsewhere/", 302),
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

async function fetchApp(path: string, init: RequestInit = {}): Promise<Response> {
  return await app.fetch(new Request(`http://compute${path}`, init));
}

Deno.test("route paths in hono syntax match request paths", () => {
  assert.ok(pathPattern("/things/:id").test("/things/42"));
  assert.ok(!pathPattern("/things/:id").test("/things/42/more"));
  assert.ok(pathPattern("/files/:name{.+}").test("/files/a/b.so"));
  assert.ok(!pathPattern("/status").test("/statusX"));
  assert.ok(pathPattern("/metrics.json").test("/metrics.json"));
  assert.ok(!pathPattern("/metrics.json").test("/metricsXjson"));
  assert.equal(matchRoutePath(routes, "/files/x/y"), "/files/:name{.+}");
  assert.equal(matchRoutePath(routes, "/nothing"), undefined);
  assert.deepEqual(allowedMethods(routes, "/things/7"), ["GET", "HEAD"]);
});

Deno.test("a wrong method on a parametric path is 405 with Allow", async () => {
  const response = await fetchApp("/files/lib/x.so", { method: "GET" });
  assert.equal(response.status, 405);
  assert.equal(response.headers.get("allow"), "POST");
  assert.equal(await response.text(), "");
});

Deno.test("the HTTP metrics are labelled with the route table's path", async () => {
  const before = await renderMetrics();
  const baseline = (labels: Record<string, string>) =>
    metricValue(before, "compute_ctl_http_requests_total", { server: "mw", ...labels }) ?? 0;
  (await fetchApp("/things/1")).body?.cancel();
  (await fetchApp("/things/2")).body?.cancel();
  (await fetchApp("/files/a/b", { method: "GET" })).body?.cancel();
  (await fetchApp("/unknown/path")).body?.cancel();
  const text = await renderMetrics();
  const count = (labels: Record<string, string>) =>
    (metricValue(text, "compute_ctl_http_requests_total", { server: "mw", ...labels }) ?? 0) -
    baseline(labels);
  assert.equal(count({ route: "/things/:id", method: "GET", status: "200" }), 2);
  assert.equal(count({ route: "/files/:name{.+}", method: "GET", status: "405" }), 1);
  assert.equal(count({ route: "unmatched", method: "GET", status: "404" }), 1);
  assert.ok(!text.includes('route="/things/1"'));
  const durations = (from: string) =>
    metricValue(from, "compute_ctl_http_request_duration_seconds_count", {
      server: "mw",
      route: "/things/:id",
      method: "GET",
      status: "200",
    }) ?? 0;
  assert.equal(durations(text) - durations(before), 2);
});

Deno.test("one info line per request with method, path, status, latency and request id", async () => {
  records.length = 0;
  (await fetchApp("/things/9?x=1", { headers: { "x-request-id": "log-me" } })).body?.cancel();
  const lines = records.filter((record) => record.properties.request_id === "log-me");
  assert.equal(lines.length, 1, JSON.stringify(lines.map((r) => r.message)));
  const [line] = lines;
  assert.equal(line.level, "info");
  assert.equal(line.properties.method, "GET");
  assert.equal(line.properties.path, "/things/9?x=1");
  assert.equal(line.properties.status, 200);
  assert.equal(typeof line.properties.latency_ms, "number");
});

Deno.test("a wrong shape is 422 naming the zod path, lower-cased", async () => {
  const response = await fetchApp("/shape", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ spec: { cluster: { roles: [1] } } }),
  });
  assert.equal(response.status, 422);
  const { error } = await response.json();
  assert.match(
    error,
    /^failed to deserialize the json body into the target type: spec\.cluster\.roles\.0: /,
  );
  assert.equal(error, error.toLowerCase());
});

Deno.test("an immutable response still gets x-request-id", async () => {
  const response = await fetchApp("/passthrough", { headers: { "x-request-id": "immutable" } });
  assert.equal(response.status, 302);
  assert.equal(response.headers.get("x-request-id"), "immutable");
});

Deno.test("whatever a handler throws becomes a 500 JSON answer", async () => {
  const response = await fetchApp("/weird");
  assert.equal(response.status, 500);
  assert.equal(response.headers.get("content-type"), "application/json");
  assert.equal(typeof (await response.json()).error, "string");
});

Deno.test("pathAndQuery is new URL's pathname and search, without parsing again", () => {
  for (
    const url of [
      "http://compute/status",
      "http://127.0.0.1:3080/status?x=1&y=%20",
      "http://[::1]:80/a/b/../c?q=/x#frag",
      "http://user:p%2Fw@host/x?y",
      "https://host",
      "http://host/?",
      "http://host/x?#y",
      "http://host/x??",
      "http://host/%7Efoo/bar%2F?a=b#c?d",
      new Request("http://host/a b/ü?c d").url,
    ]
  ) {
    const parsed = new URL(url);
    assert.equal(pathAndQuery(parsed.href), `${parsed.pathname}${parsed.search}`, url);
  }
});
