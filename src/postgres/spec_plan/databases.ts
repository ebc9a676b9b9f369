/**
 * @module
 * The database phases: the pre-drop subscription cleanup, then
 * RenameAndDeleteDatabases, CreateAndAlterDatabases and CreateSchemaNeon.
 */

import type { Database } from "../../api/spec.ts";
import { databaseOptionsSql, quoteIdent } from "../sql_quote.ts";
import { adder, deltaPath, joinSql, opsOf, type Planner, requireNewName } from "./_planner.ts";
import { dropSubscriptionsSql } from "./plpgsql.ts";
import { SpecPlanError } from "./types.ts";

/**
 * Whether creating `db` may depend on another spec database: its template is
 * not `template0`/`template1`, or it asks for an OID (another may take it).
 * Such a database gets no lane.
 */
function dependsOnOthers(db: Database): boolean {
  return (db.options ?? []).some((option) => {
    const name = option.name.toUpperCase();
    return name === "OID" ||
      (name === "TEMPLATE" && !["template0", "template1"].includes(option.value ?? ""));
  });
}

/** Pre-drop: a database with subscriptions cannot be dropped; detach them first, in that database. */
export function planPreDrop(p: Planner): void {
  for (const op of opsOf(p, "delete_db")) {
    const db = p.databases.get(op.name);
    if (!db || db.restrictConn || db.invalid || db.subscriptions === 0) continue;
    adder(p, "pre-drop", op.name)(
      "DropLogicalSubscriptions",
      `drop the subscriptions of database ${quoteIdent(op.name)} before dropping it`,
      dropSubscriptionsSql(op.name),
    );
  }
}

/** RenameAndDeleteDatabases, CreateAndAlterDatabases, CreateSchemaNeon. */
export function planDatabases(p: Planner): void {
  const add = adder(p, "global");
  const { databases, qPriv } = p;
  // Delta ops in order; both kinds are no-ops once applied.
  for (const op of p.ops) {
    const db = databases.get(op.name);
    if (!db) continue;
    const qName = quoteIdent(op.name);
    if (op.action === "delete_db") {
      if (db.isTemplate) {
        add(
          "RenameAndDeleteDatabases",
          `unmark template database ${qName} so it can be dropped`,
          `ALTER DATABASE ${qName} IS_TEMPLATE false`,
        );
      }
      add(
        "RenameAndDeleteDatabases",
        `drop database ${qName}`,
        `DROP DATABASE IF EXISTS ${qName} WITH (FORCE)`,
      );
      databases.delete(op.name);
    } else if (op.action === "rename_db") {
      const newName = requireNewName(op);
      if (databases.has(newName)) {
        throw new SpecPlanError(
          `${deltaPath(p, op)}.new_name: database ${quoteIdent(newName)} already exists`,
        );
      }
      databases.delete(op.name);
      databases.set(newName, db);
      const qNew = quoteIdent(newName);
      add(
        "RenameAndDeleteDatabases",
        `rename database ${qName} to ${qNew}`,
        `ALTER DATABASE ${qName} RENAME TO ${qNew}`,
      );
    }
  }

  // Every owner must exist once the role phases ran: catalog roles, renamed and created ones.
  p.spec.cluster.databases.forEach((db, index) => {
    if (p.roles.has(db.owner)) return;
    throw new SpecPlanError(
      `databases[${index}].owner: role ${quoteIdent(db.owner)} is neither in the spec ` +
        "nor in the catalog",
    );
  });

  // Create missing databases (granted to the privileged role); fix owners of existing ones.
  for (const db of p.spec.cluster.databases) {
    const qName = quoteIdent(db.name);
    const lane = dependsOnOthers(db) ? undefined : `database ${qName}`;
    const existing = databases.get(db.name);
    if (existing) {
      if (existing.owner === db.owner) continue;
      add(
        "CreateAndAlterDatabases",
        `make ${quoteIdent(db.owner)} the owner of database ${qName}`,
        `ALTER DATABASE ${qName} OWNER TO ${quoteIdent(db.owner)}`,
        lane,
      );
      existing.owner = db.owner;
    } else {
      add(
        "CreateAndAlterDatabases",
        `create database ${qName}`,
        joinSql(`CREATE DATABASE ${qName}`, databaseOptionsSql(db)),
        lane,
      );
      add(
        "CreateAndAlterDatabases",
        `grant database ${qName} to ${qPriv}`,
        `GRANT ALL PRIVILEGES ON DATABASE ${qName} TO ${qPriv}`,
        lane,
      );
      databases.set(db.name, {
        owner: db.owner,
        restrictConn: false,
        invalid: false,
        isTemplate: false,
        subscriptions: 0,
        settings: [],
      });
    }
  }

  if (!p.snapshot.system.neonSchema) {
    add("CreateSchemaNeon", "create schema neon", "CREATE SCHEMA IF NOT EXISTS neon");
  }
}
