/**
 * @module
 * `GET /metrics`: the Prometheus families in text format 0.0.4, without auth.
 */

import { METRICS_CONTENT_TYPE, renderMetrics } from "../../metrics.ts";
import type { Route } from "../server.ts";

/** Always 200 with the rendered registry. */
export function metricsRoute(): Route {
  return {
    method: "GET",
    path: "/metrics",
    auth: false,
    handler: async () =>
      new Response(await renderMetrics(), {
        headers: { "content-type": METRICS_CONTENT_TYPE },
      }),
    doc: {
      operationId: "getComputeMetrics",
      summary: "Get compute node metrics in Prometheus text format.",
      description: "Neon's families, then `process_*` and the `compute_ctl_http_*` request " +
        "metrics (additions of this implementation). Label vectors without series are omitted.",
      tags: ["Info"],
      responses: {
        200: { description: "Prometheus text format 0.0.4", contentType: METRICS_CONTENT_TYPE },
      },
    },
  };
}
