/**
 * @module
 * The OpenAPI 3.0.3 document of both HTTP servers, assembled from their route
 * tables: each route's `doc` (Neon's operationIds and tags) with its schemas
 * rendered by `openapi_schemas.ts`. Corrected where Neon's `openapi_spec.yaml`
 * disagrees with the wire: both servers are modelled (two `servers`, and per
 * operation its own server plus `x-server`), unauthenticated routes carry
 * `security: []`, and the auth (400/401/403) and body (400/413/415/422, worded
 * in `rejections.ts`) errors are documented on every route that can produce
 * them.
 *
 * Why not `@hono/zod-openapi` (no longer a dependency): the route table here is
 * framework-neutral data that also drives 404/405 with `Allow`, the metric
 * labels and the auth slot, and one document describes two hono apps, while
 * the library builds one document per `OpenAPIHono` app from routes registered
 * through it. It would also convert the schemas a second way (through
 * `@asteasolutions/zod-to-openapi`) beside zod 4's own `z.toJSONSchema`, and
 * its validator (hono's) answers a body without a JSON content type or with
 * malformed JSON with hono's own 400 before any hook runs, where Neon answers
 * 415 and 400 in axum's words, and it has no 413.
 */

import { z } from "zod";
import { BODY_REJECTIONS, PLAIN_TEXT, type RejectionStyle } from "./rejections.ts";
import type { ResponseDoc, Route, RouteDoc } from "./server.ts";
import {
  COMPONENT_PREFIX,
  type Json,
  type JsonObject,
  SchemaConverter,
} from "./openapi_schemas.ts";

export type { Json } from "./openapi_schemas.ts";

/** The OpenAPI version the document declares. */
export const OPENAPI_VERSION = "3.0.3";

/** Which of the two servers a route belongs to. */
export type ServerName = "external" | "internal";

/** The route tables of both servers. */
export interface ServerRoutes {
  external: readonly Route[];
  internal: readonly Route[];
}

/** The servers as the document lists them, at their default ports. */
export const SERVERS: Readonly<Record<ServerName, { url: string; description: string }>> = {
  external: {
    url: "http://localhost:3080",
    description: "external server (--external-http-port): control plane, metrics scrapers; JWT",
  },
  internal: {
    url: "http://localhost:3081",
    description: "internal server (--internal-http-port): processes on the compute; no auth",
  },
};

/** The generated document (plain JSON). */
export type OpenApiDocument = JsonObject;

const GENERIC_ERROR_REF: JsonObject = { $ref: `${COMPONENT_PREFIX}GenericError` };

/** Tag descriptions; tags not listed here appear without one. */
const TAG_DESCRIPTIONS: Record<string, string> = {
  Info: "Status, metrics and catalog information",
  Configure: "Delivering and refreshing the compute's spec",
  Terminate: "Stopping Postgres",
};

/** `/a/:name{.+}/:id` → `/a/{name}/{id}`; a bare `*` becomes `{path}`. */
export function openApiPath(honoPath: string): string {
  return honoPath
    .replace(/:([A-Za-z_][A-Za-z0-9_]*)(\{[^}]*\})?\??/g, "{$1}")
    .replace(/\*/g, "{path}");
}

/** A response added to a route's own: what it says and how its body is sent. */
interface ImplicitResponse {
  description: string;
  style: RejectionStyle;
}

/** What every route gets on top of its own doc: auth and body errors. */
function implicitResponses(
  server: ServerName,
  route: Route,
  doc: RouteDoc,
): Map<number, ImplicitResponse[]> {
  const extra = new Map<number, ImplicitResponse[]>();
  const add = (status: number, description: string, style: RejectionStyle) =>
    extra.set(status, [...(extra.get(status) ?? []), { description, style }]);
  if (server === "external" && route.auth) {
    add(400, "Missing or non-Bearer `Authorization` header", "json");
    add(
      401,
      "The token failed verification, or an admin token has a missing or wrong `aud`",
      "json",
    );
    add(403, "A non-admin token without this compute's `compute_id`", "json");
  }
  if (doc.body !== undefined) {
    for (const [status, { description }] of Object.entries(BODY_REJECTIONS)) {
      add(Number(status), description, doc.bodyRejections ?? "json");
    }
  }
  return extra;
}

/** The content of a refusal answered in `style`. */
function rejectionContent(style: RejectionStyle): [string, JsonObject] {
  return style === "json"
    ? ["application/json", { schema: GENERIC_ERROR_REF }]
    : [PLAIN_TEXT, { schema: { type: "string" } }];
}

function responseObject(
  response: ResponseDoc,
  convert: SchemaConverter,
): JsonObject {
  const result: JsonObject = { description: response.description };
  if (response.schema === undefined && response.contentType === undefined) return result;
  const contentType = response.contentType ?? "application/json";
  const schema: Json = response.schema === undefined
    ? { type: "string" }
    : convert.use(response.schema, "output");
  result.content = { [contentType]: { schema } };
  return result;
}

function responsesFor(
  server: ServerName,
  route: Route,
  doc: RouteDoc,
  convert: SchemaConverter,
): JsonObject {
  const own = Object.entries(doc.responses).map(([code, response]) =>
    [Number(code), responseObject(response, convert)] as const
  );
  const merged = new Map<number, JsonObject>(own);
  for (const [status, responses] of implicitResponses(server, route, doc)) {
    for (const { description, style } of responses) {
      const [contentType, media] = rejectionContent(style);
      const existing = merged.get(status);
      if (existing === undefined) {
        merged.set(status, { description, content: { [contentType]: media } });
      } else if (!String(existing.description).includes(description)) {
        existing.description = `${existing.description}; or: ${description}`;
        const content = (existing.content ?? {}) as JsonObject;
        content[contentType] ??= media;
        existing.content = content;
      }
    }
  }
  const result: JsonObject = {};
  for (const code of [...merged.keys()].sort((a, b) => a - b)) {
    result[String(code)] = merged.get(code)!;
  }
  if (merged.size === 0) result.default = { description: "Not documented yet" };
  return result;
}

