/**
 * The catalog and probe routes against a real compute of the harness:
 * `/check_writability`, `/insights`, `/dbs_and_roles`, `/database_schema`,
 * `/hadron_liveness_probe`, `/autoscaling_metrics` (external) and
 * `/extensions`, `/grants` (internal): each success, each documented error,
 * 412 from an empty compute, and `x-request-id` on every answer.
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  type ComputeHandle,
  type HttpResult,
  type RequestOptions,
  SPEC_DATABASE,
  SPEC_ROLE,
  startCluster,
} from "../../harness/cluster.ts";
import type { CatalogObjects } from "../../src/api/catalog.ts";
import { eventually, loggedDdl, logThroughMarker, query } from "./_helpers.ts";

/** A database name with a space, `=`, double and single quotes. */
const TRICKY_DATABASE = `my db="x" 'y'`;
/** A schema name that needs quoting. */
const GRANT_SCHEMA = `granted "schema"`;
/** A role outside `neon_superuser` (whose `pg_read_all_data` implies USAGE everywhere). */
const GRANT_ROLE = `Bob "B"`;

/** `"name"` with inner quotes doubled. */
function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Runs `sql` as `cloud_admin` in `database` (any name: no URL encoding involved). */
function adminQuery<Row extends Record<string, unknown> = Record<string, unknown>>(
  compute: ComputeHandle,
  database: string,
  sql: string,
  params: unknown[] = [],
): Promise<Row[]> {
  const target = { host: "127.0.0.1", port: compute.pgPort, user: "cloud_admin", database };
  return query<Row>(target, sql, params);
}

