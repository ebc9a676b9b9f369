/**
 * @module
 * The internal HTTP server, for processes on the compute itself (the Neon
 * extension): `/refresh_configuration`. No auth.
 */

import type { ComputeNode } from "../compute/node.ts";
import { refreshConfigurationRoute } from "./routes/refresh_configuration.ts";
import { buildApp, type HttpServer, type Route, serveApp } from "./server.ts";

/** The internal routes. */
export function internalRoutes(node: ComputeNode): Route[] {
  return [refreshConfigurationRoute(node)];
}

/** Starts the internal server on `hostname:port`; throws `BindError` if it cannot listen. */
export function startInternalServer(
  node: ComputeNode,
  { port, hostname }: { port: number; hostname: string },
): HttpServer {
  const app = buildApp(internalRoutes(node), { name: "internal" });
  return serveApp(app, { name: "internal", hostname, port });
}