function parametersFor(doc: RouteDoc, convert: SchemaConverter): Json[] {
  const parameters: Json[] = [];
  const add = (schema: z.ZodObject | undefined, where: "path" | "query") => {
    if (schema === undefined) return;
    const placeholder = convert.use(schema, "input");
    parameters.push({ __params: placeholder, __in: where });
  };
  add(doc.params, "path");
  add(doc.query, "query");
  return parameters;
}

function expandParameters(parameters: Json[], convert: SchemaConverter): Json[] {
  const result: Json[] = [];
  for (const entry of parameters) {
    const { __params, __in } = entry as { __params: JsonObject; __in: "path" | "query" };
    const json = convert.inline(__params);
    const properties = (json.properties ?? {}) as Record<string, JsonObject>;
    const required = new Set((json.required ?? []) as string[]);
    for (const [name, schema] of Object.entries(properties)) {
      const { description, ...rest } = schema;
      const parameter: JsonObject = {
        name,
        in: __in,
        required: __in === "path" || required.has(name),
      };
      if (typeof description === "string") parameter.description = description;
      parameter.schema = rest;
      result.push(parameter);
    }
  }
  return result;
}

function undocumented(route: Route): RouteDoc {
  return {
    operationId: `${route.method.toLowerCase()}${openApiPath(route.path).replace(/\W+/g, "_")}`,
    summary: "Not documented yet",
    tags: [],
    responses: {},
  };
}

/**
 * Builds the document for both servers' route tables. Deterministic: the same
 * tables give the same JSON, so the rendered copy in `docs/openapi.json` can be
 * compared with what `GET /openapi.json` serves.
 */
export function buildOpenApiDocument(routes: ServerRoutes): OpenApiDocument {
  const convert = new SchemaConverter();
  const paths: Record<string, Record<string, JsonObject>> = {};
  const pending: { operation: JsonObject; parameters: Json[] }[] = [];
  const tags: string[] = [];
  for (const server of ["external", "internal"] as const) {
    for (const route of routes[server]) {
      const doc = route.doc ?? undocumented(route);
      for (const tag of doc.tags) if (!tags.includes(tag)) tags.push(tag);
      const operation: JsonObject = {
        operationId: doc.operationId,
        summary: doc.summary,
      };
      if (doc.description !== undefined) operation.description = doc.description;
      if (doc.tags.length > 0) operation.tags = [...doc.tags];
      operation.servers = [{ ...SERVERS[server] }];
      operation["x-server"] = server;
      if (!(server === "external" && route.auth)) operation.security = [];
      const parameters = parametersFor(doc, convert);
      if (doc.body !== undefined) {
        operation.requestBody = {
          required: true,
          content: { "application/json": { schema: convert.use(doc.body, "input") } },
        };
      }
      operation.responses = responsesFor(server, route, doc, convert);
      if (route.doc === undefined) operation["x-undocumented"] = true;
      const path = openApiPath(route.path);
      paths[path] ??= {};
      paths[path][route.method.toLowerCase()] = operation;
      pending.push({ operation, parameters });
    }
  }
  convert.convert();
  for (const { operation, parameters } of pending) {
    const expanded = expandParameters(parameters, convert);
    if (expanded.length > 0) operation.parameters = expanded;
  }
  const resolvedPaths = convert.resolve(paths as Json) as JsonObject;
  // Key order inside each operation: keep parameters right after the server fields.
  for (const methods of Object.values(resolvedPaths) as JsonObject[]) {
    for (const [method, operation] of Object.entries(methods) as [string, JsonObject][]) {
      methods[method] = reorder(operation, [
        "operationId",
        "summary",
        "description",
        "tags",
        "servers",
        "x-server",
        "security",
        "x-undocumented",
        "parameters",
        "requestBody",
        "responses",
      ]);
    }
  }
  return {
    openapi: OPENAPI_VERSION,
    info: {
      title: "Compute node control API",
      version: "1.0",
      description: "compute_ctl's two HTTP servers. The external server authenticates with a " +
        "JWT (EdDSA, or RS256 when the JWKS says so) except on the routes with `security: []`; " +
        "the internal server has no auth. Each operation names its server in `servers` and " +
        "`x-server`. Every response carries `x-request-id`; an unknown path is 404 and a " +
        "wrong method 405 with `Allow`, both with an empty body.",
    },
    servers: [{ ...SERVERS.external }, { ...SERVERS.internal }],
    security: [{ JWT: [] }],
    tags: tags.map((name): JsonObject => {
      const description = TAG_DESCRIPTIONS[name];
      return description === undefined ? { name } : { name, description };
    }),
    paths: resolvedPaths,
    components: {
      securitySchemes: { JWT: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
      schemas: convert.components(),
    },
  };
}

function reorder(object: JsonObject, order: readonly string[]): JsonObject {
  const result: JsonObject = {};
  for (const key of order) if (key in object) result[key] = object[key];
  for (const [key, value] of Object.entries(object)) if (!(key in result)) result[key] = value;
  return result;
}

/** The document as `docs/openapi.json` stores it: two-space indented, with a final newline. */
export function renderOpenApiDocument(document: OpenApiDocument): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}
