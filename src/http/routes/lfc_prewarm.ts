/**
 * @module
 * `/lfc/prewarm` (external, auth): `GET` the prewarm state (200); `POST
 * [?from_endpoint=<id>]` start a prewarm in the background (202, empty body;
 * 429 while one runs); `DELETE` cancel it (202, empty body). Once any query
 * string is present, `from_endpoint` is required (plain-text 400, as in the
 * reference).
 */

import { z } from "zod";
import { lfcPrewarmStateSchema, prewarmQuerySchema } from "../../api/lfc.ts";
import { errorBodySchema } from "../../api/responses.ts";
import type { Lfc } from "../../compute/lfc.ts";
import { emptyResponse, HttpError } from "../errors.ts";
import { hasQueryString, requiredQueryParam } from "../query.ts";
import { PLAIN_TEXT } from "../rejections.ts";
import type { Route } from "../server.ts";

const PATH = "/lfc/prewarm";

/**
 * `from_endpoint` from the raw URL: undefined without a query string;
 * otherwise it must be there, once (a plain-text 400 otherwise).
 */
export function parseFromEndpoint(url: string): string | undefined {
  if (!hasQueryString(url)) return undefined;
  return requiredQueryParam(url, "from_endpoint", "plain");
}

/** `GET /lfc/prewarm`. */
export function lfcPrewarmStateRoute(lfc: Lfc): Route {
  return {
    method: "GET",
    path: PATH,
    auth: true,
    handler: (c) => c.json(lfc.prewarmState()),
    doc: {
      operationId: "getLfcPrewarmState",
      summary: "The state of the last (or running) LFC prewarm.",
      tags: ["Prewarm"],
      responses: { 200: { description: "The prewarm state", schema: lfcPrewarmStateSchema } },
    },
  };
}

/** `POST /lfc/prewarm`. */
export function lfcPrewarmStartRoute(lfc: Lfc): Route {
  return {
    method: "POST",
    path: PATH,
    auth: true,
    handler: (c) => {
      if (!lfc.startPrewarm(parseFromEndpoint(c.req.url))) {
        throw new HttpError(429, "Multiple requests for prewarm are not allowed");
      }
      return emptyResponse(202);
    },
    doc: {
      operationId: "lfcPrewarm",
      summary: "Start prewarming the LFC from endpoint storage, in the background.",
      description: "Reads `<tenant>/<timeline>/<endpoint>/lfc_state` from endpoint storage " +
        "(the spec's `endpoint_id` unless `from_endpoint` is given) and loads it with " +
        "`neon.prewarm_local_cache()`. Poll `GET /lfc/prewarm` for the outcome.",
      tags: ["Prewarm"],
      query: prewarmQuerySchema.partial(),
      responses: {
        202: { description: "Started; empty body" },
        400: {
          description: "A query string without `from_endpoint` (plain text)",
          contentType: PLAIN_TEXT,
          schema: z.string(),
        },
        429: {
          description: "`Multiple requests for prewarm are not allowed`",
          schema: errorBodySchema,
        },
      },
    },
  };
}

/** `DELETE /lfc/prewarm`. */
export function lfcPrewarmCancelRoute(lfc: Lfc): Route {
  return {
    method: "DELETE",
    path: PATH,
    auth: true,
    handler: () => {
      lfc.cancelPrewarm();
      return emptyResponse(202);
    },
    doc: {
      operationId: "cancelLfcPrewarm",
      summary: "Cancel the running LFC prewarm.",
      description: "The running prewarm ends `cancelled`. With none running, the next prewarm " +
        "is cancelled instead (as in the reference).",
      tags: ["Prewarm"],
      responses: { 202: { description: "Cancellation requested; empty body" } },
    },
  };
}
