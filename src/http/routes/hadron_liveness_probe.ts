/**
 * @module
 * `GET /hadron_liveness_probe`: `pg_isready` against the connstr's port (or
 * the same check in-process when the install has no `pg_isready`). Any
 * status; 200 with the JSON string `"ok"`, 500 when the connstr has no port
 * or Postgres does not accept connections.
 */

import { z } from "zod";
import { errorBodySchema } from "../../api/responses.ts";
import { livenessProbe } from "../../compute/probes.ts";
import type { ComputeNode } from "../../compute/node.ts";
import type { Route } from "../server.ts";

/** Not in Neon's OpenAPI document; the operation id is ours. */
export function hadronLivenessProbeRoute(node: ComputeNode): Route {
  return {
    method: "GET",
    path: "/hadron_liveness_probe",
    auth: true,
    handler: async (c) => c.json(await livenessProbe(node)),
    doc: {
      operationId: "hadronLivenessProbe",
      summary: "Whether Postgres accepts connections (pg_isready)",
      tags: ["Check"],
      responses: {
        200: { description: "Postgres accepts connections", schema: z.literal("ok") },
        500: {
          description: "No port in the connection string, or Postgres does not accept " +
            "connections (pg_isready failed, or the in-process check heard no answer or a " +
            "refusal)",
          schema: errorBodySchema,
        },
      },
    },
  };
}
