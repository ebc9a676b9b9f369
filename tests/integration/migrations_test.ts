import assert from "node:assert/strict";
import { computeSpecSchema } from "../../src/api/spec.ts";
import { withClient } from "../../src/postgres/connect.ts";
import { MIGRATIONS, runMigrations } from "../../src/postgres/migrations.ts";
import { applySpec } from "../../src/postgres/spec_apply.ts";
import { type LocalPostgres, startLocalPostgres } from "../_support/local_postgres.ts";

const PRIV = "neon_superuser";
const QUIET = { debug() {}, info() {}, warn() {}, error() {} };

/** A cluster after a first spec apply: the privileged role exists, as migrations expect. */
async function startPrepared(): Promise<LocalPostgres> {
  const server = await startLocalPostgres();
  try {
    const spec = computeSpecSchema.parse({
      format_version: 1,
      suspend_timeout_seconds: 0,
      cluster: { roles: [], databases: [] },
    });
    await applySpec(server.connstr, spec, { privilegedRoleName: PRIV, concurrency: 1, log: QUIET });
    return server;
  } catch (error) {
    await server.stop();
    throw error;
  }
}

async function storedId(server: LocalPostgres): Promise<number> {
  return await withClient(
    server.connstr,
    { applicationName: "migrations_test" },
    async (client) => {
      const { rows } = await client.query<{ id: string }>(
        "SELECT id FROM neon_migration.migration_id",
      );
      assert.equal(rows.length, 1);
      return Number(rows[0].id);
    },
  );
}

async function check(server: LocalPostgres, sql: string): Promise<unknown> {
  return await withClient(
    server.connstr,
    { applicationName: "migrations_test" },
    async (client) => {
      const { rows } = await client.query<{ ok: unknown }>(sql);
      return rows[0].ok;
    },
  );
}

function monitorGrants(server: LocalPostgres): Promise<unknown> {
  return check(
    server,
    `SELECT count(*)::int AS ok FROM pg_auth_members
      WHERE roleid = 'pg_monitor'::regrole AND member = '${PRIV}'::regrole`,
  );
}

Deno.test("all twelve migrations are recorded, and a re-run is a no-op", async () => {
  await using server = await startPrepared();
  assert.equal(MIGRATIONS.length, 12);
  const failures: number[] = [];
  const first = await runMigrations(server.connstr, {
    privilegedRoleName: PRIV,
    onFailure: (id) => failures.push(id),
    log: QUIET,
  });
  assert.deepEqual(first, { applied: 12, lastId: 12 });
  assert.deepEqual(failures, []);
  assert.equal(await storedId(server), 12);

  const second = await runMigrations(server.connstr, { privilegedRoleName: PRIV, log: QUIET });
  assert.deepEqual(second, { applied: 0, lastId: 12 });
  assert.equal(await storedId(server), 12);

  // End state of a few migrations (the checks of Neon's migration tests).
  assert.equal(
    await check(server, `SELECT rolbypassrls AS ok FROM pg_roles WHERE rolname = '${PRIV}'`),
    true,
  );
  for (const granted of ["pg_monitor", "pg_signal_backend"]) {
    assert.equal(
      await check(
        server,
        `SELECT m.admin_option AS ok FROM pg_auth_members m
           WHERE m.roleid = '${granted}'::regrole AND m.member = '${PRIV}'::regrole`,
      ),
      true,
      granted,
    );
  }
  assert.equal(
    await check(
      server,
      `SELECT has_function_privilege('${PRIV}', 'pg_catalog.pg_show_replication_origin_status()', 'EXECUTE') AS ok`,
    ),
    true,
  );
  // Migrations 3 and 10 grant what PostgreSQL 16 added, on 16 and later only.
  const from16 =
    Number(await check(server, "SELECT current_setting('server_version_num') AS ok")) >=
      160000;
  assert.equal(
    await check(
      server,
      `SELECT count(*) = 2 AND bool_and(has_function_privilege('${PRIV}', oid, 'EXECUTE')) AS ok
         FROM pg_proc WHERE proname IN ('pg_export_snapshot', 'pg_log_standby_snapshot')
          AND pronamespace = 'pg_catalog'::regnamespace`,
    ),
    from16,
  );
  // The privileged role as Neon's test_neon_superuser expects it after migrations.
  assert.deepEqual(
    await check(
      server,
      `SELECT json_build_object(
                'super', rolsuper, 'inherit', rolinherit, 'createrole', rolcreaterole,
                'createdb', rolcreatedb, 'login', rolcanlogin, 'replication', rolreplication,
                'connlimit', rolconnlimit, 'bypassrls', rolbypassrls,
                'member_of', (SELECT json_agg(g.rolname ORDER BY g.rolname)
                                FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                               WHERE m.member = r.oid)) AS ok
         FROM pg_roles r WHERE rolname = '${PRIV}'`,
    ),
    {
      super: false,
      inherit: true,
      createrole: true,
      createdb: true,
      login: false,
      replication: true,
      connlimit: -1,
      bypassrls: true,
      member_of: [
        ...(from16 ? ["pg_create_subscription"] : []),
        "pg_monitor",
        "pg_read_all_data",
        "pg_signal_backend",
        "pg_write_all_data",
      ],
    },
  );
  // Migration 2: no role outside the privileged role (except pg_*) bypasses RLS.
  assert.equal(
    await check(
      server,
      `SELECT count(*)::int AS ok FROM pg_roles
        WHERE rolbypassrls AND NOT pg_has_role(oid, '${PRIV}', 'MEMBER') AND rolname !~ '^pg_'`,
    ),
    0,
  );
  // The tracking schema is closed to PUBLIC and owned by cloud_admin.
  assert.equal(
    await check(
      server,
      `SELECT nspowner::regrole::text = 'cloud_admin' AND NOT has_schema_privilege('public', oid, 'USAGE') AS ok
         FROM pg_namespace WHERE nspname = 'neon_migration'`,
    ),
    true,
  );
});

Deno.test("failAt N leaves N-1 recorded, reports the failure, and the next run resumes", async () => {
  await using server = await startPrepared();
  for (const failAt of [4, 7, 12]) {
    const failures: [number, string][] = [];
    const result = await runMigrations(server.connstr, {
      privilegedRoleName: PRIV,
      failAt,
      onFailure: (id, error) => failures.push([id, error.message]),
      log: QUIET,
    });
    assert.equal(result.lastId, failAt - 1);
    assert.equal(result.failedId, failAt);
    assert.deepEqual(failures, [[failAt, `failpoint compute-migration=return(${failAt})`]]);
    assert.equal(await storedId(server), failAt - 1);
    // Migration 4 is rolled back together with its id bump, then applied by the next run.
    assert.equal(await monitorGrants(server), failAt === 4 ? 0 : 1);
  }
  const resumed = await runMigrations(server.connstr, { privilegedRoleName: PRIV, log: QUIET });
  assert.deepEqual(resumed, { applied: 1, lastId: 12 });
  assert.equal(await storedId(server), 12);
});

Deno.test("a failing migration is rolled back as a whole", async () => {
  await using server = await startPrepared();
  // Without the privileged role, migration 1 (ALTER ROLE) fails: nothing is recorded.
  const failures: number[] = [];
  const result = await runMigrations(server.connstr, {
    privilegedRoleName: "no_such_role",
    onFailure: (id) => failures.push(id),
    log: QUIET,
  });
  assert.deepEqual(result, { applied: 0, lastId: 0, failedId: 1 });
  assert.deepEqual(failures, [1]);
  assert.equal(await storedId(server), 0);
});
