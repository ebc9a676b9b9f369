/**
 * @module
 * `POST /promote` (external, auth): promote this replica to primary and wait
 * for the outcome. 200 `{"status":"completed", timings}`; 500
 * `{"status":"failed","error"}`; 400 `{"error"}` for a spec that is not a valid
 * primary spec. Body errors (400/413/415/422) are plain text with the
 * framework's wording (`rejections.ts`), as in the reference (its route uses
 * axum's own `Json`).
 */

import { promoteConfigSchema, promoteStateSchema } from "../../api/promote.ts";
import { errorBodySchema } from "../../api/responses.ts";
import type { Promoter } from "../../compute/promote.ts";
import { readJsonBody } from "../json_body.ts";
import type { RejectionStyle } from "../rejections.ts";
import type { Route } from "../server.ts";

/** The reference reads this body with axum's own `Json`: its refusals are plain text. */
const BODY_REJECTIONS: RejectionStyle = "plain";

/** Blocks until the promotion (this call's or an earlier one's) has ended. */
export function promoteRoute(promoter: Promoter): Route {
  return {
    method: "POST",
    path: "/promote",
    auth: true,
    handler: async (c) => {
      const config = await readJsonBody(c, promoteConfigSchema, { style: BODY_REJECTIONS });
      const state = await promoter.promote(config);
      return c.json(state, state.status === "completed" ? 200 : 500);
    },
    doc: {
      operationId: "promoteReplica",
      summary: "Promote this replica to primary and wait for the outcome.",
      description: "Waits (up to 21 × 1 s) until Postgres has replayed `wal_flush_lsn`, points " +
        "it at the new spec's safekeepers, runs `pg_promote()`, then installs `spec` as a " +
        "`Primary` and reconfigures. Runs once: concurrent and later calls get the same " +
        "outcome. Needs the LFC prewarm to have ended (`failed` is accepted).",
      tags: ["Promotion"],
      body: promoteConfigSchema,
      bodyRejections: BODY_REJECTIONS,
      responses: {
        200: { description: "Promoted", schema: promoteStateSchema },
        400: {
          description: 'A spec that is not a valid primary spec (`{"error"}`)',
          schema: errorBodySchema,
        },
        500: {
          description: 'The promotion failed: `{"status":"failed","error"}`',
          schema: promoteStateSchema,
        },
      },
    },
  };
}
