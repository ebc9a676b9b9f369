/**
 * @module
 * `GET /dbs_and_roles`: every role (system roles included, with its stored
 * verifier) and every database of the running Postgres. No status check;
 * 500 when Postgres cannot answer.
 */

import { catalogObjectsSchema } from "../../api/catalog.ts";
import { errorBodySchema } from "../../api/responses.ts";
import { dbsAndRoles } from "../../compute/catalog_api.ts";
import type { ComputeNode } from "../../compute/node.ts";
import type { Route } from "../server.ts";

/** 200 with `CatalogObjects`. */
export function dbsAndRolesRoute(node: ComputeNode): Route {
  return {
    method: "GET",
    path: "/dbs_and_roles",
    auth: true,
    handler: async (c) => c.json(await dbsAndRoles(node)),
    doc: {
      operationId: "getDbsAndRoles",
      summary: "Every role and database of the compute's Postgres",
      tags: ["Info"],
      responses: {
        200: { description: "Roles and databases", schema: catalogObjectsSchema },
        500: { description: "Postgres could not be queried", schema: errorBodySchema },
      },
    },
  };
}
