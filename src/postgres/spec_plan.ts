/**
 * @module
 * The spec-apply planner: a pure function from (catalog snapshot, spec) to the
 * ordered SQL that brings Postgres to the spec, phase by phase in the order of
 * Neon's `apply_spec_sql`. It plans only what would change something, so a spec
 * that is already applied plans no statement at all, and the plan can be
 * printed for a dry run ({@linkcode formatPlan}).
 *
 * Deliberate differences from the Rust compute_ctl: an md5 password equal to
 * the stored `md5<hex>` is not re-set; `rename_role` renames when the old role
 * exists (the intended behaviour, not the inverted check); idempotent `DO`
 * blocks are left out when the snapshot shows they would change nothing; the
 * `neon` extension is skipped with a note when the server does not have it.
 */

import { type ComputeSpec, type Database, type DeltaOp, findOption } from "../api/spec.ts";
import type {
  CatalogSnapshot,
  DatabaseDetails,
  DatabaseState,
  SystemDatabaseState,
} from "./catalog.ts";
import {
  databaseOptionsSql,
  dollarQuote,
  quoteIdent,
  quoteLiteral,
  roleOptionsSql,
} from "./sql_quote.ts";

/** When a step runs: the executor runs global stages on one session, per-database stages per database. */
export type PlanStage = "pre-drop" | "global" | "per-database" | "final";

/** The phases, named as in Neon's `apply_spec_sql`. */
export type SpecPhase =
  | "DropLogicalSubscriptions"
  | "CreatePrivilegedRole"
  | "DropInvalidDatabases"
  | "RenameRoles"
  | "CreateAndAlterRoles"
  | "RenameAndDeleteDatabases"
  | "CreateAndAlterDatabases"
  | "CreateSchemaNeon"
  | "DeleteDBRoleReferences"
  | "ChangeSchemaPerms"
  | "HandleOtherExtensions"
  | "HandleNeonExtension"
  | "CreateAvailabilityCheck"
  | "DropRoles"
  | "FinalizeDropLogicalSubscriptions"
  | "CreatePgauditExtension"
  | "CreatePgauditlogtofileExtension"
  | "DisablePostgresDBPgAudit";

/** One statement (or one `DO` block) to send with the simple query protocol. */
export interface PlanStep {
  stage: PlanStage;
  phase: SpecPhase;
  /** The database to run it in; absent for global statements (system database session). */
  database?: string;
  /** What the statement is for, in words, for logs and error messages. */
  purpose: string;
  sql: string;
}

/** The ordered statements, plus notes about work skipped on purpose. */
export interface SpecApplyPlan {
  steps: PlanStep[];
  notes: string[];
}

/** Options for {@linkcode planSpecApply}. */
export interface PlanOptions {
  /** `--privileged-role-name` (validated `^[a-z_]+$` by the CLI). */
  privilegedRoleName: string;
  /** The database of `--connstr` (normally `postgres`). */
  systemDatabase: string;
  /** Roles created without privileges; default: every `local_proxy_config.jwks[].role_names`. */
  jwksRoles?: Iterable<string>;
  /** Timeline recorded after dropping subscriptions; default: the spec's. */
  timelineId?: string | null;
}

/** Thrown for a spec the planner cannot turn into SQL. */
export class SpecPlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SpecPlanError";
  }
}

/** Roles named in any `local_proxy_config.jwks[].role_names`. */
export function jwksRoleNames(spec: ComputeSpec): Set<string> {
  return new Set((spec.local_proxy_config?.jwks ?? []).flatMap((jwks) => jwks.role_names));
}

/** The timeline of the spec: `timeline_id`, else the `neon.timeline_id` setting. */
export function specTimelineId(spec: ComputeSpec): string | undefined {
  return spec.timeline_id ?? findOption(spec.cluster.settings, "neon.timeline_id");
}

/**
 * Existing databases whose details the planner needs from the snapshot: every
 * spec database and every `rename_db` source (which may become one).
 */
