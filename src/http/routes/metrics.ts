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
  };
}
