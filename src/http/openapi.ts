/**
 * @module
 * The OpenAPI 3.0.3 document of both HTTP servers, generated from their route
 * tables: each route's `doc` (Neon's operationIds and tags) and the very zod
 * schemas the code validates with, converted by `z.toJSONSchema` for OpenAPI
 * 3.0. Corrected where Neon's `openapi_spec.yaml` disagrees with the wire:
 * both servers are modelled (two `servers`, and per operation its own server
 * plus `x-server`), unauthenticated routes carry `security: []`, and the auth
 * (400/401/403) and body (400/413/415/422) errors are documented on every route
 * that can produce them.
 *
 * A zod schema becomes a named component when it is in {@link NAMED_SCHEMAS}
 * or carries `.meta({ id: "Name" })`; any other schema is inlined.
 */

import { z } from "zod";
import {
  catalogObjectsSchema,
  computeInsightsSchema,
  extensionInstallRequestSchema,
  extensionInstallResponseSchema,
  setRoleGrantsRequestSchema,
} from "../api/catalog.ts";
import { computeCtlConfigSchema, configurationRequestSchema } from "../api/config.ts";
import { lfcOffloadStateSchema, lfcPrewarmStateSchema } from "../api/lfc.ts";
import { promoteConfigSchema, promoteStateSchema } from "../api/promote.ts";
import {
  computeMetricsSchema,
  computeStatusResponseSchema,
  computeStatusSchema,
  errorBodySchema,
  terminateResponseSchema,
} from "../api/responses.ts";
import { computeSpecSchema, databaseSchema, genericOptionSchema, roleSchema } from "../api/spec.ts";
import type { ResponseDoc, Route, RouteDoc } from "./server.ts";

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

/** The api/ schemas under the names Neon's `openapi_spec.yaml` gives them. */
export const NAMED_SCHEMAS: ReadonlyArray<readonly [z.ZodType, string]> = [
  [computeStatusResponseSchema, "ComputeState"],
  [computeStatusSchema, "ComputeStatus"],
  [computeMetricsSchema, "ComputeMetrics"],
  [terminateResponseSchema, "TerminateResponse"],
  [errorBodySchema, "GenericError"],
  [configurationRequestSchema, "ComputeSchema"],
  [computeSpecSchema, "ComputeSpec"],
  [computeCtlConfigSchema, "ComputeCtlConfig"],
  [roleSchema, "Role"],
  [databaseSchema, "Database"],
  [genericOptionSchema, "GenericOption"],
  [catalogObjectsSchema, "DbsAndRoles"],
  [computeInsightsSchema, "ComputeInsights"],
  [extensionInstallRequestSchema, "ExtensionInstallRequest"],
  [extensionInstallResponseSchema, "ExtensionInstallResult"],
  // Neon's SetRoleGrantsResponse is the same object: the request echoed.
  [setRoleGrantsRequestSchema, "SetRoleGrantsRequest"],
  [lfcPrewarmStateSchema, "LfcPrewarmState"],
  [lfcOffloadStateSchema, "LfcOffloadState"],
  [promoteConfigSchema, "ComputeSchemaWithLsn"],
  [promoteStateSchema, "PromoteState"],
];

/** A JSON value as the document holds it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** The generated document (plain JSON). */
export type OpenApiDocument = JsonObject;

const COMPONENT_PREFIX = "#/components/schemas/";
const SHARED = "__shared";
const LOCAL_PREFIX = "__local_";

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

type Io = "input" | "output";

/**
 * Collects the zod schemas of all route docs, converts them in two passes
 * (request schemas as zod input, response schemas as zod output), and hands
 * out `$ref`s and components. A component needed both ways whose two
 * renderings differ gets an `Input` twin for the request side.
 */
