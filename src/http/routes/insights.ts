/**
 * @module
 * `GET /insights`: the 100 slowest statements of `pg_stat_statements` (other
 * users than `cloud_admin`). `running` only (412 otherwise). The 200 body is
 * the `{"pg_stat_statements": [...]}` object itself, where Neon sends it as a
 * JSON string; without the extension the list is empty.
 */

import { computeInsightsSchema } from "../../api/catalog.ts";
import { errorBodySchema } from "../../api/responses.ts";
import { insightsJson } from "../../compute/catalog_api.ts";
import type { ComputeNode } from "../../compute/node.ts";
import type { Route } from "../server.ts";

/** 500 only when Postgres cannot be reached (Neon's handler panics there). */
export function insightsRoute(node: ComputeNode): Route {
  return {
    method: "GET",
    path: "/insights",
    auth: true,
    handler: async () =>
      new Response(await insightsJson(node), {
        headers: { "content-type": "application/json" },
      }),
    doc: {
      operationId: "getComputeInsights",
      summary: "The slowest statements recorded by pg_stat_statements",
      tags: ["Info"],
      responses: {
        200: {
          description:
            "Up to 100 pg_stat_statements rows, slowest first (empty without the extension)",
          schema: computeInsightsSchema,
        },
        412: { description: "The compute is not running", schema: errorBodySchema },
        500: { description: "Postgres could not be reached", schema: errorBodySchema },
      },
    },
  };
}
