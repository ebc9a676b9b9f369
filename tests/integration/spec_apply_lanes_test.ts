import assert from "node:assert/strict";
import pg from "pg";
import { computeSpecSchema } from "../../src/api/spec.ts";
import { withClient } from "../../src/postgres/connect.ts";
import { applySpec, SpecApplyError } from "../../src/postgres/spec_apply.ts";
import { LANES_PER_EXTRA_SESSION, MAX_LANE_SESSIONS } from "../../src/postgres/spec_execute.ts";
import { type LocalPostgres, startLocalPostgres } from "../_support/local_postgres.ts";

const PRIV = "neon_superuser";
const QUIET = { debug() {}, info() {}, warn() {}, error() {} };

function apply(server: LocalPostgres, databases: unknown[]) {
  const roles = ["r0", "r1", "r2"].map((name) => ({ name }));
  const spec = computeSpecSchema.parse({
    format_version: 1,
    suspend_timeout_seconds: 0,
    cluster: { roles, databases },
  });
  return applySpec(server.connstr, spec, {
    privilegedRoleName: PRIV,
    concurrency: 4,
    log: QUIET,
    settled: new Map(),
  });
}

function query<R extends pg.QueryResultRow>(
  server: LocalPostgres,
  sql: string,
  database?: string,
): Promise<R[]> {
  return withClient(
    server.connstr,
    { applicationName: "spec_apply_lanes_test", database },
    async (client) => (await client.query<R>(sql)).rows,
  );
}

async function databaseNames(server: LocalPostgres): Promise<string[]> {
  const rows = await query<{ datname: string }>(
    server,
    "SELECT datname FROM pg_catalog.pg_database WHERE datname ~ '^d[0-9]+$' ORDER BY 1",
  );
  return rows.map((row) => row.datname);
}

async function neonSchemaExists(server: LocalPostgres): Promise<boolean> {
  const rows = await query(server, "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'neon'");
  return rows.length > 0;
}

/** Enough databases for the apply to create them on every session it may use. */
const DATABASES = Array.from(
  { length: LANES_PER_EXTRA_SESSION * (MAX_LANE_SESSIONS - 1) + 2 },
  (_, i) => ({ name: `d${String(i).padStart(2, "0")}`, owner: `r${i % 3}` }),
);

Deno.test("databases created side by side: each with its owner and grant, then the later stages", async () => {
  await using server = await startLocalPostgres();
  const result = await apply(server, DATABASES);
  assert.equal(result.statementsRun, result.plan.steps.length);

  const rows = await query<{ datname: string; owner: string; granted: boolean }>(
    server,
    `SELECT d.datname, pg_catalog.pg_get_userbyid(d.datdba) AS owner,
            pg_catalog.has_database_privilege('${PRIV}', d.oid, 'CREATE, CONNECT, TEMPORARY')
              AS granted
       FROM pg_catalog.pg_database d WHERE d.datname ~ '^d[0-9]+$' ORDER BY 1`,
  );
  assert.deepEqual(
    rows,
    DATABASES.map((db) => ({ datname: db.name, owner: db.owner, granted: true })),
  );
  assert.ok(await neonSchemaExists(server));
  for (const db of DATABASES) {
    const acl = await query(server, "SELECT 1 FROM pg_catalog.pg_default_acl", db.name);
    assert.equal(acl.length, 2, `default privileges in ${db.name}`);
  }

  const again = await apply(server, DATABASES);
  assert.deepEqual(again.plan.steps, []);
});

Deno.test("a failing CREATE DATABASE among others: its error, earlier ones created, no later stage", async () => {
  await using server = await startLocalPostgres();
  const databases = DATABASES.map((db) =>
    db.name === "d03"
      ? { ...db, options: [{ name: "ENCODING", value: "no_such_encoding", vartype: "string" }] }
      : db
  );
  await assert.rejects(apply(server, databases), (error: unknown) => {
    assert.ok(error instanceof SpecApplyError);
    assert.equal(error.phase, "CreateAndAlterDatabases");
    assert.equal(error.purpose, 'create database "d03"');
    assert.match(error.message, /no_such_encoding is not a valid encoding name/);
    return true;
  });
  // Lanes start in plan order, so d00–d02 had started before d03 failed; each ran to its end.
  const created = await databaseNames(server);
  assert.deepEqual(created.slice(0, 3), ["d00", "d01", "d02"]);
  assert.ok(!created.includes("d03"));
  assert.equal(await neonSchemaExists(server), false);
  const acl = await query(server, "SELECT 1 FROM pg_catalog.pg_default_acl", "d00");
  assert.equal(acl.length, 0);
});
