/**
 * @module
 * The harness admin API: what the control plane serves under `/harness/`, so
 * tests, `deno task failover` and anyone with curl can break and mend the
 * cluster. JSON in and out; every failure is `{"error": "…"}` with 404 for an
 * unknown path or id, 405 for a wrong method, 400 for a bad body and 409 for
 * a move the cluster's state forbids.
 *
 * - `GET /harness/state` → `cluster.json`
 * - `POST /harness/pageservers/{id}/{stop|start|kill}` → `{id, running}`
 * - `POST /harness/safekeepers/{id}/{stop|start|kill}` → `{id, running}`
 * - `POST /harness/computes/{id}/start` → its `cluster.json` entry, once running
 * - `POST /harness/computes/{id}/{stop|kill}` → `{id, exit_code}`
 * - `POST /harness/computes` `{mode, lsn?, tenant_id?, timeline_id?}` → 201, the
 *   new compute's `cluster.json` entry, once running
 * - `POST /harness/tenants/{tenant_id}/migrate` `{to, notify?}` → the migration
 * - `POST /harness/tenants/{tenant_id}/timelines` `{timeline_id, import_pgdata}` →
 *   201 `{tenant_id, timeline_id, initial_lsn}`: a timeline made from the PGDATA
 *   fast_import published in the directory `import_pgdata`
 *
 * Each route is a line of the table below: its body schema (zod) and one call
 * on the cluster; the logic lives in `_cluster_operations.ts`.
 */

import { z } from "zod";
import { parseLsn } from "../src/api/lsn.ts";
import { formatIssues } from "../src/api/spec.ts";
import type { Cluster } from "./cluster.ts";
import type { ClusterOperations, ComponentAction, NewComputeMode } from "./_cluster_operations.ts";
import { HarnessBadRequestError, HarnessConflictError, HarnessNotFoundError } from "./_errors.ts";
import { HEX_ID_PATTERN } from "../src/api/ids.ts";

/** The part of a cluster the admin API drives. */
export type AdminCluster = Pick<Cluster, "clusterJson" | "computeJson"> & ClusterOperations;

/** What a route answers: a status and a JSON body. */
export interface AdminAnswer {
  status: number;
  body: unknown;
}

/** One route: method, path (URLPattern syntax), body schema, and the call it makes. */
export interface AdminRoute {
  method: "GET" | "POST";
  path: string;
  /** Validates the JSON body; routes without one ignore the body. */
  parseBody?: (json: unknown) => z.ZodSafeParseResult<unknown>;
  run(cluster: AdminCluster, params: Record<string, string>, body: unknown): Promise<AdminAnswer>;
}

const ACTION = ":action(stop|start|kill)";
const hexId = z.string().regex(HEX_ID_PATTERN, "expected 32 hex digits");
const lsnText = z.string().refine(isLsn, "expected an LSN like 0/16B3748");

const addComputeBody = z.discriminatedUnion("mode", [
  z.strictObject({
    mode: z.literal("Static"),
    lsn: lsnText,
    tenant_id: hexId.optional(),
    timeline_id: hexId.optional(),
  }),
  z.strictObject({
    mode: z.literal("Replica"),
    tenant_id: hexId.optional(),
    timeline_id: hexId.optional(),
  }),
]);

const migrateBody = z.strictObject({
  to: z.number().int().positive(),
  notify: z.boolean().default(true),
});

const importTimelineBody = z.strictObject({
  timeline_id: hexId,
  import_pgdata: z.string().min(1, "expected the directory fast_import published to"),
});

/** Every route of the admin API. */
export const ADMIN_ROUTES: readonly AdminRoute[] = [
  route("GET", "/harness/state", null, (cluster) => ok(cluster.clusterJson())),
  route(
    "POST",
    `/harness/pageservers/:id(\\d+)/${ACTION}`,
    null,
    async (cluster, { id, action }) =>
      ok(await cluster.pageserverAction(Number(id), action as ComponentAction)),
  ),
  route(
    "POST",
    `/harness/safekeepers/:id(\\d+)/${ACTION}`,
    null,
    async (cluster, { id, action }) =>
      ok(await cluster.safekeeperAction(Number(id), action as ComponentAction)),
  ),
  route("POST", `/harness/computes/:id/${ACTION}`, null, async (cluster, { id, action }) => {
    if (action === "start") {
      return ok(cluster.computeJson((await cluster.computeAction(id, "start")).id));
    }
    const exitCode = await cluster.computeAction(id, action as "stop" | "kill");
    return ok({ id, exit_code: exitCode });
  }),
  route("POST", "/harness/computes", addComputeBody, async (cluster, _params, body) => {
    const mode: NewComputeMode = body.mode === "Static"
      ? { mode: "Static", lsn: body.lsn }
      : { mode: "Replica" };
    const timeline = { tenantId: body.tenant_id, timelineId: body.timeline_id };
    const compute = await cluster.addCompute(mode, timeline);
    return { status: 201, body: cluster.computeJson(compute.id) };
  }),
  route(
    "POST",
    "/harness/tenants/:tenantId/migrate",
    migrateBody,
    async (cluster, { tenantId }, { to, notify }) =>
      ok(await cluster.migrateTenant(tenantId, to, { notify })),
  ),
  route(
    "POST",
    "/harness/tenants/:tenantId/timelines",
    importTimelineBody,
    async (cluster, { tenantId }, { timeline_id, import_pgdata }) => ({
      status: 201,
      body: await cluster.importTimeline(tenantId, timeline_id, import_pgdata),
    }),
  ),
];

