/**
 * @module
 * A read-only snapshot of what the spec planner needs to know about the running
 * Postgres: roles with their stored password verifiers, databases with their
 * owners and flags, the compute_ctl-owned objects of the system database, and,
 * per spec database, whether the `public`-schema work of a previous apply is
 * already in place. With it, {@linkcode planSpecApply} can plan no DDL at all for
 * a spec that is already applied.
 */

import type pg from "pg";
import pLimit from "p-limit";

/** A role as stored in `pg_authid`. */
export interface RoleState {
  name: string;
  /** `pg_authid.oid`: tells a role apart from one dropped and created again under its name. */
  oid?: number;
  /** The stored verifier: `md5<32 hex>`, `SCRAM-SHA-256$…`, or `null` (no password). */
  password: string | null;
}

/** A database as stored in `pg_database`. */
export interface DatabaseState {
  name: string;
  /** `pg_database.oid`: tells a database apart from one dropped and created again under its name. */
  oid?: number;
  /** Owner role name (from `pg_roles`, unquoted). */
  owner: string;
  /** `NOT datallowconn`: nobody may connect, so per-database work is skipped. */
  restrictConn: boolean;
  /** `datconnlimit = -2`: left by an interrupted `DROP DATABASE`; must be dropped again. */
  invalid: boolean;
  /** `datistemplate`: must be cleared before the database can be dropped. */
  isTemplate: boolean;
  /** Database-wide `ALTER DATABASE … SET` entries, as `name=value`. */
  settings: string[];
  /** Number of logical-replication subscriptions defined in this database. */
  subscriptions: number;
}

/** What ChangeSchemaPerms would change in one database. */
export interface DatabaseDetails {
  /** Owner of schema `public`, or `null` when the schema does not exist. */
  publicSchemaOwner: string | null;
  /** Role `web_access` holds CREATE on schema `public` (directly). */
  webAccessCanCreate: boolean;
  /** Current user's default privileges in `public` give the privileged role ALL on tables WITH GRANT OPTION. */
  tableDefaultsGranted: boolean;
  /** The same for sequences. */
  sequenceDefaultsGranted: boolean;
}

/** An installed extension in the system database. */
export interface ExtensionState {
  version: string;
  schema: string;
  relocatable: boolean;
}

/** The compute_ctl-owned objects of the system database. */
export interface SystemDatabaseState {
  name: string;
  neonSchema: boolean;
  healthCheckTable: boolean;
  extensions: Map<string, ExtensionState>;
  /** Default version of the `neon` extension, or `null` when it is not available (vanilla Postgres). */
  neonExtensionDefaultVersion: string | null;
  /** `neon.drop_subscriptions_done` records the requested timeline. */
  dropSubscriptionsDone: boolean;
}

/** Everything the planner reads. Maps are keyed by exact (unquoted) name. */
export interface CatalogSnapshot {
  serverVersionNum: number;
  /** `pg_postmaster_start_time()` as text: which run of the server the snapshot is of. */
  postmasterStartTime?: string;
  /** The role DDL runs as (`cloud_admin`); default privileges are recorded for it. */
  currentUser: string;
  roles: Map<string, RoleState>;
  databases: Map<string, DatabaseState>;
  system: SystemDatabaseState;
  /** Per-database details, only for the databases asked for that exist and accept connections. */
  details: Map<string, DatabaseDetails>;
}

/** Runs `fn` on a session connected to `database`. */
export type WithDatabase = <T>(
  database: string,
  fn: (client: pg.Client) => Promise<T>,
) => Promise<T>;

/** Options for {@linkcode snapshotCatalog}. */
export interface SnapshotOptions {
  /** The role whose default privileges are checked (default `neon_superuser`). */
  privilegedRoleName?: string;
  /** Timeline to look up in `neon.drop_subscriptions_done`. */
  timelineId?: string | null;
  /** Databases to inspect in detail (missing or unconnectable ones are skipped). */
  detailDatabases?: Iterable<string>;
  /** How to reach databases other than the client's; without it only the client's is detailed. */
  withDatabase?: WithDatabase;
  /** Parallel per-database connections for details. */
  concurrency?: number;
}

/** The catalog without per-database details: what one session on the system database reads. */
export type ClusterSnapshot = Omit<CatalogSnapshot, "details">;

