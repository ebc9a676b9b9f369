/**
 * @module
 * `GET /status`: the compute's status, timestamps, tenant/timeline and error.
 */

import { computeStatusResponseSchema } from "../../api/responses.ts";
import type { ComputeNode } from "../../compute/node.ts";
import type { Route } from "../server.ts";

/** Always 200 with the status body. */
export function statusRoute(node: ComputeNode): Route {
  return {
    method: "GET",
    path: "/status",
    auth: true,
    handler: (c) => c.json(node.statusResponse()),
    doc: {
      operationId: "getComputeStatus",
      summary: "Get compute node internal status.",
      tags: ["Info"],
      responses: {
        200: { description: "The compute's current state", schema: computeStatusResponseSchema },
      },
    },
  };
}