/** Where a request goes: its route and path parameters, or the error answer. */
export type RouteMatch =
  | { route: AdminRoute; params: Record<string, string> }
  | { error: AdminAnswer; allow?: string[] };

/**
 * Finds the route of `method pathname`: 404 when no route has the path, 405
 * (with the methods it allows) when none of those has the method.
 */
export function matchAdminRoute(
  method: string,
  pathname: string,
  routes: readonly AdminRoute[] = ADMIN_ROUTES,
): RouteMatch {
  const allow: string[] = [];
  for (const candidate of routes) {
    const match = patternOf(candidate).exec({ pathname });
    if (!match) continue;
    if (candidate.method !== method) {
      allow.push(candidate.method);
      continue;
    }
    const params: Record<string, string> = {};
    for (const [name, value] of Object.entries(match.pathname.groups)) {
      if (value === undefined) continue;
      try {
        params[name] = decodeURIComponent(value);
      } catch {
        return { error: fail(404, `no route for ${method} ${pathname}`) };
      }
    }
    return { route: candidate, params };
  }
  if (allow.length > 0) {
    return { error: fail(405, `method ${method} not allowed on ${pathname}`), allow };
  }
  return { error: fail(404, `no route for ${method} ${pathname}`) };
}

/** The body a route receives: the parsed, checked JSON; or a 400 answer naming what is wrong. */
export function parseAdminBody(
  route: AdminRoute,
  text: string,
): { body: unknown } | { error: AdminAnswer } {
  if (!route.parseBody) return { body: undefined };
  if (text.trim() === "") return { error: fail(400, "a JSON body is required") };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { error: fail(400, `invalid JSON body: ${(error as Error).message}`) };
  }
  const parsed = route.parseBody(json);
  if (!parsed.success) return { error: fail(400, `invalid body: ${formatIssues(parsed.error)}`) };
  return { body: parsed.data };
}

/** The status an operation's error answers: 404, 409, 400, or 500 for anything unexpected. */
export function statusOfError(error: unknown): number {
  if (error instanceof HarnessNotFoundError) return 404;
  if (error instanceof HarnessConflictError) return 409;
  if (error instanceof HarnessBadRequestError) return 400;
  return 500;
}

/** The request handler the control plane calls for every path under `/harness/`. */
export function createAdminHandler(cluster: AdminCluster): (request: Request) => Promise<Response> {
  return async (request) => {
    const matched = matchAdminRoute(request.method, new URL(request.url).pathname);
    if ("error" in matched) {
      const headers = matched.allow ? { allow: matched.allow.join(", ") } : undefined;
      return Response.json(matched.error.body, { status: matched.error.status, headers });
    }
    const parsed = parseAdminBody(matched.route, await request.text());
    if ("error" in parsed) return Response.json(parsed.error.body, { status: parsed.error.status });
    try {
      const answer = await matched.route.run(cluster, matched.params, parsed.body);
      return Response.json(answer.body, { status: answer.status });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return Response.json({ error: message }, { status: statusOfError(error) });
    }
  };
}

/** A typed route: `run` gets the body `schema` produced (nothing when `schema` is null). */
function route<S extends z.ZodType | null>(
  method: AdminRoute["method"],
  path: string,
  schema: S,
  run: (
    cluster: AdminCluster,
    params: Record<string, string>,
    body: S extends z.ZodType ? z.output<S> : undefined,
  ) => AdminAnswer | Promise<AdminAnswer>,
): AdminRoute {
  return {
    method,
    path,
    parseBody: schema === null ? undefined : (json) => schema.safeParse(json),
    run: async (cluster, params, body) =>
      await run(cluster, params, body as S extends z.ZodType ? z.output<S> : undefined),
  };
}

const patterns = new WeakMap<AdminRoute, URLPattern>();

function patternOf(candidate: AdminRoute): URLPattern {
  let pattern = patterns.get(candidate);
  if (!pattern) {
    pattern = new URLPattern({ pathname: candidate.path });
    patterns.set(candidate, pattern);
  }
  return pattern;
}

function ok(body: unknown): AdminAnswer {
  return { status: 200, body };
}

function fail(status: number, error: string): AdminAnswer {
  return { status, body: { error } };
}

function isLsn(text: string): boolean {
  try {
    parseLsn(text);
    return true;
  } catch {
    return false;
  }
}