class SchemaConverter {
  #names = new Map<z.ZodType, string>();
  #locals = new Map<z.ZodType, string>();
  #registries: Record<Io, z.core.$ZodRegistry<{ id: string }>> = {
    input: z.registry<{ id: string }>(),
    output: z.registry<{ id: string }>(),
  };
  #roots: Record<Io, Set<string>> = { input: new Set(), output: new Set() };
  #json: Record<Io, Record<string, JsonObject>> = { input: {}, output: {} };
  #reached: Record<Io, Set<string>> = { input: new Set(), output: new Set() };
  #inputRenames = new Map<string, string>();

  constructor() {
    for (const [schema, name] of NAMED_SCHEMAS) this.#register(schema, name, this.#names);
  }

  #register(schema: z.ZodType, id: string, into: Map<z.ZodType, string>): void {
    into.set(schema, id);
    this.#registries.input.add(schema, { id });
    this.#registries.output.add(schema, { id });
  }

  /** Registers `schema` for `io`; returns a placeholder that {@link resolve} replaces. */
  use(schema: z.ZodType, io: Io): JsonObject {
    let named = this.#names.get(schema);
    if (named === undefined && globalId(schema) !== undefined) {
      named = globalId(schema)!;
      this.#register(schema, named, this.#names);
    }
    if (named !== undefined) {
      this.#roots[io].add(named);
      return { __ref: named, __io: io };
    }
    let id = this.#locals.get(schema);
    if (id === undefined) {
      id = `${LOCAL_PREFIX}${this.#locals.size}`;
      this.#register(schema, id, this.#locals);
    }
    this.#roots[io].add(id);
    return { __local: id, __io: io };
  }

  /** Runs both conversions; call once, after every {@link use}. */
  convert(): void {
    for (const io of ["input", "output"] as const) {
      this.#json[io] = convertRegistry(this.#registries[io], io);
      this.#reached[io] = this.#closure(io);
    }
    for (const name of this.#reached.input) {
      if (!this.#reached.output.has(name)) continue;
      if (!sameJson(this.#json.input[name], this.#json.output[name])) {
        this.#inputRenames.set(name, `${name}Input`);
      }
    }
  }

  /** The component names reachable from the roots of `io`, locals excluded. */
  #closure(io: Io): Set<string> {
    const reached = new Set<string>();
    const visit = (value: Json) => {
      if (Array.isArray(value)) return value.forEach(visit);
      if (value === null || typeof value !== "object") return;
      const ref = value.$ref;
      if (typeof ref === "string" && ref.startsWith(COMPONENT_PREFIX)) {
        const name = ref.slice(COMPONENT_PREFIX.length);
        if (name.startsWith(LOCAL_PREFIX)) {
          throw new Error(
            "a route schema is also used inside another schema: give it .meta({ id: <Name> })",
          );
        }
        if (!reached.has(name)) {
          reached.add(name);
          visit(this.#json[io][name]);
        }
      }
      Object.values(value).forEach(visit);
    };
    for (const root of this.#roots[io]) {
      if (!root.startsWith(LOCAL_PREFIX)) reached.add(root);
      visit(this.#json[io][root]);
    }
    return reached;
  }

  /** Replaces the placeholders in `value` by `$ref`s or inlined schemas. */
  resolve(value: Json): Json {
    if (Array.isArray(value)) return value.map((item) => this.resolve(item));
    if (value === null || typeof value !== "object") return value;
    const io = value.__io as Io | undefined;
    if (io !== undefined && typeof value.__ref === "string") {
      return { $ref: COMPONENT_PREFIX + this.#componentName(value.__ref, io) };
    }
    if (io !== undefined && typeof value.__local === "string") return this.inline(value);
    const result: JsonObject = {};
    for (const [key, item] of Object.entries(value)) result[key] = this.resolve(item);
    return result;
  }

  /** The JSON schema behind a placeholder, with its `$ref`s final. */
  inline(placeholder: JsonObject): JsonObject {
    const io = placeholder.__io as Io;
    const id = (placeholder.__local ?? placeholder.__ref) as string;
    return this.#finalRefs(this.#json[io][id], io);
  }

  /** Every component some operation needs, in name order. */
  components(): Record<string, JsonObject> {
    const all: Record<string, JsonObject> = {};
    for (const name of this.#reached.output) all[name] = this.#json.output[name];
    for (const name of this.#reached.input) {
      all[this.#componentName(name, "input")] = this.#finalRefs(this.#json.input[name], "input");
    }
    const result: Record<string, JsonObject> = {};
    for (const name of Object.keys(all).sort()) result[name] = all[name];
    return result;
  }

  #componentName(name: string, io: Io): string {
    return io === "input" ? this.#inputRenames.get(name) ?? name : name;
  }

  #finalRefs(json: JsonObject, io: Io): JsonObject {
    if (io === "output" || this.#inputRenames.size === 0) return json;
    const rename = (value: Json): Json => {
      if (Array.isArray(value)) return value.map(rename);
      if (value === null || typeof value !== "object") return value;
      const result: JsonObject = {};
      for (const [key, item] of Object.entries(value)) {
        if (key === "$ref" && typeof item === "string" && item.startsWith(COMPONENT_PREFIX)) {
          result[key] = COMPONENT_PREFIX +
            this.#componentName(item.slice(COMPONENT_PREFIX.length), "input");
        } else result[key] = rename(item);
      }
      return result;
    };
    return rename(json) as JsonObject;
  }
}

function globalId(schema: z.ZodType): string | undefined {
  const id = z.globalRegistry.get(schema)?.id;
  return typeof id === "string" ? id : undefined;
}

function sameJson(a: Json, b: Json): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Converts a registry to `{ id: schema }` for OpenAPI 3.0: `$ref`s point at
 * `#/components/schemas/<id>`, schemas named only through `.meta({ id })` are
 * hoisted from zod's shared definitions, and `$id`/`$schema`/`id` and
 * `additionalProperties: false` are dropped.
 */
function convertRegistry(
  registry: z.core.$ZodRegistry<{ id: string }>,
  io: Io,
): Record<string, JsonObject> {
  const { schemas } = z.toJSONSchema(registry, {
    target: "openapi-3.0",
    io,
    unrepresentable: "any",
    uri: (id) => `${COMPONENT_PREFIX}${id}`,
  }) as unknown as { schemas: Record<string, JsonObject> };
  const result: Record<string, JsonObject> = {};
  const shared = (schemas[SHARED]?.definitions ?? {}) as Record<string, JsonObject>;
  for (const [name, json] of Object.entries({ ...shared, ...schemas })) {
    if (name !== SHARED) result[name] = clean(json, io) as JsonObject;
  }
  return result;
}

function clean(value: Json, io: Io): Json {
  if (Array.isArray(value)) return value.map((item) => clean(item, io));
  if (value === null || typeof value !== "object") return value;
  const result: JsonObject = {};
  for (const [key, item] of Object.entries(value)) {
    if (key === "$id" || key === "$schema" || key === "id") continue;
    // zod's output rendering closes every object; answers may grow fields, so leave them open.
    if (io === "output" && key === "additionalProperties" && item === false) continue;
    if (key === "$ref" && typeof item === "string") {
      const hoisted = /#\/components\/schemas\/__shared#\/definitions\/(.+)$/.exec(item);
      result[key] = hoisted ? `${COMPONENT_PREFIX}${hoisted[1]}` : item;
    } else result[key] = clean(item, io);
  }
  return result;
}

/** What every route gets on top of its own doc: auth and body errors. */
function implicitResponses(
  server: ServerName,
  route: Route,
  doc: RouteDoc,
): Record<number, ResponseDoc> {
  const extra: Record<number, ResponseDoc> = {};
  if (server === "external" && route.auth) {
    extra[400] = { description: "Missing or non-Bearer `Authorization` header" };
    extra[401] = {
      description: "The token failed verification, or an admin token has a missing or wrong `aud`",
    };
    extra[403] = { description: "A non-admin token without this compute's `compute_id`" };
  }
  if (doc.body !== undefined) {
    const malformed = "Body is not valid JSON";
    extra[400] = {
      description: extra[400] ? `${extra[400].description}; or: ${malformed}` : malformed,
    };
    extra[413] = { description: "Body larger than 2 MiB" };
    extra[415] = { description: "Body without `Content-Type: application/json`" };
    extra[422] = { description: "JSON of the wrong shape; the message names the field's path" };
  }
  return extra;
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
  for (const [code, response] of Object.entries(implicitResponses(server, route, doc))) {
    const status = Number(code);
    const existing = merged.get(status);
    if (existing === undefined) {
      merged.set(status, {
        description: response.description,
        content: { "application/json": { schema: GENERIC_ERROR_REF } },
      });
    } else if (!String(existing.description).includes(response.description)) {
      existing.description = `${existing.description}; or: ${response.description}`;
      const content = (existing.content ?? {}) as JsonObject;
      content["application/json"] ??= { schema: GENERIC_ERROR_REF };
      existing.content = content;
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
