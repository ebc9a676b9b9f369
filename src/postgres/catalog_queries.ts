/**
 * @module
 * Read-only catalog reports for the HTTP API: every role and database
 * (`/dbs_and_roles`) and the slowest statements of `pg_stat_statements`
 * (`/insights`). Both read the system database through a compute_ctl session.
 */

import type { CatalogObjects } from "../api/catalog.ts";
import { errorMessage, getLogger } from "../log.ts";
import { withClient } from "./connect.ts";

const log = getLogger("postgres");

/** Every role with its stored verifier (system roles included). */
export const ROLES_SQL = "SELECT rolname, rolpassword FROM pg_catalog.pg_authid ORDER BY rolname";

/** Every database with its owner and the two flags the control plane reads. */
export const DATABASES_SQL = `SELECT d.datname AS name,
       COALESCE((SELECT r.rolname FROM pg_catalog.pg_roles r
                  WHERE r.oid OPERATOR(pg_catalog.=) d.datdba), '') AS owner,
       NOT d.datallowconn AS restrict_conn,
       d.datconnlimit OPERATOR(pg_catalog.=) (OPERATOR(pg_catalog.-) 2) AS invalid
  FROM pg_catalog.pg_database d
 ORDER BY d.datname`;

/**
 * The 100 statements with the highest mean planning plus execution time, of
 * every user but `cloud_admin`, each as the text of its row's `row_to_json`
 * (text, so that 64-bit values such as `queryid` keep every digit).
 */
export const TOP_STATEMENTS_SQL = `SELECT pg_catalog.row_to_json(s)::pg_catalog.text AS row
  FROM public.pg_stat_statements s
 WHERE s.userid OPERATOR(pg_catalog.<>) 'cloud_admin'::pg_catalog.regrole::pg_catalog.oid
 ORDER BY (s.mean_exec_time OPERATOR(pg_catalog.+) s.mean_plan_time) DESC
 LIMIT 100`;

/** Reads `CatalogObjects` as application `compute_ctl:get_dbs_and_roles`. */
export async function listCatalogObjects(connstr: string): Promise<CatalogObjects> {
  return await withClient(
    connstr,
    { applicationName: "compute_ctl:get_dbs_and_roles" },
    async (client) => {
      const roles = await client.query<{ rolname: string; rolpassword: string | null }>(ROLES_SQL);
      const databases = await client.query<
        { name: string; owner: string; restrict_conn: boolean; invalid: boolean }
      >(DATABASES_SQL);
      return {
        roles: roles.rows.map((row) => ({
          name: row.rolname,
          encrypted_password: row.rolpassword,
          options: null,
        })),
        databases: databases.rows.map((row) => ({
          name: row.name,
          owner: row.owner,
          options: null,
          restrict_conn: row.restrict_conn,
          invalid: row.invalid,
        })),
      };
    },
  );
}

/**
 * The rows of {@linkcode TOP_STATEMENTS_SQL} as JSON texts, read as
 * application `compute_ctl:collect_insights`. A failing query (the extension
 * is not installed or not preloaded) gives an empty list, as in Neon; a failed
 * connection throws.
 */
export async function topStatements(connstr: string): Promise<string[]> {
  return await withClient(
    connstr,
    { applicationName: "compute_ctl:collect_insights" },
    async (client) => {
      try {
        const result = await client.query<{ row: string }>(TOP_STATEMENTS_SQL);
        return result.rows.map((row) => row.row);
      } catch (error) {
        log.warn("could not read pg_stat_statements", { error: errorMessage(error) });
        return [];
      }
    },
  );
}
