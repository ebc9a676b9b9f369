/**
 * @module
 * The pure parts of the spec-apply benchmark: the spec's roles and databases,
 * the `psql -f` script of a plan (its `\connect` lines and their quoting) and
 * the cleanup statements.
 */

import assert from "node:assert/strict";
import type { PlanStep } from "../../src/postgres/spec_plan/types.ts";
import {
  benchCatalog,
  cleanupStatements,
  psqlConnectLine,
  psqlScript,
} from "../bench/_spec_apply_script.ts";

function step(sql: string, database?: string): PlanStep {
  return {
    stage: database === undefined ? "global" : "per-database",
    phase: database === undefined ? "CreateAndAlterRoles" : "ChangeSchemaPerms",
    database,
    purpose: "test",
    sql,
  };
}

Deno.test("benchCatalog gives every role a password and spreads database owners over the roles", () => {
  const { roles, databases } = benchCatalog(3, 5, (name) => `pw-${name}`);
  assert.deepEqual(roles.map((role) => role.name), [
    "bench_role_0000",
    "bench_role_0001",
    "bench_role_0002",
  ]);
  assert.equal(roles[1].encrypted_password, "pw-bench_role_0001");
  assert.deepEqual(
    databases.map((database) => [database.name, database.owner]),
    [
      ["bench_db_00", "bench_role_0000"],
      ["bench_db_01", "bench_role_0001"],
      ["bench_db_02", "bench_role_0002"],
      ["bench_db_03", "bench_role_0000"],
      ["bench_db_04", "bench_role_0001"],
    ],
  );
  assert.throws(() => benchCatalog(0, 1, String), RangeError);
});

Deno.test("psqlConnectLine writes plain names bare and quotes what psql would fold or split", () => {
  assert.equal(psqlConnectLine("bench_db_01"), "\\connect bench_db_01");
  assert.equal(psqlConnectLine("app.db"), '\\connect "app.db"');
  assert.equal(psqlConnectLine("AppDb"), '\\connect "AppDb"');
  assert.equal(psqlConnectLine("1db"), '\\connect "1db"');
});

Deno.test("psqlConnectLine passes any other name as a dbname connection string", () => {
  assert.equal(
    psqlConnectLine("my db"),
    `\\connect -reuse-previous=on "dbname='my db'"`,
  );
  assert.equal(
    psqlConnectLine(`it's "x"`),
    `\\connect -reuse-previous=on "dbname='it\\'s ""x""'"`,
  );
  assert.equal(
    psqlConnectLine("back\\slash"),
    `\\connect -reuse-previous=on "dbname='back\\\\slash'"`,
  );
  assert.equal(
    psqlConnectLine("café"),
    `\\connect -reuse-previous=on "dbname='café'"`,
  );
});

Deno.test("psqlConnectLine refuses names psql cannot take on one line", () => {
  assert.throws(() => psqlConnectLine(""), RangeError);
  assert.throws(() => psqlConnectLine("a\nb"), RangeError);
  assert.throws(() => psqlConnectLine("a\rb"), RangeError);
});

Deno.test("psqlScript connects only where the database changes and returns for global steps", () => {
  const script = psqlScript([
    step("CREATE ROLE a"),
    step("CREATE DATABASE d1;"),
    step("GRANT x", "d1"),
    step("GRANT y", "d1"),
    step("GRANT z", "my db"),
    step("DO $$ BEGIN END $$ -- trailing comment"),
  ], "postgres");
  assert.equal(
    script,
    [
      "CREATE ROLE a",
      ";",
      "CREATE DATABASE d1",
      ";",
      "\\connect d1",
      "GRANT x",
      ";",
      "GRANT y",
      ";",
      `\\connect -reuse-previous=on "dbname='my db'"`,
      "GRANT z",
      ";",
      "\\connect postgres",
      "DO $$ BEGIN END $$ -- trailing comment",
      ";",
      "",
    ].join("\n"),
  );
});

Deno.test("psqlScript of an empty plan is empty, and per-database steps on the system database need no connect", () => {
  assert.equal(psqlScript([], "postgres"), "");
  assert.equal(psqlScript([step("SELECT 1", "postgres")], "postgres"), "SELECT 1\n;\n");
});

Deno.test("cleanupStatements drops the databases one by one, then every role at once", () => {
  assert.deepEqual(cleanupStatements(["r1", 'r"2'], ["d1"]), [
    'DROP DATABASE IF EXISTS "d1" WITH (FORCE)',
    'DROP ROLE IF EXISTS "r1", "r""2"',
  ]);
  assert.deepEqual(cleanupStatements([], []), []);
});
