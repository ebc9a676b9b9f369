/**
 * @module
 * `POST /terminate[?mode=fast|immediate]`: stop Postgres and report the final
 * flush LSN. 200 once terminated, 201 if it already was, 412 in other states;
 * a query string without a valid `mode` is a plain-text 400, as in the reference.
 */

import { z } from "zod";
import {
  errorBodySchema,
  type TerminateMode,
  terminateModeSchema,
  terminateResponseSchema,
} from "../../api/responses.ts";
import type { ComputeNode } from "../../compute/node.ts";
import { hasQueryString, requiredQueryParam } from "../query.ts";
import { PLAIN_TEXT, queryRejection } from "../rejections.ts";
import type { Route } from "../server.ts";

/** The query as documented: `mode`, `fast` when there is no query string at all. */
const terminateQuerySchema = z.object({
  mode: terminateModeSchema.default("fast").describe(
    "`fast` (SIGINT, linger 30 s) or `immediate`. Once any query string is present, " +
      "`mode` is required.",
  ),
});

/**
 * The mode from the raw URL: `fast` without a query string; otherwise `mode`
 * must be present once and valid (other parameters are ignored).
 */
export function parseTerminateMode(url: string): TerminateMode {
  if (!hasQueryString(url)) return "fast";
  const mode = requiredQueryParam(url, "mode", "plain");
  const parsed = terminateModeSchema.safeParse(mode);
  if (!parsed.success) {
    throw queryRejection(
      `unknown variant \`${mode}\`, expected \`fast\` or \`immediate\``,
      "plain",
    );
  }
  return parsed.data;
}

/** Blocks until the compute is `terminated`. */
export function terminateRoute(node: ComputeNode): Route {
  return {
    method: "POST",
    path: "/terminate",
    auth: true,
    handler: async (c) => {
      const outcome = await node.terminate(parseTerminateMode(c.req.url));
      return c.json(outcome.body, outcome.alreadyTerminated ? 201 : 200);
    },
    doc: {
      operationId: "terminate",
      summary: "Terminate Postgres and wait until it has stopped.",
      description: "Allowed in `empty` and `running`. Blocks until the status is `terminated`; " +
        "for a primary, `lsn` is the flush LSN the safekeepers reported after Postgres stopped.",
      tags: ["Terminate"],
      query: terminateQuerySchema,
      responses: {
        200: { description: "Postgres has stopped", schema: terminateResponseSchema },
        201: { description: "It had already stopped", schema: terminateResponseSchema },
        400: {
          description: "A query string without a valid `mode` (plain text)",
          contentType: PLAIN_TEXT,
          schema: z.string(),
        },
        412: {
          description: "Not in `empty` or `running`: `invalid compute status: <status>`",
          schema: errorBodySchema,
        },
      },
    },
  };
}
