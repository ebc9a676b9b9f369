/**
 * @module
 * `POST /check_writability`: upsert `public.health_check` to prove the
 * compute can write. `running` only (412 otherwise); 200 with the JSON
 * boolean `true`; 500 with the driver's message when the write fails.
 */

import { z } from "zod";
import { errorBodySchema } from "../../api/responses.ts";
import { checkWritability } from "../../compute/probes.ts";
import type { ComputeNode } from "../../compute/node.ts";
import type { Route } from "../server.ts";

/** No body; a full disk (SQLSTATE 53100) still answers `true`. */
export function checkWritabilityRoute(node: ComputeNode): Route {
  return {
    method: "POST",
    path: "/check_writability",
    auth: true,
    handler: async (c) => c.json(await checkWritability(node)),
    doc: {
      operationId: "checkComputeWritability",
      summary: "Check that the compute can write (upserts public.health_check)",
      tags: ["Check"],
      responses: {
        200: { description: "The write succeeded (or the disk is full)", schema: z.literal(true) },
        412: { description: "The compute is not running", schema: errorBodySchema },
        500: { description: "The write failed", schema: errorBodySchema },
      },
    },
  };
}
