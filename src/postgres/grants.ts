/**
 * @module
 * Granting schema privileges to a role on request (the internal `POST
 * /grants`): read what the role already holds from `aclexplode(nspacl)` and
 * grant only the rest, in one `GRANT … ON SCHEMA q(schema) TO q(role)`
 * (neon-03 §3.10). Checking first keeps a fully granted request from writing,
 * so it also succeeds where writes are impossible.
 */

import type { Privilege, SetRoleGrantsRequest } from "../api/catalog.ts";
import { quoteIdent } from "./sql_quote.ts";
import { queryOrExplain, withClient } from "./connect.ts";

/** The privileges `$1` (a role name) holds directly on schema `$2`. */
export const SCHEMA_PRIVILEGES_SQL = `SELECT acl.privilege_type
  FROM pg_catalog.pg_namespace n
  CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) acl
  JOIN pg_catalog.pg_roles r ON acl.grantee OPERATOR(pg_catalog.=) r.oid
 WHERE r.rolname OPERATOR(pg_catalog.=) $1
   AND n.nspname OPERATOR(pg_catalog.=) $2`;

/** The requested privileges not in `granted`, in request order, each once. */
export function missingPrivileges(
  requested: readonly Privilege[],
  granted: ReadonlySet<string>,
): Privilege[] {
  return [...new Set(requested)].filter((privilege) => !granted.has(privilege));
}

/** `GRANT <list> ON SCHEMA q(schema) TO q(role)`, or null when `privileges` is empty. */
export function grantSql(
  privileges: readonly Privilege[],
  schema: string,
  role: string,
): string | null {
  if (privileges.length === 0) return null;
  return `GRANT ${privileges.join(", ")} ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(role)}`;
}

/**
 * Connects to `request.database` and grants the missing privileges. Throws
 * `Failed to connect to the database` or `Failed to execute query: <sql>`
 * (the driver error as `cause`).
 */
export async function grantSchemaPrivileges(
  connstr: string,
  { database, schema, privileges, role }: SetRoleGrantsRequest,
): Promise<void> {
  await withClient(connstr, {
    applicationName: "compute_ctl:set_role_grants",
    database,
    connectError: "Failed to connect to the database",
    forwardDdl: true,
  }, async (client) => {
    const held = await queryOrExplain<{ privilege_type: string }>(
      client,
      SCHEMA_PRIVILEGES_SQL,
      [role, schema],
    );
    const granted = new Set(held.rows.map((row) => row.privilege_type));
    const sql = grantSql(missingPrivileges(privileges, granted), schema, role);
    if (sql !== null) await queryOrExplain(client, sql);
  });
}
