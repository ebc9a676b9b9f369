/**
 * @module
 * The role phases: CreatePrivilegedRole, DropInvalidDatabases (which Neon runs
 * among them), RenameRoles, CreateAndAlterRoles.
 */

import { jwksRoleNames } from "../../api/spec.ts";
import { quoteIdent, roleOptionsSql } from "../sql_quote.ts";
import { adder, deltaPath, joinSql, opsOf, type Planner, requireNewName } from "./_planner.ts";
import { SpecPlanError } from "./types.ts";

/** How Postgres stores a spec password: SCRAM verifiers as given, md5 digests with the `md5` prefix. */
function storedPassword(specPassword: string | null | undefined): string | null {
  if (specPassword == null) return null;
  return specPassword.startsWith("SCRAM-SHA-256") ? specPassword : `md5${specPassword}`;
}

/** CreatePrivilegedRole, DropInvalidDatabases, RenameRoles, CreateAndAlterRoles. */
export function planRoles(p: Planner): void {
  const add = adder(p, "global");
  const { roles, qPriv } = p;
  if (!roles.has(p.options.privilegedRoleName)) {
    add(
      "CreatePrivilegedRole",
      `create the privileged role ${qPriv}`,
      `CREATE ROLE ${qPriv} CREATEDB CREATEROLE NOLOGIN REPLICATION BYPASSRLS ` +
        "IN ROLE pg_read_all_data, pg_write_all_data",
    );
    roles.set(p.options.privilegedRoleName, { password: null, createdNow: true });
  }

  // An interrupted DROP DATABASE leaves datconnlimit = -2; the only remedy is dropping it again.
  for (const [name, db] of p.databases) {
    if (!db.invalid) continue;
    const qName = quoteIdent(name);
    add(
      "DropInvalidDatabases",
      `drop invalid database ${qName}`,
      `DROP DATABASE IF EXISTS ${qName}`,
    );
    p.databases.delete(name);
  }

  // Rename only when the old role exists. Renaming clears an md5 password (salted with the
  // name), so forget the stored one and let CreateAndAlterRoles set it again.
  for (const op of opsOf(p, "rename_role")) {
    const role = roles.get(op.name);
    if (!role) continue;
    const newName = requireNewName(op);
    if (roles.has(newName)) {
      throw new SpecPlanError(
        `${deltaPath(p, op)}.new_name: role ${quoteIdent(newName)} already exists`,
      );
    }
    roles.delete(op.name);
    roles.set(newName, { ...role, password: null });
    const [qOld, qNew] = [quoteIdent(op.name), quoteIdent(newName)];
    add("RenameRoles", `rename role ${qOld} to ${qNew}`, `ALTER ROLE ${qOld} RENAME TO ${qNew}`);
  }

  // Create missing roles; re-set the password only when it differs from the stored one.
  // No role option names another role, so each role's statement has a lane of its own.
  const jwksRoles = new Set(p.options.jwksRoles ?? jwksRoleNames(p.spec));
  for (const role of p.spec.cluster.roles) {
    const qName = quoteIdent(role.name);
    const lane = `role ${qName}`;
    const wanted = storedPassword(role.encrypted_password);
    const existing = roles.get(role.name);
    if (existing) {
      if (existing.password === wanted) continue;
      add(
        "CreateAndAlterRoles",
        `set the password of role ${qName}`,
        joinSql(`ALTER ROLE ${qName}`, roleOptionsSql(role)),
        lane,
      );
      existing.password = wanted;
    } else {
      const privileges = jwksRoles.has(role.name)
        ? ""
        : `INHERIT CREATEROLE CREATEDB BYPASSRLS REPLICATION IN ROLE ${qPriv}`;
      add(
        "CreateAndAlterRoles",
        `create role ${qName}`,
        joinSql(`CREATE ROLE ${qName}`, privileges, roleOptionsSql(role)),
        lane,
      );
      roles.set(role.name, { password: wanted, createdNow: true });
    }
  }
}