export function databasesToInspect(spec: ComputeSpec): string[] {
  const names = spec.cluster.databases.map((db) => db.name);
  for (const op of spec.delta_operations ?? []) if (op.action === "rename_db") names.push(op.name);
  return [...new Set(names)];
}

/** Renders a plan as commented SQL, one statement per block, for a dry run. */
export function formatPlan(plan: SpecApplyPlan): string {
  const lines = plan.notes.map((note) => `-- note: ${note}`);
  for (const step of plan.steps) {
    const where = step.database === undefined ? "" : ` in database ${quoteIdent(step.database)}`;
    lines.push(`-- ${step.phase}${where}: ${step.purpose}`, `${step.sql};`);
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

/** Roles that pre-date a public-schema owner change and hand it to the database owner. */
const ADMIN_SCHEMA_OWNERS = ["cloud_admin", "zenith_admin"];

interface RoleContext {
  /** The stored verifier as it is (or will be) after the statements planned so far. */
  password: string | null;
  /** Created by this plan: owns nothing yet, so needs no per-database cleanup. */
  createdNow: boolean;
}

/** A database as it is (or will be) after the statements planned so far. */
interface DatabaseContext extends Omit<DatabaseState, "name"> {
  /** `undefined` when the snapshot did not look inside (e.g. created by this plan). */
  details?: DatabaseDetails;
}

/** How Postgres stores a spec password: SCRAM verifiers as given, md5 digests with the `md5` prefix. */
function storedPassword(specPassword: string | null | undefined): string | null {
  if (specPassword == null) return null;
  return specPassword.startsWith("SCRAM-SHA-256") ? specPassword : `md5${specPassword}`;
}

/** The projected catalog that phases read and update while planning, and the plan so far. */
interface Planner {
  readonly snapshot: CatalogSnapshot;
  readonly spec: ComputeSpec;
  readonly options: PlanOptions;
  readonly qPriv: string;
  readonly ops: readonly DeltaOp[];
  readonly roles: Map<string, RoleContext>;
  readonly databases: Map<string, DatabaseContext>;
  readonly steps: PlanStep[];
  readonly notes: string[];
}

type AddStep = (phase: SpecPhase, purpose: string, sql: string) => void;

/** Returns a function appending steps of one stage (and database) to the plan. */
function adder(p: Planner, stage: PlanStage, database?: string): AddStep {
  return (phase, purpose, sql) =>
    p.steps.push(
      database === undefined
        ? { stage, phase, purpose, sql }
        : { stage, phase, database, purpose, sql },
    );
}

function opsOf(p: Planner, action: string): DeltaOp[] {
  return p.ops.filter((op) => op.action === action);
}

/**
 * Plans the SQL that brings the catalog in `snapshot` to `spec`. Phases and their
 * order follow Neon (pre-drop subscription cleanup, global phases, per-database
 * phases for every spec database plus the system database, final phases); a
 * later phase sees the state earlier phases will have produced. Pure.
 */
export function planSpecApply(
  snapshot: CatalogSnapshot,
  spec: ComputeSpec,
  options: PlanOptions,
): SpecApplyPlan {
  if (spec.skip_pg_catalog_updates) {
    return { steps: [], notes: ["skip_pg_catalog_updates is set: no catalog changes planned"] };
  }
  const p: Planner = {
    snapshot,
    spec,
    options,
    qPriv: quoteIdent(options.privilegedRoleName),
    ops: spec.delta_operations ?? [],
    roles: new Map(),
    databases: new Map(),
    steps: [],
    notes: [],
  };
  for (const [name, role] of snapshot.roles) {
    p.roles.set(name, { password: role.password, createdNow: false });
  }
  for (const [name, db] of snapshot.databases) {
    const { name: _, ...state } = db;
    p.databases.set(name, { ...state, details: snapshot.details.get(name) });
  }

  const dropSubscriptions = spec.drop_subscriptions_before_start &&
    !snapshot.system.dropSubscriptionsDone;
  planPreDrop(p);
  planRoles(p);
  planDatabases(p);
  planPerDatabase(p, dropSubscriptions);
  planFinal(p, dropSubscriptions);
  planAudit(p);
  return { steps: p.steps, notes: p.notes };
}

/** Pre-drop: a database with subscriptions cannot be dropped; detach them first, in that database. */
function planPreDrop(p: Planner): void {
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

/** CreatePrivilegedRole, DropInvalidDatabases, RenameRoles, CreateAndAlterRoles. */
function planRoles(p: Planner): void {
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
    roles.delete(op.name);
    roles.set(newName, { ...role, password: null });
    const [qOld, qNew] = [quoteIdent(op.name), quoteIdent(newName)];
    add("RenameRoles", `rename role ${qOld} to ${qNew}`, `ALTER ROLE ${qOld} RENAME TO ${qNew}`);
  }

  // Create missing roles; re-set the password only when it differs from the stored one.
  const jwksRoles = new Set(p.options.jwksRoles ?? jwksRoleNames(p.spec));
  for (const role of p.spec.cluster.roles) {
    const qName = quoteIdent(role.name);
    const wanted = storedPassword(role.encrypted_password);
    const existing = roles.get(role.name);
    if (existing) {
      if (existing.password === wanted) continue;
      add(
        "CreateAndAlterRoles",
        `set the password of role ${qName}`,
        joinSql(`ALTER ROLE ${qName}`, roleOptionsSql(role)),
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
      );
      roles.set(role.name, { password: wanted, createdNow: true });
    }
  }
}

/** RenameAndDeleteDatabases, CreateAndAlterDatabases, CreateSchemaNeon. */
function planDatabases(p: Planner): void {
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

  // Create missing databases (granted to the privileged role); fix owners of existing ones.
  for (const db of p.spec.cluster.databases) {
    const qName = quoteIdent(db.name);
    const existing = databases.get(db.name);
    if (existing) {
      if (existing.owner === db.owner) continue;
      add(
        "CreateAndAlterDatabases",
        `make ${quoteIdent(db.owner)} the owner of database ${qName}`,
        `ALTER DATABASE ${qName} OWNER TO ${quoteIdent(db.owner)}`,
      );
      existing.owner = db.owner;
    } else {
      add(
        "CreateAndAlterDatabases",
        `create database ${qName}`,
        joinSql(`CREATE DATABASE ${qName}`, databaseOptionsSql(db)),
      );
      add(
        "CreateAndAlterDatabases",
        `grant database ${qName} to ${qPriv}`,
        `GRANT ALL PRIVILEGES ON DATABASE ${qName} TO ${qPriv}`,
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

/**
 * Per-database phases for every spec database (in spec order), then the system
 * database: DeleteDBRoleReferences, ChangeSchemaPerms (spec databases) and
 * DropLogicalSubscriptions (spec databases other than the system one).
 */
function planPerDatabase(p: Planner, dropSubscriptions: boolean): void {
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
      changeSchemaPerms(specDb, db.details, add, {
        qPriv: p.qPriv,
        webAccessExists: p.roles.has("web_access"),
        serverVersionNum: p.snapshot.serverVersionNum,
      });
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
 * HandleOtherExtensions, HandleNeonExtension, CreateAvailabilityCheck, DropRoles,
 * FinalizeDropLogicalSubscriptions: on the system database.
 */
function planFinal(p: Planner, dropSubscriptions: boolean): void {
  const add = adder(p, "final");
  const system = p.snapshot.system;
  const preload = findOption(p.spec.cluster.settings, "shared_preload_libraries") ?? "";
  if (preload.includes("pg_stat_statements") && !system.extensions.has("pg_stat_statements")) {
    add(
      "HandleOtherExtensions",
      "create extension pg_stat_statements",
      "CREATE EXTENSION IF NOT EXISTS pg_stat_statements WITH SCHEMA public",
    );
  }

  handleNeonExtension(system, add, p.notes);

  if (!system.healthCheckTable) {
    add(
      "CreateAvailabilityCheck",
      "create the availability-check table public.health_check",
      "CREATE TABLE IF NOT EXISTS public.health_check (" +
        "id int4 PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, " +
        "updated_at timestamptz DEFAULT pg_catalog.now())",
    );
    add(
      "CreateAvailabilityCheck",
      "record the first availability check",
      "INSERT INTO public.health_check (id, updated_at) VALUES (1, pg_catalog.now()) " +
        "ON CONFLICT (id) DO UPDATE SET updated_at = pg_catalog.now()",
    );
  }

  for (const op of opsOf(p, "delete_role")) {
    if (!p.roles.delete(op.name)) continue;
    const qName = quoteIdent(op.name);
    add("DropRoles", `drop role ${qName}`, `DROP ROLE IF EXISTS ${qName}`);
  }

  if (dropSubscriptions) {
    const timelineId = p.options.timelineId ?? specTimelineId(p.spec);
    const timelineSql = timelineId == null
      ? "pg_catalog.current_setting('neon.timeline_id')"
      : quoteLiteral(timelineId);
    add(
      "FinalizeDropLogicalSubscriptions",
      "create the marker table neon.drop_subscriptions_done",
      "CREATE TABLE IF NOT EXISTS neon.drop_subscriptions_done (" +
        "id int4 PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, timeline_id text)",
    );
    add(
      "FinalizeDropLogicalSubscriptions",
      "record that this timeline's subscriptions were dropped",
      `INSERT INTO neon.drop_subscriptions_done (id, timeline_id) VALUES (1, ${timelineSql}) ` +
        "ON CONFLICT (id) DO UPDATE SET timeline_id = EXCLUDED.timeline_id",
    );
  }
}

function requireNewName(op: DeltaOp): string {
  if (op.new_name == null || op.new_name === "") {
    throw new SpecPlanError(`${op.action} of ${quoteIdent(op.name)} has no new_name`);
  }
  return op.new_name;
}

/** Joins SQL fragments with single spaces, leaving out empty ones. */
function joinSql(...parts: string[]): string {
  return parts.map((part) => part.trim()).filter((part) => part !== "").join(" ");
}

/** Wraps `sql` so it runs only when schema `public` exists (for databases not inspected). */
function ifPublicSchemaExists(sql: string): string {
  const tag = `$${dollarQuote(sql).outerTag}$`;
  return `DO ${tag} BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace ` +
    `WHERE nspname = 'public') THEN ${sql}; END IF; END ${tag}`;
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
    const owner = dollarQuote(db.owner);
    const tag = `$${owner.outerTag}$`;
    perDb(
      "ChangeSchemaPerms",
      `make ${qOwner} the owner of schema public if the admin still owns it`,
      `DO ${tag} BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace ` +
        `WHERE nspname = 'public' AND pg_catalog.pg_get_userbyid(nspowner) IN ` +
        `(${ADMIN_SCHEMA_OWNERS.map(quoteLiteral).join(", ")})) THEN ` +
        `EXECUTE pg_catalog.format('ALTER SCHEMA public OWNER TO %I', ${owner.quoted}); ` +
        `END IF; END ${tag}`,
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

/**
 * A `DO` block, run in database `dbname`, that disables, detaches from its slot
 * (the publisher's slot is left alone) and drops every subscription of that
 * database, holding a lock on `pg_subscription` meanwhile.
 */
function dropSubscriptionsSql(dbname: string): string {
  const db = dollarQuote(dbname);
  const tag = `$${db.outerTag}$`;
  return [
    `DO ${tag}`,
    "DECLARE",
    "  subscriptions name[];",
    "  subscription name;",
    "BEGIN",
    "  LOCK TABLE pg_catalog.pg_subscription IN ACCESS EXCLUSIVE MODE;",
    "  SELECT pg_catalog.array_agg(s.subname) INTO subscriptions",
    "    FROM pg_catalog.pg_subscription s",
    "    JOIN pg_catalog.pg_database d ON d.oid = s.subdbid",
    `   WHERE d.datname = ${db.quoted};`,
    "  FOREACH subscription IN ARRAY COALESCE(subscriptions, '{}') LOOP",
    "    EXECUTE pg_catalog.format('ALTER SUBSCRIPTION %I DISABLE', subscription);",
    "    EXECUTE pg_catalog.format('ALTER SUBSCRIPTION %I SET (slot_name = NONE)', subscription);",
    "    EXECUTE pg_catalog.format('DROP SUBSCRIPTION %I', subscription);",
    "  END LOOP;",
    `END ${tag}`,
  ].join("\n");
}

/**
 * A `DO` block that revokes the table privileges in schema `public` granted to
 * `role`, once per grantor and as that grantor (`REVOKE … GRANTED BY` must be
 * run by the grantor), so grants made by the privileged role or by other roles
 * do not keep the role from being dropped.
 */
function revokePublicTableGrantsSql(role: string): string {
  const target = dollarQuote(role);
  const tag = `$${target.outerTag}$`;
  return [
    `DO ${tag}`,
    "DECLARE",
    `  target name := ${target.quoted};`,
    "  grantors name[];",
    "  grantor name;",
    "BEGIN",
    "  SELECT pg_catalog.array_agg(DISTINCT g.rolname) INTO grantors",
    "    FROM pg_catalog.pg_class c",
    "    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
    "    CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a",
    "    JOIN pg_catalog.pg_roles g ON g.oid = a.grantor",
    "    JOIN pg_catalog.pg_roles r ON r.oid = a.grantee",
    "   WHERE n.nspname = 'public' AND r.rolname = target;",
    "  FOREACH grantor IN ARRAY COALESCE(grantors, '{}') LOOP",
    "    EXECUTE pg_catalog.format('SET LOCAL ROLE %I', grantor);",
    "    EXECUTE pg_catalog.format(",
    "      'REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM %I GRANTED BY %I',",
    "      target, grantor);",
    "  END LOOP;",
    "  RESET ROLE;",
    `END ${tag}`,
  ].join("\n");
}

/**
 * HandleNeonExtension: install `neon` in schema `neon` at its default version.
 * Vanilla Postgres has no such extension: then nothing is planned, with a note.
 */
function handleNeonExtension(system: SystemDatabaseState, add: AddStep, notes: string[]): void {
  const defaultVersion = system.neonExtensionDefaultVersion;
  if (defaultVersion === null) {
    notes.push("the neon extension is not available on this server: HandleNeonExtension skipped");
    return;
  }
  const phase = "HandleNeonExtension";
  const installed = system.extensions.get("neon");
  if (!installed) {
    add(phase, "create extension neon", "CREATE EXTENSION IF NOT EXISTS neon WITH SCHEMA neon");
    return;
  }
  if (installed.schema !== "neon") {
    if (!installed.relocatable) {
      add(
        phase,
        "make extension neon relocatable",
        "UPDATE pg_catalog.pg_extension SET extrelocatable = true " +
          "WHERE extname = 'neon' AND extrelocatable = false",
      );
    }
    add(phase, "move extension neon to schema neon", "ALTER EXTENSION neon SET SCHEMA neon");
  }
  if (installed.version !== defaultVersion) {
    add(phase, "update extension neon", "ALTER EXTENSION neon UPDATE");
  }
}

/** The pgaudit phases for `audit_log_level`, kept last so everything before is audited. */
function planAudit(p: Planner): void {
  const level = p.spec.audit_log_level;
  if (level === "Disabled") return;
  const add = adder(p, "final");
  const extensions: [SpecPhase, string][] = [["CreatePgauditExtension", "pgaudit"]];
  if (level === "Hipaa" || level === "Extended" || level === "Full") {
    extensions.push(["CreatePgauditlogtofileExtension", "pgauditlogtofile"]);
  }
  for (const [phase, extension] of extensions) {
    if (p.snapshot.system.extensions.has(extension)) continue;
    add(
      phase,
      `create extension ${extension}`,
      `CREATE EXTENSION IF NOT EXISTS ${extension} WITH SCHEMA public`,
    );
  }
  const postgresDb = p.databases.get("postgres");
  if (postgresDb && !postgresDb.settings.includes("pgaudit.log=none")) {
    add(
      "DisablePostgresDBPgAudit",
      "stop auditing the monitoring database postgres",
      "ALTER DATABASE postgres SET pgaudit.log TO 'none'",
    );
  }
}
