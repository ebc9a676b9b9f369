/**
 * @module
 * What both HTTP servers share: a route table turned into a hono app with the
 * reference's middleware (`x-request-id` echoed or generated on every
 * response, request/response logging), an auth slot for the routes that need
 * it, 404 with an empty body for unknown paths, 405 with `Allow` for a wrong
 * method, `{"error"}` bodies for failures, and binding that fails with a
 * message instead of a stack trace.
 */

import { type Context, Hono, type MiddlewareHandler } from "hono";
import type { z } from "zod";
import { getLogger } from "../log.ts";
import { emptyResponse, errorResponse } from "./errors.ts";

const log = getLogger("http");

/** The header carrying the request id. */
export const REQUEST_ID_HEADER = "x-request-id";

/** HTTP methods the routes use. */
export type Method = "GET" | "POST" | "DELETE";

/** One documented response of a route. */
export interface ResponseDoc {
  description: string;
  /** JSON body schema; omitted for empty bodies. */
  schema?: z.ZodType;
  /** Defaults to `application/json` when a schema is given. */
  contentType?: string;
}

/** What the OpenAPI document says about a route; schemas are the same zod objects the code uses. */
export interface RouteDoc {
  operationId: string;
  summary: string;
  tags: string[];
  /** Query parameters, as a zod object. */
  query?: z.ZodObject;
  /** Path parameters, as a zod object (`{name}` segments in the OpenAPI path). */
  params?: z.ZodObject;
  /** JSON request body. */
  body?: z.ZodType;
  responses: Record<number, ResponseDoc>;
}

/** One route: method, exact path, whether it sits behind auth, and its handler. */
export interface Route {
  method: Method;
  path: string;
  /** External routes that the reference protects with a JWT. */
  auth: boolean;
  handler: (c: Context) => Response | Promise<Response>;
  /** Documentation for the OpenAPI document. */
  doc?: RouteDoc;
}

/** Options for {@link buildApp}. */
export interface AppOptions {
  /** `external` or `internal`, for logs. */
  name: string;
  /** Runs before every route marked `auth` (the JWT check plugs in here). */
  auth?: MiddlewareHandler;
}

/** The `Allow` value for a path: methods in registration order, `HEAD` after `GET`. */
export function allowedMethods(routes: readonly Route[], path: string): string[] {
  const methods: string[] = [];
  for (const route of routes) {
    if (route.path !== path || methods.includes(route.method)) continue;
    methods.push(route.method);
    if (route.method === "GET") methods.push("HEAD");
  }
  return methods;
}

/** Middleware: keeps or generates `x-request-id`, logs the request and its outcome. */
export function requestId(name: string): MiddlewareHandler {
  return async (c, next) => {
    const id = c.req.header(REQUEST_ID_HEADER) || crypto.randomUUID();
    const started = performance.now();
    const url = new URL(c.req.url);
    log.debug(`${c.req.method} ${url.pathname}${url.search}`, { server: name, request_id: id });
    await next();
    if (!c.res.headers.has(REQUEST_ID_HEADER)) c.res.headers.set(REQUEST_ID_HEADER, id);
    log.debug("response", {
      server: name,
      request_id: id,
      code: c.res.status,
      latency_ms: Math.round(performance.now() - started),
    });
  };
}

/** Builds the hono app for a route table. */
export function buildApp(routes: readonly Route[], options: AppOptions): Hono {
  const app = new Hono();
  app.use("*", requestId(options.name));
  for (const route of routes) {
    const handler = (c: Context) => route.handler(c);
    if (route.auth && options.auth) app.on(route.method, route.path, options.auth, handler);
    else app.on(route.method, route.path, handler);
  }
  app.notFound((c) => {
    const allow = allowedMethods(routes, c.req.path);
    if (allow.length === 0) return emptyResponse(404);
    return emptyResponse(405, { allow: allow.join(",") });
  });
  app.onError((error) => errorResponse(error));
  return app;
}

/** The server could not listen on its address. */
export class BindError extends Error {
  override name = "BindError";
}

/** A listening server. */
export interface HttpServer extends AsyncDisposable {
  readonly port: number;
  readonly hostname: string;
  shutdown(): Promise<void>;
}

/**
 * Serves `app` on `hostname:port` (port 0 picks a free one). Throws
 * {@link BindError} naming the server and address when binding fails.
 */
export function serveApp(
  app: Hono,
  { name, hostname, port }: { name: string; hostname: string; port: number },
): HttpServer {
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname, port, onListen: () => {} }, app.fetch);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new BindError(
      `failed to bind the compute_ctl ${name} HTTP server to ${hostname}:${port}: ${reason}`,
    );
  }
  const addr = server.addr;
  log.info(`compute_ctl ${name} HTTP server listening at ${addr.hostname}:${addr.port}`);
  return {
    port: addr.port,
    hostname: addr.hostname,
    shutdown: () => server.shutdown(),
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}
