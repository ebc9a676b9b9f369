import assert from "node:assert/strict";
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import pg from "pg";
import { computeSpecSchema } from "../../src/api/spec.ts";
import { withClient } from "../../src/postgres/connect.ts";
import { applySpec, SpecApplyError } from "../../src/postgres/spec_apply.ts";
import { SpecPlanError } from "../../src/postgres/spec_plan/mod.ts";
import { type LocalPostgres, startLocalPostgres } from "../_support/local_postgres.ts";

const PRIV = "neon_superuser";
const APP = { applicationName: "spec_apply_test" };

type SpecInput = {
  roles?: unknown[];
  databases?: unknown[];
  delta_operations?: unknown[];
  [key: string]: unknown;
};

function spec({ roles = [], databases = [], ...rest }: SpecInput = {}) {
  return computeSpecSchema.parse({
    format_version: 1,
    suspend_timeout_seconds: 0,
    cluster: { roles, databases },
    ...rest,
  });
}

function apply(server: LocalPostgres, input: SpecInput, dryRun = false) {
  return applySpec(server.connstr, spec(input), {
    privilegedRoleName: PRIV,
    concurrency: 4,
    dryRun,
    log: { debug() {}, info() {}, warn() {}, error() {} },
  });
}

/** Neon's md5 form: hex md5 of password + user name, without the `md5` prefix. */
function md5Password(user: string, password: string): string {
  return createHash("md5").update(password + user).digest("hex");
}

/** A SCRAM-SHA-256 verifier as Postgres stores it. */
function scramVerifier(password: string): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password, salt, 4096, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest("base64");
  const serverKey = createHmac("sha256", salted).update("Server Key").digest("base64");
  return `SCRAM-SHA-256$4096:${salt.toString("base64")}$${storedKey}:${serverKey}`;
}

