/**
 * @module
 * `POST /refresh_configuration` (internal): the Neon extension's "pageserver
 * reads are failing" signal. Counted, then the configurator re-reads the
 * config; 200 with an empty body, or 500 in a status that does not allow it.
 */

import type { ComputeNode } from "../../compute/node.ts";
import { emptyResponse } from "../errors.ts";
import type { Route } from "../server.ts";

/** Does not wait for the refresh itself. */
export function refreshConfigurationRoute(node: ComputeNode): Route {
  return {
    method: "POST",
    path: "/refresh_configuration",
    auth: false,
    handler: () => {
      node.refreshConfiguration();
      return emptyResponse(200);
    },
  };
}
