/**
 * The pure parts of `src/postgres/pg_dump.ts`: where pg_dump connects, its
 * arguments, recognising a missing database, and refusing a connstr before
 * anything runs. Running pg_dump is tested in `tests/integration/pg_dump_test.ts`.
 */

import assert from "node:assert/strict";
import {
  dumpSchema,
  dumpTarget,
  isMissingDatabaseLine,
  pgDumpArgs,
  SchemaDumpError,
} from "../../src/postgres/pg_dump.ts";

Deno.test("dumpTarget takes host, port and user from the connstr; all must be explicit", () => {
  assert.deepEqual(
    dumpTarget("postgresql://cloud_admin@127.0.0.1:5432/postgres"),
    { host: "127.0.0.1", port: 5432, user: "cloud_admin" },
  );
  assert.deepEqual(
    dumpTarget("postgres://cloud_admin@localhost:55/postgres?host=/tmp/sock"),
    { host: "/tmp/sock", port: 55, user: "cloud_admin" },
  );
  assert.deepEqual(
    dumpTarget("postgres://[::1]:7/postgres?user=u"),
    { host: "::1", port: 7, user: "u" },
  );
  for (
    const connstr of ["postgres://cloud_admin@localhost/postgres", "postgres://h:1/db", "nope"]
  ) {
    assert.throws(
      () => dumpTarget(connstr),
      (error) => error instanceof SchemaDumpError && error.kind === "unexpected",
      connstr,
    );
  }
});

Deno.test("pgDumpArgs: schema only, no database on the command line", () => {
  assert.deepEqual(pgDumpArgs({ host: "127.0.0.1", port: 5432, user: "cloud_admin" }), [
    "--host",
    "127.0.0.1",
    "--port",
    "5432",
    "--username",
    "cloud_admin",
    "--schema-only",
  ]);
});

Deno.test("isMissingDatabaseLine matches pg_dump's FATAL line (two spaces) for that name only", () => {
  const line = `pg_dump: error: connection to server at "127.0.0.1", port 5432 failed: ` +
    `FATAL:  database "a=b c" does not exist`;
  assert.ok(isMissingDatabaseLine(line, "a=b c"));
  assert.ok(!isMissingDatabaseLine(line, "a=b"));
  assert.ok(!isMissingDatabaseLine(line.replace("FATAL:  ", "FATAL: "), "a=b c"));
});

Deno.test("a connstr without a port is unexpected, before anything runs", async () => {
  await assert.rejects(
    () =>
      dumpSchema({
        pgbin: "/nonexistent/bin/postgres",
        connstr: "postgresql://cloud_admin@localhost/postgres",
        database: "x",
      }),
    (error) => error instanceof SchemaDumpError && error.kind === "unexpected",
  );
});
