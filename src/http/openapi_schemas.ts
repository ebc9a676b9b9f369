/**
 * @module
 * The schema half of the OpenAPI document: the zod schemas the code validates
 * with, converted by zod's own `z.toJSONSchema` for OpenAPI 3.0, requests as
 * zod input and responses as zod output. A schema becomes a named component
 * when it is in {@link NAMED_SCHEMAS} or carries `.meta({ id: "Name" })`; any
 * other schema is inlined. A component needed both ways whose two renderings
 * differ gets an `Input` twin for the request side. The document itself is
 * assembled in `openapi.ts`.
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

/** A JSON object as the document holds it. */
export type JsonObject = { [key: string]: Json };

/** Where components live; `$ref`s point under it. */
export const COMPONENT_PREFIX = "#/components/schemas/";
const SHARED = "__shared";
const LOCAL_PREFIX = "__local_";

/** Which side of a schema to render: what a request may send, or what a response holds. */
export type Io = "input" | "output";

/**
 * Collects the zod schemas of all route docs, converts them in two passes
 * (request schemas as zod input, response schemas as zod output), and hands
 * out `$ref`s and components. A component needed both ways whose two
 * renderings differ gets an `Input` twin for the request side.
 */
export class SchemaConverter {
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