/**
 * Reads the catalog through `client` (a session on the system database, as
 * opened by `withClient`), then the details of each requested database with at
 * most `concurrency` extra connections at a time. Read-only.
 */
export async function snapshotCatalog(
  client: pg.Client,
  options: SnapshotOptions = {},
): Promise<CatalogSnapshot> {
  const cluster = await snapshotCluster(client, options);
  const details = await readDatabaseDetails(
    client,
    cluster,
    options.detailDatabases ?? [],
    options,
  );
  return { ...cluster, details };
}

/**
 * Reads what the session `client` on the system database sees of the whole
 * cluster (roles, databases, the system database's own objects), with no
 * connection to any other database. Read-only.
 */
export async function snapshotCluster(
  client: pg.Client,
  { timelineId }: Pick<SnapshotOptions, "timelineId"> = {},
): Promise<ClusterSnapshot> {
  const session = await client.query<
    { version: number; current_user: string; current_database: string; started: string }
  >(
    `SELECT pg_catalog.current_setting('server_version_num')::int4 AS version,
            current_user AS current_user, pg_catalog.current_database() AS current_database,
            pg_catalog.pg_postmaster_start_time()::text AS started`,
  );
  const { version, current_user: currentUser, current_database: systemName, started } =
    session.rows[0];

  const roles = new Map<string, RoleState>();
  const roleRows = await client.query<{ oid: number; rolname: string; rolpassword: string | null }>(
    "SELECT oid::int8 AS oid, rolname, rolpassword FROM pg_catalog.pg_authid ORDER BY rolname",
  );
  for (const row of roleRows.rows) {
    roles.set(row.rolname, { name: row.rolname, oid: Number(row.oid), password: row.rolpassword });
  }

  const databases = new Map<string, DatabaseState>();
  const dbRows = await client.query<{
    oid: number;
    datname: string;
    owner: string;
    restrict_conn: boolean;
    invalid: boolean;
    is_template: boolean;
    settings: string[];
    subscriptions: number;
  }>(
    `SELECT d.oid::int8 AS oid, d.datname,
            COALESCE(r.rolname, '') AS owner,
            NOT d.datallowconn AS restrict_conn,
            d.datconnlimit = -2 AS invalid,
            d.datistemplate AS is_template,
            COALESCE((SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s
                       WHERE s.setdatabase = d.oid AND s.setrole = 0), '{}') AS settings,
            (SELECT count(*) FROM pg_catalog.pg_subscription sub
              WHERE sub.subdbid = d.oid)::int4 AS subscriptions
       FROM pg_catalog.pg_database d
       LEFT JOIN pg_catalog.pg_roles r ON r.oid = d.datdba
      ORDER BY d.datname`,
  );
  for (const row of dbRows.rows) {
    databases.set(row.datname, {
      name: row.datname,
      oid: Number(row.oid),
      owner: row.owner,
      restrictConn: row.restrict_conn,
      invalid: row.invalid,
      isTemplate: row.is_template,
      settings: row.settings,
      subscriptions: row.subscriptions,
    });
  }

  const system = await snapshotSystemDatabase(client, systemName, timelineId);
  return {
    serverVersionNum: version,
    postmasterStartTime: started,
    currentUser,
    roles,
    databases,
    system,
  };
}

/**
 * Reads the details of each of `names` that exists in `cluster` and accepts
 * connections: the system database's through `client`, the others through
 * `withDatabase` (skipped without it), at most `concurrency` at a time.
 */
export async function readDatabaseDetails(
  client: pg.Client,
  cluster: ClusterSnapshot,
  names: Iterable<string>,
  { privilegedRoleName = "neon_superuser", withDatabase, concurrency = 1 }: Omit<
    SnapshotOptions,
    "detailDatabases" | "timelineId"
  > = {},
): Promise<Map<string, DatabaseDetails>> {
  const details = new Map<string, DatabaseDetails>();
  const wanted = [...new Set(names)].filter((name) => {
    const db = cluster.databases.get(name);
    return db !== undefined && !db.restrictConn && !db.invalid;
  });
  const limit = pLimit(Math.max(1, concurrency));
  await Promise.all(wanted.map((name) =>
    limit(async () => {
      if (name === cluster.system.name) {
        details.set(name, await snapshotDetails(client, privilegedRoleName));
      } else if (withDatabase) {
        details.set(
          name,
          await withDatabase(name, (dbClient) => snapshotDetails(dbClient, privilegedRoleName)),
        );
      }
    })
  ));
  return details;
}

