/**
 * @module
 * `POST /terminate[?mode=fast|immediate]`: stop Postgres and report the final
 * flush LSN. 200 once terminated, 201 if it already was, 412 in other states;
 * a query string without a valid `mode` is a plain-text 400, as in the reference.
 */

import { type TerminateMode, terminateModeSchema } from "../../api/responses.ts";
import type { ComputeNode } from "../../compute/node.ts";
import { HttpError } from "../errors.ts";
import type { Route } from "../server.ts";

const QUERY_ERROR = "Failed to deserialize query string";

/**
 * The mode from the raw URL: `fast` without a query string; otherwise `mode`
 * must be present and valid (other parameters are ignored).
 */
export function parseTerminateMode(url: string): TerminateMode {
  if (!url.includes("?")) return "fast";
  const mode = new URL(url).searchParams.get("mode");
  if (mode === null) throw new HttpError(400, `${QUERY_ERROR}: missing field \`mode\``, true);
  const parsed = terminateModeSchema.safeParse(mode);
  if (!parsed.success) {
    throw new HttpError(
      400,
      `${QUERY_ERROR}: unknown variant \`${mode}\`, expected \`fast\` or \`immediate\``,
      true,
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
  };
}