/** Any request; asserts that the answer carries `x-request-id`. */
async function call(
  compute: ComputeHandle,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<HttpResult> {
  const result = await compute.request(method, path, options);
  assert.ok(result.headers.get("x-request-id"), `${method} ${path}: no x-request-id`);
  return result;
}

function assertJsonError(result: HttpResult, status: number, message: string | RegExp): void {
  assert.equal(result.status, status, result.text);
  assert.equal(result.headers.get("content-type"), "application/json");
  assert.deepEqual(Object.keys(result.body), ["error"]);
  if (typeof message === "string") assert.equal(result.body.error, message);
  else assert.match(result.body.error, message);
}

/** Pids of pg_dump processes connecting to `port` (from `ps`: Deno reads `/proc` only with -A). */
async function pgDumpPids(port: number): Promise<number[]> {
  const ps = await new Deno.Command("ps", { args: ["-eo", "pid=,args="], stdout: "piped" })
    .output();
  const pids: number[] = [];
  for (const line of new TextDecoder().decode(ps.stdout).split("\n")) {
    const match = /^\s*(\d+)\s+(\S*\/pg_dump)\s.*--port (\d+)\b/.exec(line);
    if (match && match[3] === String(port)) pids.push(Number(match[1]));
  }
  return pids;
}

Deno.test("catalog and probe routes on a real compute", async (t) => {
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [
      {
        id: "catalog",
        postgresqlConf: ["shared_preload_libraries='pg_stat_statements'", "log_statement='ddl'"],
      },
      { id: "blank", empty: true },
    ],
  });
  const compute = cluster.compute("catalog");
  const empty = cluster.compute("blank");
  // Debian's install has pg_dump and pg_isready; PostgreSQL from npm has neither.
  const binDir = dirname(cluster.pgbin);
  const installHas = (program: string) =>
    Deno.stat(join(binDir, program)).then(() => true, () => false);
  const hasPgDump = await installHas("pg_dump");
  const hasPgIsReady = await installHas("pg_isready");
  const NO_PG_DUMP = `failed to execute pg_dump: ${binDir}/pg_dump does not exist: ` +
    "pg_dump is not part of this PostgreSQL install";
  const extensionBody = { extension: "hstore", database: SPEC_DATABASE, version: "1.7" };
  const grantBody = {
    database: SPEC_DATABASE,
    schema: GRANT_SCHEMA,
    privileges: ["USAGE", "CREATE"],
    role: GRANT_ROLE,
  };

  await t.step("x-request-id: a client's value is echoed", async () => {
    const result = await call(compute, "GET", "/dbs_and_roles", {
      headers: { "x-request-id": "catalog-test-1" },
    });
    assert.equal(result.headers.get("x-request-id"), "catalog-test-1");
  });

  await t.step("POST /check_writability: 200 true, and health_check moves", async () => {
    const before = await query<{ updated_at: Date }>(
      compute.postgresUrl,
      "SELECT updated_at FROM public.health_check WHERE id = 1",
    );
    const result = await call(compute, "POST", "/check_writability");
    assert.equal(result.status, 200, result.text);
    assert.equal(result.headers.get("content-type"), "application/json");
    assert.equal(result.text, "true");
    const after = await query<{ updated_at: Date; n: number }>(
      compute.postgresUrl,
      "SELECT updated_at, (SELECT count(*)::int FROM public.health_check) AS n " +
        "FROM public.health_check WHERE id = 1",
    );
    assert.equal(after[0].n, 1);
    assert.ok(after[0].updated_at > before[0].updated_at, "updated_at moved forward");
  });

  await t.step(
    "POST /check_writability: disk_full counts as success, other errors 500",
    async () => {
      const failWith = async (sqlstate: string) => {
        await query(
          compute.postgresUrl,
          "CREATE OR REPLACE FUNCTION public.refuse_health_check() RETURNS trigger " +
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by test' " +
            `USING ERRCODE = '${sqlstate}'; END $$`,
        );
        await query(
          compute.postgresUrl,
          "CREATE OR REPLACE TRIGGER refuse BEFORE INSERT OR UPDATE ON public.health_check " +
            "FOR EACH ROW EXECUTE FUNCTION public.refuse_health_check()",
        );
      };
      try {
        await failWith("53100");
        const diskFull = await call(compute, "POST", "/check_writability");
        assert.equal(diskFull.status, 200, diskFull.text);
        assert.equal(diskFull.text, "true");

        await failWith("42501");
        assertJsonError(await call(compute, "POST", "/check_writability"), 500, "refused by test");
      } finally {
        await query(compute.postgresUrl, "DROP TRIGGER IF EXISTS refuse ON public.health_check");
        await query(compute.postgresUrl, "DROP FUNCTION IF EXISTS public.refuse_health_check()");
      }
    },
  );

  await t.step("GET /insights without pg_stat_statements: an empty list", async () => {
    const result = await call(compute, "GET", "/insights");
    assert.equal(result.status, 200, result.text);
    assert.equal(result.headers.get("content-type"), "application/json");
    assert.deepEqual(result.body, { pg_stat_statements: [] });
  });

  await t.step("GET /insights with pg_stat_statements: rows as a JSON object", async () => {
    await query(compute.postgresUrl, "CREATE EXTENSION pg_stat_statements");
    const alice = compute.connectionUrl({ password: SPEC_ROLE.password });
    await query(alice, "SELECT pg_sleep(0.05)");
    await query(alice, "SELECT count(*) FROM pg_class");
    const [{ oid }] = await query<{ oid: number }>(
      compute.postgresUrl,
      "SELECT oid::int AS oid FROM pg_roles WHERE rolname = 'cloud_admin'",
    );
    const result = await call(compute, "GET", "/insights");
    assert.equal(result.status, 200, result.text);
    assert.equal(typeof result.body, "object", "an object, not a double-encoded string");
    assert.deepEqual(Object.keys(result.body), ["pg_stat_statements"]);
    const rows = result.body.pg_stat_statements as Record<string, unknown>[];
    assert.ok(rows.length > 0 && rows.length <= 100, `${rows.length} rows`);
    assert.ok(rows.some((row) => String(row.query).includes("pg_sleep")), result.text);
    assert.ok(rows.every((row) => row.userid !== oid), "no cloud_admin statements");
    const cost = rows.map((row) => Number(row.mean_exec_time) + Number(row.mean_plan_time));
    assert.deepEqual(cost, [...cost].sort((a, b) => b - a), "slowest first");
    assert.match(result.text, /"queryid":-?\d+/, "queryid stays a JSON number");
  });

  await t.step("GET /dbs_and_roles: every role and database, keys in order", async () => {
    const result = await call(compute, "GET", "/dbs_and_roles");
    assert.equal(result.status, 200, result.text);
    assert.deepEqual(Object.keys(result.body), ["roles", "databases"]);
    const body = result.body as CatalogObjects;
    for (const role of body.roles) {
      assert.deepEqual(Object.keys(role), ["name", "encrypted_password", "options"]);
    }
    for (const db of body.databases) {
      assert.deepEqual(Object.keys(db), ["name", "owner", "options", "restrict_conn", "invalid"]);
    }
    const roles = new Map(body.roles.map((role) => [role.name, role]));
    const databases = new Map(body.databases.map((db) => [db.name, db]));
    assert.ok(roles.has("cloud_admin") && roles.has("pg_monitor"), "system roles included");
    assert.match(
      roles.get(SPEC_ROLE.name)?.encrypted_password ?? "",
      /^(md5[0-9a-f]{32}|SCRAM-SHA-256\$.*)$/,
    );
    assert.equal(roles.get(SPEC_ROLE.name)?.options, null);
    assert.deepEqual(databases.get(SPEC_DATABASE), {
      name: SPEC_DATABASE,
      owner: SPEC_ROLE.name,
      options: null,
      restrict_conn: false,
      invalid: false,
    });
    assert.equal(databases.get("template0")?.restrict_conn, true);
  });

  await t.step({
    name: "GET /database_schema without pg_dump in the install: 500 naming it, 400 still first",
    ignore: hasPgDump,
    fn: async () => {
      const result = await call(compute, "GET", `/database_schema?database=${SPEC_DATABASE}`);
      assertJsonError(result, 500, NO_PG_DUMP);
      const noParam = await call(compute, "GET", "/database_schema");
      assertJsonError(noParam, 400, "failed to deserialize query string: missing field `database`");
    },
  });

  await t.step({
    name: "GET /database_schema: a tricky-named database, streamed",
    ignore: !hasPgDump,
    fn: async () => {
      await query(compute.postgresUrl, `CREATE DATABASE ${ident(TRICKY_DATABASE)}`);
      await adminQuery(compute, TRICKY_DATABASE, "CREATE TABLE dumped_table (id int PRIMARY KEY)");
      const result = await call(
        compute,
        "GET",
        `/database_schema?database=${encodeURIComponent(TRICKY_DATABASE)}`,
      );
      assert.equal(result.status, 200, result.text);
      assert.equal(result.headers.get("content-type"), "application/json");
      assert.match(result.text, /CREATE TABLE public\.dumped_table/);
      assert.match(result.text, /-- PostgreSQL database dump complete/);
      assert.doesNotMatch(result.text, /health_check|neon_migration/);
    },
  });

  await t.step({
    name: "GET /database_schema: 404 for an unknown database, 400 without one",
    ignore: !hasPgDump,
    fn: async () => {
      for (const name of ["no_such_db", `no "such" = db`]) {
        const missing = await call(
          compute,
          "GET",
          `/database_schema?database=${encodeURIComponent(name)}`,
        );
        assertJsonError(missing, 404, "database does not exist");
      }
      const noParam = await call(compute, "GET", "/database_schema");
      assertJsonError(noParam, 400, "failed to deserialize query string: missing field `database`");
    },
  });

  await t.step({
    name: "GET /database_schema: a client that leaves, or HEAD, stops pg_dump",
    ignore: !hasPgDump,
    fn: async () => {
      // 50 MB of DDL: far more than the pipe and socket buffers hold, so an
      // abandoned pg_dump would block on its stdout, not finish.
      await query(compute.postgresUrl, "CREATE DATABASE bigschema");
      await adminQuery(
        compute,
        "bigschema",
        "DO $$ BEGIN FOR i IN 1..5 LOOP " +
          "EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY)', i); " +
          "EXECUTE format('COMMENT ON TABLE t%s IS %L', i, repeat('x', 10000000)); " +
          "END LOOP; END $$",
      );
      const abort = new AbortController();
      const response = await fetch(`${compute.externalHttp}/database_schema?database=bigschema`, {
        headers: { authorization: `Bearer ${compute.tokens.compute}` },
        signal: abort.signal,
      });
      assert.equal(response.status, 200);
      assert.ok(response.headers.get("x-request-id"));
      const reader = response.body!.getReader();
      assert.ok(!(await reader.read()).done);
      assert.equal((await pgDumpPids(compute.pgPort)).length, 1, "pg_dump is still dumping");
      abort.abort();
      await reader.cancel().catch(() => {});
      await eventually(
        async () => (await pgDumpPids(compute.pgPort)).length === 0,
        "pg_dump is killed after the client left",
        10_000,
      );

      const head = await call(compute, "HEAD", "/database_schema?database=bigschema");
      assert.equal(head.status, 200);
      assert.equal(head.text, "");
      await eventually(
        async () => (await pgDumpPids(compute.pgPort)).length === 0,
        "pg_dump is killed after HEAD",
        10_000,
      );
    },
  });

  await t.step('GET /hadron_liveness_probe: 200 "ok"', async () => {
    const result = await call(compute, "GET", "/hadron_liveness_probe");
    assert.equal(result.status, 200, result.text);
    assert.equal(result.headers.get("content-type"), "application/json");
    assert.equal(result.body, "ok");
  });

  await t.step("GET /autoscaling_metrics: no communicator in vanilla Postgres, 500", async () => {
    const result = await call(compute, "GET", "/autoscaling_metrics", { token: null });
    assertJsonError(
      result,
      500,
      "connecting to communicator control socket: No such file or directory (os error 2)",
    );
  });

  await t.step("POST /extensions: create, no-op, update a contrib extension", async () => {
    const installed = async () =>
      await adminQuery<{ extversion: string; schema: string }>(
        compute,
        SPEC_DATABASE,
        "SELECT e.extversion, n.nspname AS schema FROM pg_extension e " +
          "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hstore'",
      );
    const created = await call(compute, "POST", "/extensions", {
      internal: true,
      body: extensionBody,
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.text, `{"extension":"hstore","version":"1.7"}`);
    assert.deepEqual(await installed(), [{ extversion: "1.7", schema: "public" }]);

    const again = await call(compute, "POST", "/extensions", {
      internal: true,
      body: extensionBody,
    });
    assert.equal(again.status, 201, again.text);
    assert.deepEqual(again.body, { extension: "hstore", version: "1.7" });

    const updated = await call(compute, "POST", "/extensions", {
      internal: true,
      body: { ...extensionBody, version: "1.8" },
    });
    assert.equal(updated.status, 201, updated.text);
    assert.deepEqual(updated.body, { extension: "hstore", version: "1.8" });
    assert.deepEqual(await installed(), [{ extversion: "1.8", schema: "public" }]);
  });

  await t.step("POST /extensions: 500 for a bad version or database", async () => {
    const badVersion = await call(compute, "POST", "/extensions", {
      internal: true,
      body: { ...extensionBody, version: "9.9" },
    });
    assertJsonError(
      badVersion,
      500,
      `failed to install extension: Failed to execute query: ALTER EXTENSION "hstore" UPDATE TO "9.9"`,
    );
    const badDatabase = await call(compute, "POST", "/extensions", {
      internal: true,
      body: { ...extensionBody, database: "no_such_db" },
    });
    assertJsonError(
      badDatabase,
      500,
      "failed to install extension: Failed to connect to the database",
    );
  });

  await t.step("POST /extensions: 415, 400, 422 for bad bodies", async () => {
    const wrongType = await call(compute, "POST", "/extensions", {
      internal: true,
      body: JSON.stringify(extensionBody),
      headers: { "content-type": "text/plain" },
    });
    assertJsonError(wrongType, 415, "expected request with `content-type: application/json`");
    const notJson = await call(compute, "POST", "/extensions", {
      internal: true,
      body: "{not json",
    });
    assertJsonError(notJson, 400, /^failed to parse the request body as json: /);
    const noVersion = await call(compute, "POST", "/extensions", {
      internal: true,
      body: { extension: "hstore", database: SPEC_DATABASE },
    });
    assertJsonError(
      noVersion,
      422,
      /^failed to deserialize the json body into the target type: version: missing field/,
    );
  });

  await t.step("POST /grants: grants what is missing, only that", async () => {
    const qSchema = ident(GRANT_SCHEMA);
    await adminQuery(compute, SPEC_DATABASE, `CREATE ROLE ${ident(GRANT_ROLE)} LOGIN`);
    await adminQuery(compute, SPEC_DATABASE, `CREATE SCHEMA ${qSchema}`);
    const held = async () =>
      (await adminQuery<{ usage: boolean; create: boolean }>(
        compute,
        SPEC_DATABASE,
        "SELECT has_schema_privilege($1, $2, 'USAGE') AS usage, " +
          "has_schema_privilege($1, $2, 'CREATE') AS create",
        [GRANT_ROLE, GRANT_SCHEMA],
      ))[0];
    assert.deepEqual(await held(), { usage: false, create: false });
    const grantsLogged = (log: string) =>
      loggedDdl(log).filter((sql) => sql.startsWith("GRANT") && sql.includes(qSchema));

    const usage = await call(compute, "POST", "/grants", {
      internal: true,
      body: { ...grantBody, privileges: ["USAGE"] },
    });
    assert.equal(usage.status, 201, usage.text);
    assert.deepEqual(await held(), { usage: true, create: false });

    const both = await call(compute, "POST", "/grants", { internal: true, body: grantBody });
    assert.equal(both.status, 201, both.text);
    assert.equal(
      both.text,
      JSON.stringify({
        database: SPEC_DATABASE,
        schema: GRANT_SCHEMA,
        privileges: ["USAGE", "CREATE"],
        role: GRANT_ROLE,
      }),
    );
    assert.deepEqual(await held(), { usage: true, create: true });

    const again = await call(compute, "POST", "/grants", { internal: true, body: grantBody });
    assert.equal(again.status, 201, again.text);
    const expected = [
      `GRANT USAGE ON SCHEMA ${qSchema} TO ${ident(GRANT_ROLE)}`,
      `GRANT CREATE ON SCHEMA ${qSchema} TO ${ident(GRANT_ROLE)}`,
    ];
    assert.deepEqual(
      await grantsLogged(await logThroughMarker(compute)),
      expected,
      "the third call granted nothing",
    );
  });

  await t.step("POST /grants: 500 for a privilege schemas do not have", async () => {
    const result = await call(compute, "POST", "/grants", {
      internal: true,
      body: { ...grantBody, privileges: ["SELECT"] },
    });
    assertJsonError(
      result,
      500,
      `failed to grant role privileges to the schema: Failed to execute query: ` +
        `GRANT SELECT ON SCHEMA "granted ""schema""" TO "Bob ""B"""`,
    );
  });

  await t.step("POST /grants: 415, 400, 422 for bad bodies", async () => {
    const wrongType = await call(compute, "POST", "/grants", {
      internal: true,
      body: JSON.stringify(grantBody),
      headers: { "content-type": "text/plain" },
    });
    assertJsonError(wrongType, 415, "expected request with `content-type: application/json`");
    const notJson = await call(compute, "POST", "/grants", { internal: true, body: "[" });
    assertJsonError(notJson, 400, /^failed to parse the request body as json: /);
    const lowerCase = await call(compute, "POST", "/grants", {
      internal: true,
      body: { ...grantBody, privileges: ["usage"] },
    });
    assertJsonError(
      lowerCase,
      422,
      /^failed to deserialize the json body into the target type: privileges\.0: /,
    );
  });

  await t.step("an empty compute: 412 on the running-only routes", async () => {
    const expected = "invalid compute status: empty";
    assertJsonError(await call(empty, "POST", "/check_writability"), 412, expected);
    assertJsonError(await call(empty, "GET", "/insights"), 412, expected);
    assertJsonError(
      await call(empty, "POST", "/extensions", { internal: true, body: extensionBody }),
      412,
      expected,
    );
    assertJsonError(
      await call(empty, "POST", "/grants", { internal: true, body: grantBody }),
      412,
      expected,
    );
    // The body is read before the status is checked.
    assertJsonError(
      await call(empty, "POST", "/grants", { internal: true, body: {} }),
      422,
      /^failed to deserialize the json body/,
    );
  });

  await t.step("an empty compute: 500 where Postgres must answer", async () => {
    assertJsonError(await call(empty, "GET", "/dbs_and_roles"), 500, /.+/);
    assertJsonError(
      await call(empty, "GET", `/database_schema?database=${SPEC_DATABASE}`),
      500,
      hasPgDump ? "failed to execute pg_dump" : NO_PG_DUMP,
    );
    assertJsonError(
      await call(empty, "GET", "/hadron_liveness_probe"),
      500,
      hasPgIsReady
        ? `could not run \`${binDir}/pg_isready --port ${empty.pgPort}\``
        : new RegExp(`^no response from Postgres at 127\\.0\\.0\\.1:${empty.pgPort}: `),
    );
    assertJsonError(
      await call(empty, "GET", "/autoscaling_metrics", { token: null }),
      500,
      "connecting to communicator control socket: No such file or directory (os error 2)",
    );
  });
});
