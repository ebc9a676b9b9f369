/**
 * @module
 * `POST /grants` (internal): grant schema privileges to a role, only those it
 * lacks. The body is read first (400/413/415/422, documented with every
 * body route; privileges are upper-case names), then the status must be `running` (412); 201 echoing the request;
 * 500 `failed to grant role privileges to the schema: …`.
 */

import { setRoleGrantsRequestSchema, setRoleGrantsResponseSchema } from "../../api/catalog.ts";
import { errorBodySchema } from "../../api/responses.ts";
import { setRoleGrants } from "../../compute/catalog_api.ts";
import type { ComputeNode } from "../../compute/node.ts";
import { readJsonBody } from "../json_body.ts";
import type { Route } from "../server.ts";

/** Neon's OpenAPI document says 200; the code (and this route) answer 201. */
export function grantsRoute(node: ComputeNode): Route {
  return {
    method: "POST",
    path: "/grants",
    auth: false,
    handler: async (c) => {
      const request = await readJsonBody(c, setRoleGrantsRequestSchema);
      return c.json(await setRoleGrants(node, request), 201);
    },
    doc: {
      operationId: "setRoleGrants",
      summary: "Grant privileges on a schema to a role",
      tags: ["Grants"],
      body: setRoleGrantsRequestSchema,
      responses: {
        201: { description: "The role holds the privileges", schema: setRoleGrantsResponseSchema },
        412: { description: "The compute is not running", schema: errorBodySchema },
        500: { description: "Connecting or a statement failed", schema: errorBodySchema },
      },
    },
  };
}
