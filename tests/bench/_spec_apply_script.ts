/**
 * @module
 * The pure parts of the spec-apply benchmark: the roles and databases of a
 * spec of a given size, the `psql -f` script that runs exactly the statements
 * of a plan (with `\connect` lines where the plan changes database), and the
 * statements that drop what such a spec created.
 */

import type { PlanStep } from "../../src/postgres/spec_plan/types.ts";
import { quoteIdent } from "../../src/postgres/sql_quote.ts";

/** A role and a database as the spec JSON writes them. */
export interface BenchRoleJson {
  name: string;
  encrypted_password: string;
  options: null;
}

/** A database as the spec JSON writes it. */
export interface BenchDatabaseJson {
  name: string;
  owner: string;
  options: null;
}

/** The name of role `index` (zero-padded, so names sort as they are created). */
export function benchRoleName(index: number): string {
  return `bench_role_${String(index).padStart(4, "0")}`;
}

/** The name of database `index`. */
export function benchDatabaseName(index: number): string {
  return `bench_db_${String(index).padStart(2, "0")}`;
}

/**
 * The `roles` and `databases` of a spec with `roleCount` roles (each with a
 * password verifier from `password(name)`) and `databaseCount` databases,
 * database `i` owned by role `i mod roleCount`.
 */
export function benchCatalog(
  roleCount: number,
  databaseCount: number,
  password: (role: string) => string,
): { roles: BenchRoleJson[]; databases: BenchDatabaseJson[] } {
  if (roleCount < 1) throw new RangeError(`roleCount must be at least 1, got ${roleCount}`);
  const roles = Array.from({ length: roleCount }, (_, i) => {
    const name = benchRoleName(i);
    return { name, encrypted_password: password(name), options: null };
  });
  const databases = Array.from({ length: databaseCount }, (_, i) => ({
    name: benchDatabaseName(i),
    owner: roles[i % roleCount].name,
    options: null,
  }));
  return { roles, databases };
}

/**
 * The psql meta-command that switches the session to `database`, keeping
 * host, port and user, written like pg_dump's `appendPsqlMetaConnect`: a plain
 * ASCII name as a (double-quoted if needed) identifier, any other name as a
 * double-quoted `dbname='…'` connection string with `-reuse-previous=on`.
 * Throws for a name psql cannot take on one line.
 */
export function psqlConnectLine(database: string): string {
  if (database.length === 0 || /[\n\r]/.test(database)) {
    throw new RangeError(`database name ${JSON.stringify(database)} cannot be \\connect-ed to`);
  }
  if (/^[A-Za-z0-9_.]+$/.test(database)) return `\\connect ${psqlIdent(database)}`;
  const connstr = `dbname='${database.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
  return `\\connect -reuse-previous=on ${quoteIdent(connstr)}`;
}

/** An identifier as pg_dump's `fmtId` would write it for psql: bare when lower-case and plain. */
function psqlIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : quoteIdent(name);
}

/**
 * The script `psql -f` runs to execute `steps` in plan order, one statement
 * per step, starting on `systemDatabase`: a `\connect` line wherever the next
 * step runs in another database than the one before it (global steps run on
 * `systemDatabase`). Every statement ends with `;` on a line of its own, so a
 * trailing `--` comment cannot swallow it.
 */
export function psqlScript(steps: readonly PlanStep[], systemDatabase: string): string {
  const lines: string[] = [];
  let current = systemDatabase;
  for (const step of steps) {
    const database = step.database ?? systemDatabase;
    if (database !== current) {
      lines.push(psqlConnectLine(database));
      current = database;
    }
    lines.push(step.sql.trimEnd().replace(/;$/, ""), ";");
  }
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

/**
 * Statements (each to be sent on its own: `DROP DATABASE` refuses a
 * transaction block) that remove `databases` and then `roles` from the
 * server, so the next apply starts from the state before the first.
 */
export function cleanupStatements(
  roles: readonly string[],
  databases: readonly string[],
): string[] {
  const statements = databases.map((name) =>
    `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`
  );
  if (roles.length > 0) {
    statements.push(`DROP ROLE IF EXISTS ${roles.map(quoteIdent).join(", ")}`);
  }
  return statements;
}