async function canLogin(
  server: LocalPostgres,
  user: string,
  password: string,
  database = "postgres",
): Promise<boolean> {
  const client = new pg.Client({ host: "127.0.0.1", port: server.port, user, password, database });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

function query<R extends pg.QueryResultRow>(
  server: LocalPostgres,
  sql: string,
  params: unknown[] = [],
  database?: string,
): Promise<R[]> {
  return withClient(
    server.connstr,
    { ...APP, database },
    async (client) => (await client.query<R>(sql, params)).rows,
  );
}

async function roleNames(server: LocalPostgres): Promise<string[]> {
  const rows = await query<{ rolname: string }>(
    server,
    "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname !~ '^pg_' ORDER BY 1",
  );
  return rows.map((row) => row.rolname);
}

async function databaseOwners(server: LocalPostgres): Promise<Map<string, string>> {
  const rows = await query<{ datname: string; owner: string }>(
    server,
    `SELECT d.datname, r.rolname AS owner FROM pg_catalog.pg_database d
       JOIN pg_catalog.pg_roles r ON r.oid = d.datdba`,
  );
  return new Map(rows.map((row) => [row.datname, row.owner]));
}

async function assertIdempotent(server: LocalPostgres, input: SpecInput): Promise<void> {
  const again = await apply(server, input);
  assert.deepEqual(again.plan.steps, [], JSON.stringify(again.plan.steps, null, 1));
  assert.equal(again.statementsRun, 0);
}

/** Role and database names from Neon's test_compute_catalog.py. */
const TRICKY_NAMES = [
  "name with spaces",
  "name%20with%20escapes",
  "trailing tab\t",
  "'; SELECT pg_sleep(1000);",
  "#&=",
  "🐘 emoji",
  "\";with ';injections $$ $x$ $ %I !/\\&#@",
  '"quoted"',
  "'single quoted'",
  "role$",
  "role$$",
  "role$x$",
  "x",
  "xx",
  "$x",
  "x$",
  "$x$",
  "xx$",
  "$xx",
  "$xx$",
  "x".repeat(63),
];

Deno.test("tricky role and database names: created exactly, connectable, dropped", async () => {
  await using server = await startLocalPostgres();
  const created: SpecInput = {
    roles: TRICKY_NAMES.map((name) => ({ name, encrypted_password: md5Password(name, "pw") })),
    databases: TRICKY_NAMES.map((name) => ({ name, owner: name })),
  };
  const first = await apply(server, created);
  assert.ok(first.statementsRun > TRICKY_NAMES.length * 3);
  assert.equal(first.statementsRun, first.plan.steps.length);

  const roles = await roleNames(server);
  const owners = await databaseOwners(server);
  for (const name of TRICKY_NAMES) {
    assert.ok(roles.includes(name), `role ${JSON.stringify(name)}`);
    assert.equal(owners.get(name), name, `database ${JSON.stringify(name)}`);
    const rows = await query<{ db: string }>(server, "SELECT current_database() AS db", [], name);
    assert.deepEqual(rows, [{ db: name }]);
  }
  assert.ok(await canLogin(server, "'; SELECT pg_sleep(1000);", "pw", "$x$"));

  await assertIdempotent(server, created);

  const deleted = await apply(server, {
    delta_operations: [
      ...TRICKY_NAMES.map((name) => ({ action: "delete_db", name })),
      ...TRICKY_NAMES.map((name) => ({ action: "delete_role", name })),
    ],
  });
  assert.ok(deleted.statementsRun > 0);
  const rolesAfter = await roleNames(server);
  const ownersAfter = await databaseOwners(server);
  for (const name of TRICKY_NAMES) {
    assert.ok(!rolesAfter.includes(name), `role ${JSON.stringify(name)} still exists`);
    assert.ok(!ownersAfter.has(name), `database ${JSON.stringify(name)} still exists`);
  }
});

Deno.test("roles and databases added, renamed, dropped; passwords changed; re-apply runs nothing", async () => {
  await using server = await startLocalPostgres();
  const v1: SpecInput = {
    roles: [
      { name: "alice", encrypted_password: md5Password("alice", "alice-1") },
      { name: "bob", encrypted_password: scramVerifier("bob-1") },
    ],
    databases: [{ name: "app", owner: "alice" }, { name: "scratch", owner: "bob" }],
  };
  await apply(server, v1);
  assert.ok(await canLogin(server, "alice", "alice-1", "app"));
  assert.ok(await canLogin(server, "bob", "bob-1", "scratch"));
  assert.ok(!await canLogin(server, "alice", "wrong", "app"));
  await assertIdempotent(server, v1);

  // bob gets objects and grants in "app" that would keep DROP ROLE from working.
  await withClient(server.connstr, { ...APP, database: "app" }, async (client) => {
    await client.query("GRANT CREATE ON SCHEMA public TO bob");
    await client.query("SET ROLE bob; CREATE TABLE public.bobs_table (id int); RESET ROLE");
    await client.query("SET ROLE alice; CREATE TABLE public.alices_table (id int)");
    await client.query("GRANT SELECT ON public.alices_table TO bob; RESET ROLE");
    await client.query("CREATE TABLE public.admin_table (id int)");
    await client.query(`GRANT ALL ON public.admin_table TO ${PRIV} WITH GRANT OPTION`);
    await client.query(`SET ROLE ${PRIV}; GRANT SELECT ON public.admin_table TO bob; RESET ROLE`);
  });

  const carolVerifier = scramVerifier("carol-1");
  const v2: SpecInput = {
    roles: [
      { name: "alice2", encrypted_password: md5Password("alice2", "alice-2") },
      { name: "carol", encrypted_password: carolVerifier },
    ],
    databases: [{ name: "app2", owner: "alice2" }, { name: "newdb", owner: "carol" }],
    delta_operations: [
      { action: "rename_role", name: "alice", new_name: "alice2" },
      { action: "rename_db", name: "app", new_name: "app2" },
      { action: "delete_db", name: "scratch" },
      { action: "delete_role", name: "bob" },
    ],
  };
  const second = await apply(server, v2);
  const phases = new Set(second.plan.steps.map((step) => step.phase));
  for (
    const phase of [
      "RenameRoles",
      "RenameAndDeleteDatabases",
      "DeleteDBRoleReferences",
      "DropRoles",
    ]
  ) {
    assert.ok(phases.has(phase as never), phase);
  }
  assert.deepEqual(await roleNames(server), ["alice2", "carol", "cloud_admin", PRIV]);
  const owners = await databaseOwners(server);
  assert.equal(owners.get("app2"), "alice2");
  assert.equal(owners.get("newdb"), "carol");
  assert.ok(!owners.has("app") && !owners.has("scratch"));
  assert.ok(await canLogin(server, "alice2", "alice-2", "app2"));
  assert.ok(await canLogin(server, "carol", "carol-1", "newdb"));
  const tables = await query<{ tablename: string; tableowner: string }>(
    server,
    "SELECT tablename, tableowner FROM pg_catalog.pg_tables WHERE schemaname = 'public' ORDER BY 1",
    [],
    "app2",
  );
  assert.deepEqual(tables, [
    { tablename: "admin_table", tableowner: "cloud_admin" },
    { tablename: "alices_table", tableowner: "alice2" },
    { tablename: "bobs_table", tableowner: "alice2" },
  ]);
  await assertIdempotent(server, v2);

  // Password changes: one ALTER per changed role, and only the new passwords work.
  const v3: SpecInput = {
    ...v2,
    roles: [
      { name: "alice2", encrypted_password: md5Password("alice2", "alice-3") },
      { name: "carol", encrypted_password: scramVerifier("carol-3") },
    ],
  };
  const third = await apply(server, v3);
  assert.equal(third.statementsRun, 2);
  assert.deepEqual(third.plan.steps.map((step) => step.phase), [
    "CreateAndAlterRoles",
    "CreateAndAlterRoles",
  ]);
  assert.ok(await canLogin(server, "alice2", "alice-3"));
  assert.ok(!await canLogin(server, "alice2", "alice-2"));
  assert.ok(await canLogin(server, "carol", "carol-3"));
  assert.ok(!await canLogin(server, "carol", "carol-1"));
  await assertIdempotent(server, v3);
});

Deno.test("delete_role of a role holding table grants from the privileged role and from others", async () => {
  await using server = await startLocalPostgres();
  const grantee = "'); MALFORMED SQL $$ $x$ $/;5%$ %I";
  const owner = "'$$; RAISE EXCEPTION 'SQL injection detected;'";
  const base: SpecInput = {
    roles: [{ name: owner }, { name: grantee }],
    databases: [{ name: "db", owner }],
  };
  await apply(server, base);
  const q = (name: string) => `"${name.replaceAll('"', '""')}"`;
  await withClient(server.connstr, { ...APP, database: "db" }, async (client) => {
    await client.query(`SET ROLE ${q(owner)}; CREATE TABLE public.t1 (id int)`);
    await client.query(`GRANT SELECT, INSERT ON public.t1 TO ${q(grantee)}`);
    await client.query(`GRANT ALL ON public.t1 TO ${PRIV} WITH GRANT OPTION; RESET ROLE`);
    await client.query(`SET ROLE ${PRIV}; GRANT UPDATE ON public.t1 TO ${q(grantee)}; RESET ROLE`);
  });
  const result = await apply(server, {
    ...base,
    roles: [{ name: owner }],
    delta_operations: [{ action: "delete_role", name: grantee }],
  });
  assert.ok(result.statementsRun >= 7);
  assert.ok(!(await roleNames(server)).includes(grantee));
});

Deno.test("per-database ALTER DATABASE … SET traps do not break apply", async () => {
  await using server = await startLocalPostgres();
  const v1: SpecInput = {
    roles: [{ name: "owner" }, { name: "victim" }, { name: "someone" }],
    databases: [{ name: "trap", owner: "owner" }],
  };
  await apply(server, v1);
  for (const database of ["trap", "postgres"]) {
    await query(server, `ALTER DATABASE ${database} SET default_transaction_read_only = on`);
    await query(server, `ALTER DATABASE ${database} SET search_path = 'nowhere'`);
    await query(server, `ALTER DATABASE ${database} SET statement_timeout = 1`);
    await query(server, `ALTER DATABASE ${database} SET role = 'someone'`);
  }
  // The traps are real: a plain session is read-only, and runs as "someone".
  // It lifts only the 1 ms statement timeout, which on a busy machine would
  // cancel this check itself; the catalog shows that trap is set.
  const plain = new pg.Client({
    host: "127.0.0.1",
    port: server.port,
    user: "cloud_admin",
    database: "trap",
    options: "-c statement_timeout=0",
  });
  await plain.connect();
  try {
    const { rows } = await plain.query(
      "SELECT current_user AS who, current_setting('default_transaction_read_only') AS ro",
    );
    assert.deepEqual(rows, [{ who: "someone", ro: "on" }]);
    const settings = await plain.query(
      `SELECT d.datname, s.setconfig FROM pg_db_role_setting s
         JOIN pg_database d ON d.oid = s.setdatabase
        WHERE s.setrole = 0 AND d.datname IN ('trap', 'postgres') ORDER BY 1`,
    );
    assert.equal(settings.rows.length, 2);
    for (const row of settings.rows) assert.ok(row.setconfig.includes("statement_timeout=1"));
  } finally {
    await plain.end();
  }

  const result = await apply(server, {
    roles: [{ name: "owner" }, { name: "someone" }, { name: "extra" }],
    databases: [{ name: "trap", owner: "extra" }, { name: "fresh", owner: "owner" }],
    delta_operations: [{ action: "delete_role", name: "victim" }],
  });
  assert.ok(result.plan.steps.some((step) => step.database === "trap"));
  assert.ok(result.plan.steps.some((step) => step.database === "postgres"));
  const owners = await databaseOwners(server);
  assert.equal(owners.get("trap"), "extra");
  assert.equal(owners.get("fresh"), "owner");
  assert.ok(!(await roleNames(server)).includes("victim"));
});

Deno.test("dry run plans without changing anything; errors name the phase and purpose", async () => {
  await using server = await startLocalPostgres();
  const dry = await apply(server, { roles: [{ name: "ghost" }] }, true);
  assert.equal(dry.statementsRun, 0);
  assert.ok(dry.plan.steps.some((step) => step.sql.startsWith('CREATE ROLE "ghost"')));
  assert.ok(!(await roleNames(server)).includes("ghost"));
  assert.ok(!(await roleNames(server)).includes(PRIV));

  // A plan that cannot succeed is refused before any statement runs.
  await assert.rejects(
    apply(server, { databases: [{ name: "orphan", owner: "nobody" }] }),
    (error: unknown) => {
      assert.ok(error instanceof SpecPlanError);
      assert.equal(
        error.message,
        'databases[0].owner: role "nobody" is neither in the spec nor in the catalog',
      );
      return true;
    },
  );
  assert.ok(!(await roleNames(server)).includes(PRIV));

  const refusedRole = {
    name: "late",
    options: [{ name: "VALID UNTIL", value: "not a date", vartype: "string" }],
  };
  await assert.rejects(
    apply(server, { roles: [refusedRole] }),
    (error: unknown) => {
      assert.ok(error instanceof SpecApplyError);
      assert.equal(error.phase, "CreateAndAlterRoles");
      assert.match(
        error.message,
        /^CreateAndAlterRoles failed to create role "late": invalid input syntax for type timestamp/,
      );
      return true;
    },
  );
  // Statements before the failure stay applied (autocommit).
  assert.ok((await roleNames(server)).includes(PRIV));
});

Deno.test("subscriptions: delete_db of a subscriber database, drop once per timeline", async () => {
  await using server = await startLocalPostgres();
  const subscriberDb = "';subscriber_db $$ $x$ $;";
  const timelineId = "f9e8d7c6b5a40392817160f5e4d3c2b1";
  const base: SpecInput = {
    roles: [{ name: "owner" }],
    databases: [{ name: subscriberDb, owner: "owner" }, { name: "branch", owner: "owner" }],
  };
  await apply(server, base);
  for (const database of [subscriberDb, "branch"]) {
    // connect = false: no publisher needed; the subscription still names a remote slot.
    await query(
      server,
      `CREATE SUBSCRIPTION "sub $x$" CONNECTION 'host=127.0.0.1 port=1 dbname=nowhere' ` +
        "PUBLICATION pub WITH (connect = false)",
      [],
      database,
    );
  }
  const countSubscriptions = async () =>
    Number(
      (await query<{ n: string }>(server, "SELECT count(*) AS n FROM pg_catalog.pg_subscription"))[
        0
      ].n,
    );
  assert.equal(await countSubscriptions(), 2);

  const v2: SpecInput = {
    roles: [{ name: "owner" }],
    databases: [{ name: "branch", owner: "owner" }],
    delta_operations: [{ action: "delete_db", name: subscriberDb }, {
      action: "delete_db",
      name: "never existed",
    }],
    drop_subscriptions_before_start: true,
    timeline_id: timelineId,
  };
  const result = await apply(server, v2);
  assert.deepEqual(
    result.plan.steps.filter((step) => step.phase === "DropLogicalSubscriptions").map((step) => [
      step.stage,
      step.database,
    ]),
    [["pre-drop", subscriberDb], ["per-database", "branch"]],
  );
  assert.equal(await countSubscriptions(), 0);
  assert.ok(!(await databaseOwners(server)).has(subscriberDb));
  const marker = await query(server, "SELECT id, timeline_id FROM neon.drop_subscriptions_done");
  assert.deepEqual(marker, [{ id: 1, timeline_id: timelineId }]);
  await assertIdempotent(server, v2);
});
