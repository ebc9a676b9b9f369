/**
 * Reading versions the way Neon does (`pg_config --version`, 14 to 17) and
 * each program's own `--version`, and the refusal of a program of another
 * major.
 */

import assert from "node:assert/strict";
import {
  parsePgConfigVersion,
  parseProgramVersion,
  PgVersionError,
  programsOf,
  versionMismatch,
} from "../../../src/fast_import/versions.ts";

Deno.test("pg_config --version: the major, as Neon's get_pg_version reads it", () => {
  assert.equal(parsePgConfigVersion("PostgreSQL 15.18 (Debian 15.18-0+deb12u1)\n"), 15);
  assert.equal(parsePgConfigVersion("PostgreSQL 17devel"), 17);
  assert.equal(parsePgConfigVersion("PostgreSQL 14.4foobar"), 14);
  for (const text of ["PostgreSQL 13.2", "PostgreSQL 18.0", "something else"]) {
    assert.throws(() => parsePgConfigVersion(text), PgVersionError, text);
  }
  assert.throws(() => parsePgConfigVersion("PostgreSQL 13.2"), /Unsupported postgres version/);
});

Deno.test("a program's --version line gives its major", () => {
  assert.equal(parseProgramVersion("pg_dump", "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0)"), 15);
  assert.equal(parseProgramVersion("postgres", "postgres (PostgreSQL) 16.2"), 16);
  assert.throws(
    () => parseProgramVersion("pg_dump", "fake 1.0"),
    /pg_dump --version printed "fake 1.0"/,
  );
});

Deno.test("a program of another major is refused naming it, both versions and the directory", () => {
  assert.equal(
    versionMismatch({ program: "pg_dump", major: 15, reported: "x", expected: 15, binDir: "/b" }),
    null,
  );
  const problem = versionMismatch({
    program: "pg_dump",
    major: 14,
    reported: "pg_dump (PostgreSQL) 14.11\n",
    expected: 15,
    binDir: "/tmp/bin",
  });
  assert.equal(
    problem,
    'pg_dump in /tmp/bin is PostgreSQL 14 ("pg_dump (PostgreSQL) 14.11") but pg_config says ' +
      "PostgreSQL 15: every program in --pg-bin-dir must be of the same major version",
  );
});

Deno.test("pgdata checks the server programs too; dump-restore only pg_dump and pg_restore", () => {
  assert.deepEqual(programsOf("pgdata"), ["initdb", "postgres", "pg_dump", "pg_restore"]);
  assert.deepEqual(programsOf("dump-restore"), ["pg_dump", "pg_restore"]);
});
