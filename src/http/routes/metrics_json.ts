/**
 * @module
 * `GET /metrics.json`: the 13 start-up timings and sizes.
 */

import { computeMetricsSchema } from "../../api/responses.ts";
import type { ComputeNode } from "../../compute/node.ts";
import type { Route } from "../server.ts";

/** Always 200 with `ComputeMetrics`. */
export function metricsJsonRoute(node: ComputeNode): Route {
  return {
    method: "GET",
    path: "/metrics.json",
    auth: true,
    handler: (c) => c.json(node.metricsJson()),
    doc: {
      operationId: "getComputeMetricsJSON",
      summary: "Get compute node start-up metrics in JSON format.",
      tags: ["Info"],
      responses: {
        200: {
          description: "Start-up timings and sizes; all 13 fields, 0 before start-up",
          schema: computeMetricsSchema,
        },
      },
    },
  };
}
