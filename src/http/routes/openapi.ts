/**
 * @module
 * `GET /openapi.json` (external, no auth): the OpenAPI document of both
 * servers, the same JSON as `docs/openapi.json`. Not a Neon route.
 */

import { z } from "zod";
import type { OpenApiDocument } from "../openapi.ts";
import type { Route } from "../server.ts";

/** `document` is called on the first request and its answer kept. */
export function openapiRoute(document: () => OpenApiDocument): Route {
  let cached: OpenApiDocument | undefined;
  return {
    method: "GET",
    path: "/openapi.json",
    auth: false,
    handler: (c) => c.json(cached ??= document()),
    doc: {
      operationId: "getOpenApiSpec",
      summary: "Get this OpenAPI document.",
      tags: ["Info"],
      responses: {
        200: {
          description: "OpenAPI 3.0.3 document of both servers",
          schema: z.looseObject({ openapi: z.string() }),
        },
      },
    },
  };
}
