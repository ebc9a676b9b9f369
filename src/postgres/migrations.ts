/**
 * @module
 * compute_ctl's catalog migrations: twelve numbered, append-only steps (5–9 are
 * retired placeholders that are only recorded), tracked in
 * `neon_migration.migration_id` as the number applied so far. Each runs in its
 * own transaction together with the bump of that number, so a failure leaves the
 * number at the last good migration and the next run resumes there. Failures do
 * not throw: they are reported through `onFailure` (the caller counts them).
 */

import type pg from "pg";
import { getLogger, type Log } from "../log.ts";
import { withClient } from "./connect.ts";

/** `application_name` of the migration session, as in Neon. */
export const MIGRATIONS_APPLICATION_NAME = "compute_ctl:migrations";

/** Marks a retired migration: recorded as applied, never executed. */
const SKIP = "-- SKIP";

/**
 * The migrations in order (id = index + 1), with `{privileged_role_name}` for
 * the privileged role. Statements that need PostgreSQL 16 check
 * `server_version_num` themselves.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the privileged role bypasses row-level security.
  "ALTER ROLE {privileged_role_name} BYPASSRLS",

  // 2: repair INC-110: members of the privileged role inherit its privileges, and no role outside
  // it (other than built-in pg_* roles) bypasses row-level security.
  `DO $migration$
DECLARE
  role_name name;
BEGIN
  FOR role_name IN
    SELECT rolname FROM pg_catalog.pg_roles
     WHERE pg_catalog.pg_has_role(oid, '{privileged_role_name}', 'MEMBER') AND NOT rolinherit
  LOOP
    RAISE NOTICE 'making role % inherit', pg_catalog.quote_ident(role_name);
    EXECUTE pg_catalog.format('ALTER ROLE %I INHERIT', role_name);
  END LOOP;
  FOR role_name IN
    SELECT rolname FROM pg_catalog.pg_roles
     WHERE NOT pg_catalog.pg_has_role(oid, '{privileged_role_name}', 'MEMBER')
       AND NOT pg_catalog.starts_with(rolname, 'pg_') AND rolbypassrls
  LOOP
    RAISE NOTICE 'removing BYPASSRLS from role %', pg_catalog.quote_ident(role_name);
    EXECUTE pg_catalog.format('ALTER ROLE %I NOBYPASSRLS', role_name);
  END LOOP;
END
$migration$`,

  // 3: (PG16+) the privileged role may create subscriptions.
  `DO $migration$
BEGIN
  IF pg_catalog.current_setting('server_version_num')::int4 >= 160000 THEN
    EXECUTE 'GRANT pg_create_subscription TO {privileged_role_name}';
  END IF;
END
$migration$`,

  // 4: the privileged role may monitor, and hand that on.
  "GRANT pg_monitor TO {privileged_role_name} WITH ADMIN OPTION",

  // 5–9: retired (default privileges moved into the per-database spec apply; the NOREPLICATION
  // sweep was not enough to block subscriptions).
  `${SKIP} default privileges on tables in public (retired)`,
  `${SKIP} default privileges on sequences in public (retired)`,
  `${SKIP} default privileges on tables with grant option (retired)`,
  `${SKIP} default privileges on sequences with grant option (retired)`,
  `${SKIP} revoke replication from previously allowed roles (retired)`,

  // 10: (PG16+) the privileged role may export and log snapshots, for logical replication tools.
  `DO $migration$
BEGIN
  IF pg_catalog.current_setting('server_version_num')::int4 >= 160000 THEN
    EXECUTE 'GRANT EXECUTE ON FUNCTION pg_catalog.pg_export_snapshot(), pg_catalog.pg_log_standby_snapshot() TO {privileged_role_name}';
  END IF;
END
$migration$`,

  // 11: the privileged role may read replication origin progress.
  "GRANT EXECUTE ON FUNCTION pg_catalog.pg_show_replication_origin_status() " +
  "TO {privileged_role_name}",

  // 12: the privileged role may cancel and terminate backends, and hand that on.
  "GRANT pg_signal_backend TO {privileged_role_name} WITH ADMIN OPTION",
];

/** Options for {@linkcode runMigrations}. */
export interface RunMigrationsOptions {
  privilegedRoleName: string;
  /** The `compute-migration=return(N)` failpoint: make recording migration N fail. */
  failAt?: number;
  /** Called once when a migration fails (it was rolled back; later ones were not tried). */
  onFailure?: (migrationId: number, error: Error) => void;
  log?: Log;
}

/** What {@linkcode runMigrations} did. */
export interface RunMigrationsResult {
  /** Migrations applied (or recorded as skipped) by this run. */
  applied: number;
  /** The stored id afterwards: the number of migrations applied so far. */
  lastId: number;
  /** The migration that failed, if one did. */
  failedId?: number;
}

/**
 * Applies the migrations not yet recorded, in order, each in its own
 * transaction. Throws only when the tracking table cannot be prepared or read;
 * a failing migration stops the run, is reported to `onFailure`, and is retried
 * by the next run.
 */
export async function runMigrations(
  connstr: string,
  { privilegedRoleName, failAt, onFailure, log = getLogger("migrations") }: RunMigrationsOptions,
): Promise<RunMigrationsResult> {
  return await withClient(
    connstr,
    { applicationName: MIGRATIONS_APPLICATION_NAME },
    async (client) => {
      await prepareTracking(client);
      const stored = await client.query<{ id: string }>(
        "SELECT id FROM neon_migration.migration_id WHERE key = 0",
      );
      let lastId = Number(stored.rows[0]?.id ?? 0);
      let applied = 0;
      while (lastId < MIGRATIONS.length) {
        const id = lastId + 1;
        const text = MIGRATIONS[id - 1].replaceAll("{privileged_role_name}", privilegedRoleName);
        try {
          await client.query("BEGIN");
          if (text.startsWith(SKIP)) {
            log.info(`Skipping migration id=${id}`);
          } else {
            log.info(`Running migration id=${id}`);
            await client.query(text);
          }
          if (failAt === id) throw new Error(`failpoint compute-migration=return(${id})`);
          await client.query("UPDATE neon_migration.migration_id SET id = $1 WHERE key = 0", [id]);
          await client.query("COMMIT");
        } catch (cause) {
          await client.query("ROLLBACK").catch(() => {});
          const error = cause instanceof Error ? cause : new Error(String(cause));
          log.error(`Failed to run migration id=${id}: ${error.message}`);
          onFailure?.(id, error);
          return { applied, lastId, failedId: id };
        }
        lastId = id;
        applied++;
      }
      return { applied, lastId };
    },
  );
}

/** Creates the tracking schema and table (owned by cloud_admin, closed to PUBLIC) and its row. */
async function prepareTracking(client: pg.Client): Promise<void> {
  await client.query("CREATE SCHEMA IF NOT EXISTS neon_migration");
  await client.query(
    "CREATE TABLE IF NOT EXISTS neon_migration.migration_id " +
      "(key int4 NOT NULL PRIMARY KEY, id int8 NOT NULL DEFAULT 0)",
  );
  await client.query(
    "INSERT INTO neon_migration.migration_id (key, id) VALUES (0, 0) ON CONFLICT DO NOTHING",
  );
  await client.query("ALTER SCHEMA neon_migration OWNER TO cloud_admin");
  await client.query("REVOKE ALL ON SCHEMA neon_migration FROM PUBLIC");
}
