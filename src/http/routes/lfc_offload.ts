/**
 * @module
 * `/lfc/offload` (external, auth): `GET` the offload state (200); `POST`
 * start saving the LFC state to endpoint storage in the background (202,
 * empty body; 429 while one runs).
 */

import { lfcOffloadStateSchema } from "../../api/lfc.ts";
import { errorBodySchema } from "../../api/responses.ts";
import type { Lfc } from "../../compute/lfc.ts";
import { emptyResponse, HttpError } from "../errors.ts";
import type { Route } from "../server.ts";

const PATH = "/lfc/offload";

/** `GET /lfc/offload`. */
export function lfcOffloadStateRoute(lfc: Lfc): Route {
  return {
    method: "GET",
    path: PATH,
    auth: true,
    handler: (c) => c.json(lfc.offloadState()),
    doc: {
      operationId: "getLfcOffloadState",
      summary: "The state of the last (or running) LFC offload.",
      tags: ["Prewarm"],
      responses: { 200: { description: "The offload state", schema: lfcOffloadStateSchema } },
    },
  };
}

/** `POST /lfc/offload`. */
export function lfcOffloadStartRoute(lfc: Lfc): Route {
  return {
    method: "POST",
    path: PATH,
    auth: true,
    handler: () => {
      if (!lfc.startOffload()) {
        throw new HttpError(429, "Multiple requests for prewarm offload are not allowed");
      }
      return emptyResponse(202);
    },
    doc: {
      operationId: "lfcOffload",
      summary: "Start saving the LFC state to endpoint storage, in the background.",
      description: "Exports the state with `neon.get_local_cache_state()`, compresses it and " +
        "`PUT`s it to endpoint storage. Poll `GET /lfc/offload` for the outcome.",
      tags: ["Prewarm"],
      responses: {
        202: { description: "Started; empty body" },
        429: {
          description: "`Multiple requests for prewarm offload are not allowed`",
          schema: errorBodySchema,
        },
      },
    },
  };
}
