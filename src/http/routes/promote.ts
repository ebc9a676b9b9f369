/**
 * @module
 * `POST /promote` (external, auth): promote this replica to primary and wait
 * for the outcome. 200 `{"status":"completed", timings}`; 500
 * `{"status":"failed","error"}`; 400 `{"error"}` for a spec that is not a valid
 * primary spec. Body errors (400/413/415/422) are plain text with the
 * framework's wording, as in the reference (its route uses axum's own `Json`).
 */

import type { Context } from "hono";
import { z } from "zod";
import { type PromoteConfig, promoteConfigSchema, promoteStateSchema } from "../../api/promote.ts";
import { errorBodySchema } from "../../api/responses.ts";
import { formatIssues } from "../../api/spec.ts";
import type { Promoter } from "../../compute/promote.ts";
import { HttpError } from "../errors.ts";
import { readJsonBody } from "../json_body.ts";
import type { Route } from "../server.ts";

/** The framework's messages, before the shared reader lower-cases them. */
const PLAIN_MESSAGES: Record<number, string> = {
  400: "Failed to parse the request body as JSON",
  413: "Failed to buffer the request body: length limit exceeded",
  415: "Expected request with `Content-Type: application/json`",
};

/** Reads `PromoteConfig`; every failure is a plain-text {@link HttpError}. */
async function readPromoteConfig(c: Context): Promise<PromoteConfig> {
  let json: unknown;
  try {
    json = await readJsonBody(c, z.unknown());
  } catch (error) {
    if (!(error instanceof HttpError) || PLAIN_MESSAGES[error.status] === undefined) throw error;
    const detail = error.status === 400 ? error.message.slice(error.message.indexOf(": ")) : "";
    throw new HttpError(error.status, `${PLAIN_MESSAGES[error.status]}${detail}`, true);
  }
  const parsed = promoteConfigSchema.safeParse(json);
  if (!parsed.success) {
    throw new HttpError(
      422,
      `Failed to deserialize the JSON body into the target type: ${formatIssues(parsed.error)}`,
      true,
    );
  }
  return parsed.data;
}

/** Blocks until the promotion (this call's or an earlier one's) has ended. */
export function promoteRoute(promoter: Promoter): Route {
  return {
    method: "POST",
    path: "/promote",
    auth: true,
    handler: async (c) => {
      const state = await promoter.promote(await readPromoteConfig(c));
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
      responses: {
        200: { description: "Promoted", schema: promoteStateSchema },
        400: {
          description: "Malformed JSON (plain text), or a spec that is not a valid primary " +
            'spec (`{"error"}`)',
          schema: errorBodySchema,
        },
        413: {
          description: "Body over 2 MiB (plain text)",
          contentType: "text/plain; charset=utf-8",
          schema: z.string(),
        },
        415: {
          description: "Not `application/json` (plain text)",
          contentType: "text/plain; charset=utf-8",
          schema: z.string(),
        },
        422: {
          description: "JSON of the wrong shape, e.g. a numeric `wal_flush_lsn` (plain text)",
          contentType: "text/plain; charset=utf-8",
          schema: z.string(),
        },
        500: {
          description: 'The promotion failed: `{"status":"failed","error"}`',
          schema: promoteStateSchema,
        },
      },
    },
  };
}
