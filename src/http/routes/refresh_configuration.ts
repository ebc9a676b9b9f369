/**
 * @module
 * `POST /refresh_configuration` (internal): the Neon extension's "pageserver
 * reads are failing" signal. Counted, then the configurator re-reads the
 * config; 200 with an empty body, or 500 in a status that does not allow it.
 */

import { errorBodySchema } from "../../api/responses.ts";
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
    doc: {
      operationId: "refreshConfiguration",
      summary: "Ask compute_ctl to re-read its configuration (pageserver reads are failing).",
      description: "Counts `pg_cctl_pagestream_request_errors_total` whatever the outcome. From " +
        "`running`, `failed` or `refresh_configuration_pending` the status becomes " +
        "`refresh_configuration_pending` and the configurator fetches the config again; in " +
        "`init` nothing happens. Does not wait for the refresh.",
      tags: ["Configure"],
      responses: {
        200: { description: "Refresh requested (or nothing to do in `init`); empty body" },
        500: {
          description: "Not allowed in this status: `Cannot refresh compute configuration in " +
            "state <PascalCase status>`",
          schema: errorBodySchema,
        },
      },
    },
  };
}