async function snapshotSystemDatabase(
  client: pg.Client,
  name: string,
  timelineId: string | null | undefined,
): Promise<SystemDatabaseState> {
  const objects = await client.query<
    { neon_schema: boolean; health_check: boolean; neon_default_version: string | null }
  >(
    `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'neon') AS neon_schema,
            pg_catalog.to_regclass('public.health_check') IS NOT NULL AS health_check,
            (SELECT default_version FROM pg_catalog.pg_available_extensions
              WHERE name = 'neon') AS neon_default_version`,
  );
  const extensions = new Map<string, ExtensionState>();
  const extRows = await client.query<
    { extname: string; extversion: string; nspname: string; extrelocatable: boolean }
  >(
    `SELECT e.extname, e.extversion, n.nspname, e.extrelocatable
       FROM pg_catalog.pg_extension e
       JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace`,
  );
  for (const row of extRows.rows) {
    extensions.set(row.extname, {
      version: row.extversion,
      schema: row.nspname,
      relocatable: row.extrelocatable,
    });
  }

  let dropSubscriptionsDone = false;
  if (timelineId) {
    try {
      const done = await client.query(
        "SELECT 1 FROM neon.drop_subscriptions_done WHERE timeline_id = $1",
        [timelineId],
      );
      dropSubscriptionsDone = (done.rowCount ?? 0) > 0;
    } catch (error) {
      // 42P01 undefined_table: the marker table was never created, so not done yet.
      if ((error as { code?: string }).code !== "42P01") throw error;
    }
  }

  const { neon_schema, health_check, neon_default_version } = objects.rows[0];
  return {
    name,
    neonSchema: neon_schema,
    healthCheckTable: health_check,
    extensions,
    neonExtensionDefaultVersion: neon_default_version,
    dropSubscriptionsDone,
  };
}

/**
 * Default privileges of the current user in `public` for `objtype` (`r` tables,
 * `S` sequences) include, with grant option, every privilege the object type has
 * (taken from `acldefault`, i.e. what an owner holds, so the list follows the
 * server version).
 */
function defaultsGrantedSql(defaclObjtype: "r" | "S", acldefaultType: "r" | "s"): string {
  return `EXISTS (SELECT 1 FROM priv) AND NOT EXISTS (
            SELECT 1 FROM priv, pg_catalog.aclexplode(pg_catalog.acldefault('${acldefaultType}', priv.oid)) want
             WHERE want.grantee = priv.oid AND NOT EXISTS (
               SELECT 1 FROM pub, pg_catalog.pg_default_acl d, pg_catalog.aclexplode(d.defaclacl) have
                WHERE d.defaclrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
                  AND d.defaclnamespace = pub.oid AND d.defaclobjtype = '${defaclObjtype}'
                  AND have.grantee = priv.oid AND have.privilege_type = want.privilege_type
                  AND have.is_grantable))`;
}

async function snapshotDetails(
  client: pg.Client,
  privilegedRoleName: string,
): Promise<DatabaseDetails> {
  const result = await client.query<{
    public_owner: string | null;
    web_access_can_create: boolean;
    table_defaults: boolean;
    sequence_defaults: boolean;
  }>(
    `WITH pub AS (SELECT oid, nspowner, nspacl FROM pg_catalog.pg_namespace WHERE nspname = 'public'),
          priv AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)
     SELECT (SELECT r.rolname FROM pub JOIN pg_catalog.pg_roles r ON r.oid = pub.nspowner) AS public_owner,
            EXISTS (SELECT 1 FROM pub, pg_catalog.aclexplode(pub.nspacl) a
                      JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
                     WHERE r.rolname = 'web_access' AND a.privilege_type = 'CREATE') AS web_access_can_create,
            ${defaultsGrantedSql("r", "r")} AS table_defaults,
            ${defaultsGrantedSql("S", "s")} AS sequence_defaults`,
    [privilegedRoleName],
  );
  const row = result.rows[0];
  return {
    publicSchemaOwner: row.public_owner,
    webAccessCanCreate: row.web_access_can_create,
    tableDefaultsGranted: row.table_defaults,
    sequenceDefaultsGranted: row.sequence_defaults,
  };
}
