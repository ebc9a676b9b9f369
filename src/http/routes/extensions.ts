/**
 * @module
 * `POST /extensions` (internal): install or update an extension in a
 * database. The body is read first (400/413/415/422), then the status must be
 * `running` (412); 201 with `{extension, version}`; 500
 * `failed to install extension: …`.
 */

import {
  extensionInstallRequestSchema,
  extensionInstallResponseSchema,
} from "../../api/catalog.ts";
import { errorBodySchema } from "../../api/responses.ts";
import { installExtension } from "../../compute/catalog_api.ts";
import type { ComputeNode } from "../../compute/node.ts";
import { readJsonBody } from "../json_body.ts";
import type { Route } from "../server.ts";

/** Neon's OpenAPI document says 200; the code (and this route) answer 201. */
export function extensionsRoute(node: ComputeNode): Route {
  return {
    method: "POST",
    path: "/extensions",
    auth: false,
    handler: async (c) => {
      const request = await readJsonBody(c, extensionInstallRequestSchema);
      return c.json(await installExtension(node, request), 201);
    },
    doc: {
      operationId: "installExtension",
      summary: "Install or update an extension in a database",
      tags: ["Extensions"],
      body: extensionInstallRequestSchema,
      responses: {
        201: {
          description: "The extension is at the version",
          schema: extensionInstallResponseSchema,
        },
        412: { description: "The compute is not running", schema: errorBodySchema },
        500: { description: "Connecting or a statement failed", schema: errorBodySchema },
      },
    },
  };
}
