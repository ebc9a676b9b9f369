/**
 * @module
 * `GET /database_schema?database=<name>`: the streamed `pg_dump --schema-only`
 * of one database. Any status. The SQL goes out as `application/json`, as
 * Neon sends it. 400 (JSON, lower-cased) without a `database` parameter, 404
 * for an unknown database, 500 when pg_dump cannot run or prints nothing.
 */

import { z } from "zod";
import { errorBodySchema } from "../../api/responses.ts";
import { DatabaseNotFoundError, databaseSchema } from "../../compute/catalog_api.ts";
import type { ComputeNode } from "../../compute/node.ts";
import { HttpError } from "../errors.ts";
import { databaseQueryParam } from "../query.ts";
import type { Route } from "../server.ts";

const querySchema = z.object({ database: z.string() });

/** The `database` parameter of `url`: exactly one, a possible database name (a JSON 400 otherwise). */
export function parseDatabaseQuery(url: string): string {
  return databaseQueryParam(url, "database");
}

/** Streams; the client going away (or a HEAD request) kills pg_dump. */
export function databaseSchemaRoute(node: ComputeNode): Route {
  return {
    method: "GET",
    path: "/database_schema",
    auth: true,
    handler: async (c) => {
      const database = parseDatabaseQuery(c.req.url);
      try {
        const dump = await databaseSchema(node, database);
        const headers = { "content-type": "application/json" };
        // HEAD drops the body unread; cancelling it is what stops pg_dump.
        if (c.req.method === "HEAD") {
          await dump.cancel();
          return new Response(null, { headers });
        }
        return new Response(dump, { headers });
      } catch (error) {
        if (error instanceof DatabaseNotFoundError) throw new HttpError(404, error.message);
        throw error;
      }
    },
    doc: {
      operationId: "getDatabaseSchema",
      summary: "The schema-only pg_dump of one database, streamed",
      tags: ["Info"],
      query: querySchema,
      responses: {
        200: {
          description: "SQL text from pg_dump (sent as application/json, like Neon)",
          schema: z.string(),
          contentType: "application/json",
        },
        400: {
          description: "No `database` query parameter, or one that cannot name a database " +
            "(`database: contains a NUL byte`, `database: is empty`, " +
            "`database: is longer than 63 bytes (PostgreSQL's limit for names)`)",
          schema: errorBodySchema,
        },
        404: { description: "The database does not exist", schema: errorBodySchema },
        500: {
          description: "pg_dump could not run or printed nothing (`failed to execute pg_dump`; " +
            "when the install has no pg_dump or it is not granted, followed by the reason, " +
            "e.g. `failed to execute pg_dump: /usr/lib/postgresql/17/bin/pg_dump does not " +
            "exist: pg_dump is not part of this PostgreSQL install`), or the connection " +
            "string lacks host, port or user (`unexpected I/O error`)",
          schema: errorBodySchema,
        },
      },
    },
  };
}
