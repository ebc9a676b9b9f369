/**
 * @module
 * What both HTTP servers share: a route table turned into a hono app with the
 * reference's middleware (`x-request-id` echoed or generated on every
 * response), one info log line and the HTTP metrics per request (labelled with
 * the route table's path, never the raw URL), an auth slot for the routes that
 * need it, 404 with an empty body for unknown paths, 405 with `Allow` for a
 * wrong method, `{"error"}` bodies for every failure (nothing a request does
 * can crash the process or drop its connection), and binding that fails with a
 * message instead of a stack trace.
 */

import { type Context, Hono, type MiddlewareHandler } from "hono";
import type { z } from "zod";
import { errorMessage, getDirectLogger, getLogger } from "../log.ts";
import { observeHttpRequest, UNMATCHED_ROUTE } from "../metrics.ts";
import { emptyResponse, errorResponse } from "./errors.ts";
import type { RejectionStyle } from "./rejections.ts";

const log = getLogger("http");
/** The per-request lines: see {@linkcode getDirectLogger}. */
const requestLog = getDirectLogger("http");

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
  /** Longer text (CommonMark) when the summary is not enough. */
  description?: string;
  tags: string[];
  /** Query parameters, as a zod object. */
  query?: z.ZodObject;
  /** Path parameters, as a zod object (`{name}` segments in the OpenAPI path). */
  params?: z.ZodObject;
  /** JSON request body; its refusals (400/413/415/422) are documented from `rejections.ts`. */
  body?: z.ZodType;
  /** How the route answers a body it refuses; default `json`. */
  bodyRejections?: RejectionStyle;
  /** The route's own answers; auth and body refusals are added by the document. */
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

/** The context variables the middleware shares: the matched route's path. */
export type AppEnv = { Variables: { route: string } };

/**
 * A matcher for a route path in hono's syntax: `:name` is one segment,
 * `:name{regex}` a segment matching the regex (which may span `/`), `*` anything.
 */
export function pathPattern(path: string): RegExp {
  let source = "";
  for (const part of path.split(/(:[A-Za-z_][A-Za-z0-9_]*(?:\{[^}]*\})?|\*)/)) {
    if (part === "*") source += ".*";
    else if (part.startsWith(":")) {
      const custom = /\{([^}]*)\}$/.exec(part);
      source += custom ? `(?:${custom[1]})` : "[^/]+";
    } else source += part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

/** The route-table path that `requestPath` matches, or undefined. */
export function matchRoutePath(routes: readonly Route[], requestPath: string): string | undefined {
  return routes.find((route) => pathPattern(route.path).test(requestPath))?.path;
}

/** The `Allow` value for a request path: methods in registration order, `HEAD` after `GET`. */
export function allowedMethods(routes: readonly Route[], path: string): string[] {
  const methods: string[] = [];
  for (const route of routes) {
    if (methods.includes(route.method) || !pathPattern(route.path).test(path)) continue;
    methods.push(route.method);
    if (route.method === "GET") methods.push("HEAD");
  }
  return methods;
}

/**
 * The path and query of a serialized http(s) URL, as `pathname + search` of
 * `new URL(url)` without parsing it again: the path starts at the first `/`
 * after the authority (which a serialized URL never has a raw `/` in), and an
 * empty query is no `search` at all.
 */
export function pathAndQuery(url: string): string {
  const authority = url.indexOf("://");
  const start = authority < 0 ? -1 : url.indexOf("/", authority + 3);
  if (start < 0) {
    const parsed = new URL(url);
    return `${parsed.pathname}${parsed.search}`;
  }
  const hash = url.indexOf("#", start);
  const path = hash < 0 ? url.slice(start) : url.slice(start, hash);
  return path.endsWith("?") && path.indexOf("?") === path.length - 1 ? path.slice(0, -1) : path;
}

/** `response` with `name: value` set, copying it first when its headers are immutable. */
function withHeader(response: Response, name: string, value: string): Response {
  try {
    response.headers.set(name, value);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set(name, value);
    return copy;
  }
}

/**
 * Middleware: keeps or generates `x-request-id`, then after the response
 * records the HTTP metrics and writes one info line (method, path, status,
 * latency, request id).
 */
export function requestId(name: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const id = c.req.header(REQUEST_ID_HEADER) || crypto.randomUUID();
    const started = performance.now();
    const path = pathAndQuery(c.req.url);
    requestLog.debug(`${c.req.method} ${path}`, { server: name, request_id: id });
    try {
      await next();
    } catch (error) {
      // hono hands only `Error`s to `onError`; anything else thrown lands here.
      c.res = safeErrorResponse(error);
    } finally {
      // Assigning `c.res` makes hono copy the response (body stream and all):
      // only a response whose headers cannot be changed in place is replaced.
      const response = c.res;
      if (!response.headers.has(REQUEST_ID_HEADER)) {
        const withId = withHeader(response, REQUEST_ID_HEADER, id);
        if (withId !== response) c.res = withId;
      }
      const seconds = (performance.now() - started) / 1000;
      const status = c.res.status;
      const route = c.get("route") ?? UNMATCHED_ROUTE;
      observeHttpRequest({ server: name, route, method: c.req.method, status }, seconds);
      requestLog.info("request", {
        server: name,
        method: c.req.method,
        path,
        status,
        latency_ms: Math.round(seconds * 1000),
        request_id: id,
      });
    }
  };
}

/** Turns anything thrown into a response; never throws itself. */
function safeErrorResponse(error: unknown): Response {
  try {
    return errorResponse(error);
  } catch {
    log.error("a request failed with an unprintable error");
    return new Response(JSON.stringify({ error: "internal server error" }), {
      status: 500,
      headers: { "content-type": "application/json" },
    });
  }
}

/** Builds the hono app for a route table. */
export function buildApp(routes: readonly Route[], options: AppOptions): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use("*", requestId(options.name));
  // The route's path is recorded by its first handler (each layer of
  // middleware costs every request an extra step), so an auth refusal is
  // still counted under its route.
  for (const route of routes) {
    const { auth } = options;
    if (route.auth && auth) {
      const tagThenAuth: MiddlewareHandler<AppEnv> = (c, next) => {
        c.set("route", route.path);
        return auth(c, next);
      };
      app.on(route.method, route.path, tagThenAuth, (c) => route.handler(c));
    } else {
      app.on(route.method, route.path, (c) => {
        c.set("route", route.path);
        return route.handler(c);
      });
    }
  }
  app.notFound((c) => {
    const matched = matchRoutePath(routes, c.req.path);
    if (matched === undefined) return emptyResponse(404);
    c.set("route", matched);
    return emptyResponse(405, { allow: allowedMethods(routes, c.req.path).join(",") });
  });
  app.onError((error) => safeErrorResponse(error));
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
  app: Hono<AppEnv>,
  { name, hostname, port }: { name: string; hostname: string; port: number },
): HttpServer {
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname,
      port,
      onListen: () => {},
      // Last resort: whatever escaped the app still gets an answer.
      onError: (error) => safeErrorResponse(error),
    }, app.fetch);
  } catch (error) {
    throw new BindError(
      `failed to bind the compute_ctl ${name} HTTP server to ${hostname}:${port}: ` +
        errorMessage(error),
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
