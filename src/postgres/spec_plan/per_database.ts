/**
 * @module
 * The per-database phases, run in each spec database and then the system
 * database: DeleteDBRoleReferences, ChangeSchemaPerms and (on a new timeline)
 * DropLogicalSubscriptions.
 */

import type { Database } from "../../api/spec.ts";
import type { DatabaseDetails } from "../catalog.ts";
import { quoteIdent } from "../sql_quote.ts";
import { adder, type AddStep, opsOf, type Planner } from "./_planner.ts";
import {
  ADMIN_SCHEMA_OWNERS,
  dropSubscriptionsSql,
  ifPublicSchemaExists,
  publicSchemaFromAdminSql,
  revokePublicTableGrantsSql,
} from "./plpgsql.ts";

/**
 * Per-database phases for every spec database (in spec order), then the system
 * database: DeleteDBRoleReferences, ChangeSchemaPerms (spec databases) and
 * DropLogicalSubscriptions (spec databases other than the system one).
 */
export function planPerDatabase(p: Planner, dropSubscriptions: boolean): void {
  const systemDatabase = p.options.systemDatabase;
  const specDatabases = new Map<string, Database>();
  for (const db of p.spec.cluster.databases) {
    if (!specDatabases.has(db.name)) specDatabases.set(db.name, db);
  }
  const targets = [...specDatabases.keys()];
  if (!specDatabases.has(systemDatabase)) targets.push(systemDatabase);

  for (const name of targets) {
    const specDb = specDatabases.get(name);
    const db = p.databases.get(name);
    const isSystem = name === systemDatabase;
    if (!isSystem && !db) {
      p.notes.push(`database ${quoteIdent(name)} does not exist: per-database work skipped`);
      continue;
    }
    if (db && (db.restrictConn || db.invalid)) {
      p.notes.push(
        `database ${quoteIdent(name)} does not accept connections: per-database work skipped`,
      );
      continue;
    }
    const add = adder(p, "per-database", name);
    const stepsBefore = p.steps.length;

    // Free each role about to be dropped from what it owns or holds here.
    for (const op of opsOf(p, "delete_role")) {
      if (specDb?.owner === op.name) continue;
      const role = p.roles.get(op.name);
      if (!role || role.createdNow) continue;
      const qRole = quoteIdent(op.name);
      const qNewOwner = quoteIdent(specDb?.owner ?? p.snapshot.currentUser);
      add(
        "DeleteDBRoleReferences",
        `hand objects of ${qRole} to ${qNewOwner}`,
        `REASSIGN OWNED BY ${qRole} TO ${qNewOwner}`,
      );
      add(
        "DeleteDBRoleReferences",
        `revoke table privileges granted to ${qRole} in schema public`,
        revokePublicTableGrantsSql(op.name),
      );
      add(
        "DeleteDBRoleReferences",
        `drop remaining privileges of ${qRole}`,
        `DROP OWNED BY ${qRole}`,
      );
    }

    if (specDb && db) {
      const context = {
        qPriv: p.qPriv,
        webAccessExists: p.roles.has("web_access"),
        serverVersionNum: p.snapshot.serverVersionNum,
      };
      const freesRoles = p.steps.length > stepsBefore;
      changeSchemaPerms(specDb, db.details, add, context);
      if (db.details && !freesRoles) {
        p.settled.set(name, settleSchemaPerms(specDb.owner, db.details, context));
      }
    }

    if (dropSubscriptions && specDb && !isSystem && db && db.subscriptions > 0) {
      add(
        "DropLogicalSubscriptions",
        `drop the subscriptions of database ${quoteIdent(name)} (new timeline)`,
        dropSubscriptionsSql(name),
      );
    }
  }
}

/**
 * The details of a spec database once ChangeSchemaPerms, planned from
 * `details`, has run: what {@link changeSchemaPerms} would plan from the
 * result is nothing.
 */
export function settleSchemaPerms(
  owner: string,
  details: DatabaseDetails,
  context: { webAccessExists: boolean; serverVersionNum: number },
): DatabaseDetails {
  const publicSchemaOwner = ADMIN_SCHEMA_OWNERS.includes(details.publicSchemaOwner ?? "")
    ? owner
    : details.publicSchemaOwner;
  const hasPublic = publicSchemaOwner !== null;
  return {
    publicSchemaOwner,
    webAccessCanCreate: details.webAccessCanCreate ||
      (hasPublic && context.webAccessExists && context.serverVersionNum >= 150000),
    tableDefaultsGranted: details.tableDefaultsGranted || hasPublic,
    sequenceDefaultsGranted: details.sequenceDefaultsGranted || hasPublic,
  };
}

/**
 * ChangeSchemaPerms for one spec database: hand a `public` schema still owned by
 * the admin to the database owner; let `web_access` create in it (PG15+); give
 * the privileged role default ALL (WITH GRANT OPTION) on future tables and
 * sequences. With `details` each is planned only if missing; without, each is
 * planned guarded by a run-time check, as Neon does.
 */
function changeSchemaPerms(
  db: Database,
  details: DatabaseDetails | undefined,
  perDb: AddStep,
  context: { qPriv: string; webAccessExists: boolean; serverVersionNum: number },
): void {
  const qOwner = quoteIdent(db.owner);
  const known = details !== undefined;
  const hasPublic = details?.publicSchemaOwner != null;
  if (!known) {
    perDb(
      "ChangeSchemaPerms",
      `make ${qOwner} the owner of schema public if the admin still owns it`,
      publicSchemaFromAdminSql(db.owner),
    );
  } else if (ADMIN_SCHEMA_OWNERS.includes(details.publicSchemaOwner ?? "")) {
    perDb(
      "ChangeSchemaPerms",
      `make ${qOwner} the owner of schema public`,
      `ALTER SCHEMA public OWNER TO ${qOwner}`,
    );
  }

  const guard = (sql: string) => known ? sql : ifPublicSchemaExists(sql);
  if (
    context.serverVersionNum >= 150000 && context.webAccessExists &&
    (!known || (hasPublic && !details.webAccessCanCreate))
  ) {
    perDb(
      "ChangeSchemaPerms",
      "let web_access create objects in schema public",
      guard("GRANT CREATE ON SCHEMA public TO web_access"),
    );
  }
  if (!known || (hasPublic && !details.tableDefaultsGranted)) {
    perDb(
      "ChangeSchemaPerms",
      `grant ${context.qPriv} default privileges on tables in schema public`,
      guard(
        `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO ${context.qPriv} ` +
          "WITH GRANT OPTION",
      ),
    );
  }
  if (!known || (hasPublic && !details.sequenceDefaultsGranted)) {
    perDb(
      "ChangeSchemaPerms",
      `grant ${context.qPriv} default privileges on sequences in schema public`,
      guard(
        `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO ${context.qPriv} ` +
          "WITH GRANT OPTION",
      ),
    );
  }
}
