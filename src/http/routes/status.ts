/**
 * @module
 * `GET /status`: the compute's status, timestamps, tenant/timeline and error.
 */

import type { ComputeNode } from "../../compute/node.ts";
import type { Route } from "../server.ts";

/** Always 200 with the status body. */
export function statusRoute(node: ComputeNode): Route {
  return {
    method: "GET",
    path: "/status",
    auth: true,
    handler: (c) => c.json(node.statusResponse()),
  };
}
