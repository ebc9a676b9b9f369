/**
 * @module
 * The external HTTP server (control plane, metrics scraper): `/status`,
 * `/metrics`, `/metrics.json`, `/configure`, `/terminate`. Routes marked
 * `auth` get the `auth` middleware when one is given (JWT, a later issue).
 */

import type { MiddlewareHandler } from "hono";
import type { ComputeNode } from "../compute/node.ts";
import { configureRoute } from "./routes/configure.ts";
import { metricsRoute } from "./routes/metrics.ts";
import { metricsJsonRoute } from "./routes/metrics_json.ts";
import { statusRoute } from "./routes/status.ts";
import { terminateRoute } from "./routes/terminate.ts";
import { buildApp, type HttpServer, type Route, serveApp } from "./server.ts";

/** The external routes, in the reference's order. */
export function externalRoutes(node: ComputeNode): Route[] {
  return [
    metricsRoute(),
    configureRoute(node),
    metricsJsonRoute(node),
    statusRoute(node),
    terminateRoute(node),
  ];
}

/** Options for {@link startExternalServer}. */
export interface ExternalServerOptions {
  port: number;
  /** Default `0.0.0.0`. */
  hostname?: string;
  auth?: MiddlewareHandler;
}

/** Starts the external server; throws `BindError` if it cannot listen. */
export function startExternalServer(
  node: ComputeNode,
  { port, hostname = "0.0.0.0", auth }: ExternalServerOptions,
): HttpServer {
  const app = buildApp(externalRoutes(node), { name: "external", auth });
  return serveApp(app, { name: "external", hostname, port });
}
