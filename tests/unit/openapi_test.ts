import SwaggerParser from "@apidevtools/swagger-parser";
import assert from "node:assert/strict";
import { z } from "zod";
import { currentOpenApiDocument, OPENAPI_PATH, serverRoutes } from "../../harness/openapi.ts";
import {
  buildOpenApiDocument,
  openApiPath,
  renderOpenApiDocument,
} from "../../src/http/openapi.ts";
import type { Json } from "../../src/http/openapi_schemas.ts";
import { BODY_REJECTIONS, PLAIN_TEXT } from "../../src/http/rejections.ts";
import type { Route } from "../../src/http/server.ts";

type Operation = {
  operationId: string;
  tags?: string[];
  security?: unknown[];
  "x-server": string;
  "x-undocumented"?: boolean;
  parameters?: { name: string; in: string; required: boolean }[];
  requestBody?: unknown;
  responses: Record<string, { description: string; content?: Record<string, unknown> }>;
};

const document = currentOpenApiDocument();
const paths = document.paths as Record<string, Record<string, Operation>>;
const routes = serverRoutes();

function operation(route: Route): Operation | undefined {
  return paths[openApiPath(route.path)]?.[route.method.toLowerCase()];
}

/** Neon's operationIds and tags (openapi_spec.yaml), by method and path. */
const NEON_OPERATIONS: Record<string, [string, string | null]> = {
  "GET /status": ["getComputeStatus", "Info"],
  "GET /metrics.json": ["getComputeMetricsJSON", "Info"],
  "GET /metrics": ["getComputeMetrics", "Info"],
  "GET /insights": ["getComputeInsights", "Info"],
  "GET /dbs_and_roles": ["getDbsAndRoles", "Info"],
  "POST /promote": ["promoteReplica", "Promotion"],
  "POST /lfc/prewarm": ["lfcPrewarm", null],
  "GET /lfc/prewarm": ["getLfcPrewarmState", "Prewarm"],
  "DELETE /lfc/prewarm": ["cancelLfcPrewarm", "Prewarm"],
  "POST /lfc/offload": ["lfcOffload", null],
  "GET /lfc/offload": ["getLfcOffloadState", "Prewarm"],
  "GET /database_schema": ["getDatabaseSchema", "Info"],
  "POST /grants": ["setRoleGrants", "Grants"],
  "POST /check_writability": ["checkComputeWritability", "Check"],
  "POST /extensions": ["installExtension", "Extensions"],
  "POST /configure": ["configureCompute", "Configure"],
  "POST /extension_server/{filename}": ["downloadExtension", "Extension"],
  "POST /terminate": ["terminate", "Terminate"],
};

Deno.test("docs/openapi.json is what `deno task openapi` renders now", async () => {
  const committed = await Deno.readTextFile(OPENAPI_PATH);
  assert.ok(
    committed === renderOpenApiDocument(document),
    "docs/openapi.json is stale: run `deno task openapi` and commit the result",
  );
});

Deno.test("the document is valid OpenAPI 3.0 (swagger-parser)", async () => {
  const api = await SwaggerParser.validate(structuredClone(document) as never);
  assert.equal((api as { openapi: string }).openapi, "3.0.3");
});

Deno.test("every route of both servers is in the document, documented, on its server", () => {
  for (const server of ["external", "internal"] as const) {
    for (const route of routes[server]) {
      const name = `${route.method} ${route.path} (${server})`;
      assert.ok(route.doc, `${name} has no doc`);
      const op = operation(route);
      assert.ok(op, `${name} is missing from the document`);
      assert.equal(op["x-server"], server, name);
      assert.equal(op["x-undocumented"], undefined, name);
    }
  }
  const served = routes.external.length + routes.internal.length;
  const documented = Object.values(paths).reduce(
    (n, methods) => n + Object.keys(methods).length,
    0,
  );
  assert.equal(documented, served, "the document has no operation the servers do not serve");
});

Deno.test("operationIds are unique and Neon's are kept, with Neon's tags", () => {
  const ids = Object.values(paths).flatMap((methods) =>
    Object.values(methods).map((op) => op.operationId)
  );
  assert.equal(new Set(ids).size, ids.length, `duplicate operationIds: ${ids}`);
  for (const [key, [operationId, tag]] of Object.entries(NEON_OPERATIONS)) {
    const [method, path] = key.split(" ");
    const op = paths[path]?.[method.toLowerCase()];
    assert.ok(op, `${key} is in the document`);
    assert.equal(op.operationId, operationId, key);
    if (tag !== null) assert.ok(op.tags?.includes(tag), `${key} is tagged ${tag}`);
  }
});

