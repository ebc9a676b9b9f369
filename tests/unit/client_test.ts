import assert from "node:assert/strict";
import { serverRoutes } from "../../harness/openapi.ts";
import {
  ComputeApiError,
  type ComputeClient,
  type ConfigurationRequestInput,
  createComputeClient,
  type PromoteConfigInput,
} from "../../src/api/client.ts";
import { pathPattern } from "../../src/http/server.ts";

interface Sent {
  method: string;
  url: URL;
  headers: Headers;
  body: string | null;
}

type Reply = { status?: number; body?: string; contentType?: string };

/** A client whose fetch records requests and answers with `reply(request)`. */
function fakeClient(reply: (sent: Sent) => Reply, internal = true) {
  const sent: Sent[] = [];
  const api = createComputeClient({
    externalUrl: "http://ext:3080/",
    internalUrl: internal ? "http://int:3081" : undefined,
    token: "tok",
    requestId: () => "rid-1",
    fetch: ((input: string | URL | Request, init?: RequestInit) => {
      const request: Sent = {
        method: init?.method ?? "GET",
        url: new URL(String(input)),
        headers: new Headers(init?.headers),
        body: typeof init?.body === "string" ? init.body : null,
      };
      sent.push(request);
      const { status = 200, body = "", contentType = "application/json" } = reply(request);
      return Promise.resolve(
        new Response(body === "" ? null : body, {
          status,
          headers: body === "" ? {} : { "content-type": contentType },
        }),
      );
    }) as typeof fetch,
  });
  return { api, sent };
}

const STATUS = {
  start_time: "2024-05-01T10:00:00Z",
  tenant: null,
  timeline: null,
  status: "empty",
  last_active: null,
  error: null,
};

Deno.test("the token goes to the external server only; every call has the request id", async () => {
  const { api, sent } = fakeClient(() => ({ body: JSON.stringify(STATUS) }));
  assert.deepEqual(await api.status(), STATUS);
  await api.refreshConfiguration().catch(() => {});
  assert.equal(sent[0].url.href, "http://ext:3080/status");
  assert.equal(sent[0].headers.get("authorization"), "Bearer tok");
  assert.equal(sent[0].headers.get("x-request-id"), "rid-1");
  assert.equal(sent[1].url.href, "http://int:3081/refresh_configuration");
  assert.equal(sent[1].method, "POST");
  assert.equal(sent[1].headers.get("authorization"), null);
  assert.equal(sent[1].headers.get("x-request-id"), "rid-1");
});

Deno.test("a non-2xx answer is a ComputeApiError with status and body", async () => {
  const { api } = fakeClient(() => ({
    status: 412,
    body: JSON.stringify({ error: "invalid compute status: init" }),
  }));
  const error = await api.checkWritability().then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof ComputeApiError);
  assert.equal(error.status, 412);
  assert.deepEqual(error.body, { error: "invalid compute status: init" });
  assert.equal(error.errorMessage, "invalid compute status: init");
  assert.equal(error.request, "POST /check_writability");
  assert.match(error.message, /answered 412: invalid compute status: init/);

  const { api: plain } = fakeClient(() => ({
    status: 400,
    body: "Failed to deserialize query string: missing field `mode`",
    contentType: "text/plain; charset=utf-8",
  }));
  const textError = await plain.terminate("fast").then(() => undefined, (e: unknown) => e);
  assert.ok(textError instanceof ComputeApiError);
  assert.equal(textError.body, "Failed to deserialize query string: missing field `mode`");
  assert.equal(textError.errorMessage, undefined);
});

Deno.test("a 2xx body that does not match the schema is an error too", async () => {
  const { api } = fakeClient(() => ({ body: JSON.stringify({ status: "sleeping" }) }));
  const error = await api.status().then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof ComputeApiError);
  assert.equal(error.status, 200);
  assert.match(error.message, /unexpected body/);
});

Deno.test("terminate reports 201 as already terminated", async () => {
  const { api, sent } = fakeClient(() => ({ status: 201, body: '{"lsn":"0/16B3748"}' }));
  assert.deepEqual(await api.terminate("immediate"), { lsn: "0/16B3748", alreadyTerminated: true });
  assert.equal(sent[0].url.search, "?mode=immediate");
});

Deno.test("insights accepts Neon's double-encoded string and the plain object", async () => {
  const inner = { pg_stat_statements: [{ query: "select 1" }] };
  for (const body of [JSON.stringify(JSON.stringify(inner)), JSON.stringify(inner)]) {
    const { api } = fakeClient(() => ({ body }));
    assert.deepEqual(await api.insights(), inner);
  }
});

Deno.test("paths and queries are encoded", async () => {
  const { api, sent } = fakeClient(() => ({}));
  await api.extensionServer("dir/pg ext.so", { isLibrary: true });
  await api.lfcPrewarm("ep/1");
  await api.databaseSchema("a&b");
  assert.equal(sent[0].url.pathname, "/extension_server/dir/pg%20ext.so");
  assert.equal(sent[0].url.search, "?is_library=true");
  assert.equal(sent[1].url.searchParams.get("from_endpoint"), "ep/1");
  assert.equal(sent[2].url.searchParams.get("database"), "a&b");
});

Deno.test("internal calls without internalUrl fail before sending", async () => {
  const { api, sent } = fakeClient(() => ({}), false);
  await assert.rejects(
    () => api.grants({ database: "d", schema: "s", privileges: [], role: "r" }),
    {
      message: /internalUrl/,
    },
  );
  assert.equal(sent.length, 0);
});

Deno.test("there is a client method for every route of both servers", async () => {
  const { api, sent } = fakeClient(() => ({}));
  const calls: ((api: ComputeClient) => Promise<unknown>)[] = [
    (a) => a.metrics(),
    (a) => a.autoscalingMetrics(),
    (a) => a.openapi(),
    (a) => a.status(),
    (a) => a.metricsJson(),
    (a) => a.configure({} as ConfigurationRequestInput),
    (a) => a.terminate(),
    (a) => a.checkWritability(),
    (a) => a.insights(),
    (a) => a.dbsAndRoles(),
    (a) => a.databaseSchema("postgres"),
    (a) => a.promote({} as PromoteConfigInput),
    (a) => a.lfcPrewarmState(),
    (a) => a.lfcPrewarm(),
    (a) => a.cancelLfcPrewarm(),
    (a) => a.lfcOffloadState(),
    (a) => a.lfcOffload(),
    (a) => a.livenessProbe(),
    (a) => a.refreshConfiguration(),
    (a) => a.extensionServer("x.control"),
    (a) => a.extensions({ extension: "e", database: "d", version: "1" }),
    (a) => a.grants({ database: "d", schema: "s", privileges: ["USAGE"], role: "r" }),
    (a) => a.failpoints([]),
  ];
  for (const call of calls) await call(api).catch(() => {});
  const routes = serverRoutes();
  for (const server of ["external", "internal"] as const) {
    const host = server === "external" ? "ext:3080" : "int:3081";
    for (const route of routes[server]) {
      const hit = sent.some((request) =>
        request.url.host === host && request.method === route.method &&
        pathPattern(route.path).test(request.url.pathname)
      );
      assert.ok(hit, `no client method calls ${route.method} ${route.path} on ${server}`);
    }
  }
});
