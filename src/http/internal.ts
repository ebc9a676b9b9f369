/**
 * @module
 * The internal HTTP server, for processes on the compute itself (the Neon
 * extension): `/extension_server/…`, `/extensions`, `/grants`,
 * `/refresh_configuration`, `/failpoints`. No auth.
 */

import type { FailpointRegistry } from "../compute/failpoints.ts";
import type { ComputeNode } from "../compute/node.ts";
import { extensionServerRoute } from "./routes/extension_server.ts";
import { extensionsRoute } from "./routes/extensions.ts";
import { failpointsRoute } from "./routes/failpoints.ts";
import { grantsRoute } from "./routes/grants.ts";
import { refreshConfigurationRoute } from "./routes/refresh_configuration.ts";
import { buildApp, type HttpServer, type Route, serveApp } from "./server.ts";

/** What the internal routes need beyond the node (from the command line). */
export interface InternalRouteOptions {
  /** The failpoints `POST /failpoints` configures; undefined: 412 (no `--enable-failpoints`). */
  failpoints?: FailpointRegistry;
}

/** The internal routes; the extension server is the node's. */
export function internalRoutes(node: ComputeNode, options: InternalRouteOptions = {}): Route[] {
  return [
    extensionServerRoute(node.services.extensionServer),
    extensionsRoute(node),
    grantsRoute(node),
    refreshConfigurationRoute(node),
    failpointsRoute(options.failpoints),
  ];
}

/** Starts the internal server on `hostname:port`; throws `BindError` if it cannot listen. */
export function startInternalServer(
  node: ComputeNode,
  { port, hostname, ...options }: { port: number; hostname: string } & InternalRouteOptions,
): HttpServer {
  const app = buildApp(internalRoutes(node, options), { name: "internal" });
  return serveApp(app, { name: "internal", hostname, port });
}