Deno.test("security: JWT on authenticated external routes, none elsewhere", () => {
  assert.deepEqual(document.security, [{ JWT: [] }]);
  assert.deepEqual((document.components as Record<string, Json>).securitySchemes, {
    JWT: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
  });
  for (const server of ["external", "internal"] as const) {
    for (const route of routes[server]) {
      const op = operation(route)!;
      const authenticated = server === "external" && route.auth;
      assert.deepEqual(op.security, authenticated ? undefined : [], `${route.path}`);
      for (const code of ["401", "403"]) {
        assert.equal(code in op.responses, authenticated, `${route.path} documents ${code}`);
      }
      if (authenticated) assert.ok("400" in op.responses, `${route.path} documents 400`);
    }
  }
  for (const path of ["/metrics", "/autoscaling_metrics", "/openapi.json"]) {
    assert.ok(paths[path]?.get, `GET ${path} is in the document`);
    assert.deepEqual(paths[path].get.security, [], path);
  }
});

Deno.test("routes with a JSON body document 400, 413, 415 and 422", () => {
  for (const route of [...routes.external, ...routes.internal]) {
    if (route.doc?.body === undefined) continue;
    const op = operation(route)!;
    assert.ok(op.requestBody, `${route.path} has a requestBody`);
    for (const code of ["400", "413", "415", "422"]) {
      assert.ok(code in op.responses, `${route.path} documents ${code}`);
    }
  }
});

Deno.test("body refusals come from rejections.ts, in the content type the route answers", () => {
  const responses = (path: string) => paths[path].post.responses;
  for (const path of ["/grants", "/extensions", "/failpoints", "/configure", "/promote"]) {
    for (const status of [413, 415, 422] as const) {
      assert.equal(responses(path)[status].description, BODY_REJECTIONS[status].description, path);
    }
    assert.ok(responses(path)[400].description.endsWith(BODY_REJECTIONS[400].description), path);
  }
  for (const status of ["413", "415", "422"]) {
    assert.deepEqual(Object.keys(responses("/promote")[status].content!), [PLAIN_TEXT], status);
    assert.deepEqual(Object.keys(responses("/grants")[status].content!), ["application/json"]);
  }
  assert.deepEqual(Object.keys(responses("/promote")["400"].content!), [
    "application/json",
    PLAIN_TEXT,
  ]);
});

Deno.test("the real codes of this part of the API are documented", () => {
  const codes = (path: string, method: string) => Object.keys(paths[path][method].responses);
  assert.deepEqual(codes("/terminate", "post"), ["200", "201", "400", "401", "403", "412"]);
  assert.deepEqual(codes("/configure", "post"), [
    "200",
    "400",
    "401",
    "403",
    "412",
    "413",
    "415",
    "422",
    "500",
  ]);
  assert.deepEqual(codes("/refresh_configuration", "post"), ["200", "500"]);
  const terminate400 = paths["/terminate"].post.responses["400"].content!;
  assert.deepEqual(Object.keys(terminate400), ["text/plain; charset=utf-8", "application/json"]);
  const mode = paths["/terminate"].post.parameters?.find((p) => p.name === "mode");
  assert.deepEqual(mode && { in: mode.in, required: mode.required }, {
    in: "query",
    required: false,
  });
  const schemas = (document.components as Record<string, Record<string, Json>>).schemas;
  for (const name of ["ComputeState", "ComputeStatus", "ComputeMetrics", "GenericError"]) {
    assert.ok(schemas[name], `component ${name}`);
  }
  const status = schemas.ComputeStatus as { enum: string[] };
  assert.ok(status.enum.includes("refresh_configuration_pending"));
  const metrics = schemas.ComputeMetrics as { required: string[] };
  assert.equal(metrics.required.length, 13);
});

Deno.test("openApiPath turns hono parameters into OpenAPI ones", () => {
  assert.equal(openApiPath("/status"), "/status");
  assert.equal(openApiPath("/extension_server/:filename{.+}"), "/extension_server/{filename}");
  assert.equal(openApiPath("/a/:id/b"), "/a/{id}/b");
});

Deno.test("schemas: .meta ids become components, path parameters are required", () => {
  const thing = z.object({ n: z.number() }).meta({ id: "ThingForTest" });
  const route: Route = {
    method: "POST",
    path: "/things/:name",
    auth: false,
    handler: () => new Response(null),
    doc: {
      operationId: "makeThing",
      summary: "Make a thing.",
      tags: ["Test"],
      params: z.object({ name: z.string() }),
      body: z.object({ thing: thing }),
      responses: { 201: { description: "made", schema: thing.nullable() } },
    },
  };
  const doc = buildOpenApiDocument({ external: [], internal: [route] });
  const op = (doc.paths as Record<string, Record<string, Operation>>)["/things/{name}"].post;
  assert.deepEqual(op.parameters, [{
    name: "name",
    in: "path",
    required: true,
    schema: { type: "string" },
  }]);
  assert.ok(JSON.stringify(op.requestBody).includes("#/components/schemas/ThingForTest"));
  assert.ok(
    (doc.components as Record<string, Record<string, Json>>).schemas.ThingForTest,
  );
  z.globalRegistry.remove(thing);
});
