/**
 * @module
 * The external HTTP server (control plane, metrics scraper): `/status`,
 * `/metrics`, `/metrics.json`, `/configure`, `/terminate`, `/openapi.json`, …. Routes marked
 * `auth` get the `auth` middleware when one is given: `main` passes the JWT check of `auth.ts`
 * (`jwtAuth`, keyed by `compute_ctl_config.jwks`).
 */

import type { MiddlewareHandler } from "hono";
import type { ComputeNode } from "../compute/node.ts";
import { internalRoutes } from "./internal.ts";
import { buildOpenApiDocument } from "./openapi.ts";
import { autoscalingMetricsRoute } from "./routes/autoscaling_metrics.ts";
import { checkWritabilityRoute } from "./routes/check_writability.ts";
import { configureRoute } from "./routes/configure.ts";
import { databaseSchemaRoute } from "./routes/database_schema.ts";
import { dbsAndRolesRoute } from "./routes/dbs_and_roles.ts";
import { hadronLivenessProbeRoute } from "./routes/hadron_liveness_probe.ts";
import { insightsRoute } from "./routes/insights.ts";
import { lfcOffloadStartRoute, lfcOffloadStateRoute } from "./routes/lfc_offload.ts";
import {
  lfcPrewarmCancelRoute,
  lfcPrewarmStartRoute,
  lfcPrewarmStateRoute,
} from "./routes/lfc_prewarm.ts";
import { metricsRoute } from "./routes/metrics.ts";
import { metricsJsonRoute } from "./routes/metrics_json.ts";
import { openapiRoute } from "./routes/openapi.ts";
import { promoteRoute } from "./routes/promote.ts";
import { statusRoute } from "./routes/status.ts";
import { terminateRoute } from "./routes/terminate.ts";
import { buildApp, type HttpServer, type Route, serveApp } from "./server.ts";

/** The external routes, in the reference's order; the services are the node's. */
export function externalRoutes(node: ComputeNode): Route[] {
  const { lfc, promoter } = node.services;
  const routes: Route[] = [
    metricsRoute(),
    // The internal table is built again here only for its documentation.
    openapiRoute(() => buildOpenApiDocument({ external: routes, internal: internalRoutes(node) })),
    autoscalingMetricsRoute(node),
    lfcPrewarmStateRoute(lfc),
    lfcPrewarmStartRoute(lfc),
    lfcPrewarmCancelRoute(lfc),
    lfcOffloadStateRoute(lfc),
    lfcOffloadStartRoute(lfc),
    promoteRoute(promoter),
    checkWritabilityRoute(node),
    configureRoute(node),
    databaseSchemaRoute(node),
    dbsAndRolesRoute(node),
    insightsRoute(node),
    metricsJsonRoute(node),
    statusRoute(node),
    terminateRoute(node),
    hadronLivenessProbeRoute(node),
  ];
  return routes;
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
