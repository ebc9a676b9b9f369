/**
 * @module
 * `POST /failpoints` (internal, testing): configure failpoints at run time.
 * Body: `[{"name", "actions"}]`. 200 with an empty body; 400
 * `failed to configure failpoints: <why>` at the first invalid entry (earlier
 * ones stay applied); 412 when the manager was started without
 * `--enable-failpoints`. Body errors (400/413/415/422) come first, as in the
 * reference, whose extractor runs before the handler.
 */

import { configureFailpointsRequestSchema } from "../../api/failpoints.ts";
import { errorBodySchema } from "../../api/responses.ts";
import { FailpointConfigError, type FailpointRegistry } from "../../compute/failpoints.ts";
import { emptyResponse, HttpError } from "../errors.ts";
import { readJsonBody } from "../json_body.ts";
import type { Route } from "../server.ts";

/** `registry` undefined: failpoints are not enabled (412). */
export function failpointsRoute(registry: FailpointRegistry | undefined): Route {
  return {
    method: "POST",
    path: "/failpoints",
    auth: false,
    handler: async (c) => {
      const entries = await readJsonBody(c, configureFailpointsRequestSchema);
      if (registry === undefined) {
        throw new HttpError(
          412,
          "Cannot manage failpoints because neon was compiled without failpoints support",
        );
      }
      try {
        registry.configureAll(entries);
      } catch (error) {
        if (!(error instanceof FailpointConfigError)) throw error;
        throw new HttpError(400, `failed to configure failpoints: ${error.message}`);
      }
      return emptyResponse(200);
    },
    doc: {
      operationId: "configureFailpoints",
      summary: "Configure failpoints (testing).",
      description: "Each entry sets one failpoint to a `fail` crate action list " +
        "(`return(3)`, `sleep(100)`, `50%return->off`, …) or to `exit` (end the process with " +
        "code 1 when reached). Entries apply in order. Needs `--enable-failpoints`.",
      tags: ["Testing"],
      body: configureFailpointsRequestSchema,
      responses: {
        200: { description: "Configured; empty body" },
        400: {
          description: "An invalid action list: `failed to configure failpoints: <why>`",
          schema: errorBodySchema,
        },
        412: {
          description: "Started without `--enable-failpoints`: `Cannot manage failpoints " +
            "because neon was compiled without failpoints support`",
          schema: errorBodySchema,
        },
      },
    },
  };
}
