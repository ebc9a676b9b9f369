/**
 * @module
 * `GET /metrics.json`: the 13 start-up timings and sizes.
 */

import type { ComputeNode } from "../../compute/node.ts";
import type { Route } from "../server.ts";

/** Always 200 with `ComputeMetrics`. */
export function metricsJsonRoute(node: ComputeNode): Route {
  return {
    method: "GET",
    path: "/metrics.json",
    auth: true,
    handler: (c) => c.json(node.metricsJson()),
  };
}
