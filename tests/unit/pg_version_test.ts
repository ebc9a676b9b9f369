/**
 * `src/postgres/pg_version.ts`: the major from `postgres --version` or
 * `pg_config --version` text (Neon's cases from `extension_server.rs`), the
 * 14–17 range with a message instead of Neon's panic, and the binary asked
 * once (a script standing in for `postgres`).
 */

import assert from "node:assert/strict";
import {
  majorOfVersionNum,
  parsePgMajor,
  pgMajorLabel,
  postgresMajor,
  PostgresVersionError,
} from "../../src/postgres/pg_version.ts";

Deno.test("parsePgMajor: postgres --version and pg_config --version, pre-releases too", () => {
  assert.equal(parsePgMajor("postgres (PostgreSQL) 16.14\n"), 16);
  assert.equal(parsePgMajor("postgres (PostgreSQL) 14.23"), 14);
  assert.equal(parsePgMajor("postgres (PostgreSQL) 17.10 (Debian 17.10-1.pgdg120+1)"), 17);
  assert.equal(parsePgMajor("PostgreSQL 15.4"), 15);
  assert.equal(parsePgMajor("PostgreSQL 15.14"), 15);
  assert.equal(parsePgMajor("PostgreSQL 15.4 (Ubuntu 15.4-0ubuntu0.23.04.1)"), 15);
  assert.equal(parsePgMajor("PostgreSQL 14.9 (Debian 14.9-1.pgdg120+1"), 14);
  for (const text of ["PostgreSQL 16devel", "PostgreSQL 16beta1", "PostgreSQL 16rc2"]) {
    assert.equal(parsePgMajor(text), 16, text);
  }
  assert.equal(parsePgMajor("PostgreSQL 16extra"), 16);
});

Deno.test("parsePgMajor: other majors and other texts are refused, naming what was read", () => {
  assert.throws(
    () => parsePgMajor("postgres (PostgreSQL) 13.14"),
    new PostgresVersionError(
      'PostgreSQL 13 is not supported ("postgres (PostgreSQL) 13.14"): ' +
        "compute_ctl runs on PostgreSQL 14, 15, 16, 17",
    ),
  );
  assert.throws(() => parsePgMajor("PostgreSQL 18.1"), /PostgreSQL 18 is not supported/);
  assert.throws(() => parsePgMajor("PostgreSQL 145.1"), /PostgreSQL 145 is not supported/);
  assert.throws(
    () => parsePgMajor("EnterpriseDB 9"),
    new PostgresVersionError('"EnterpriseDB 9" is not a PostgreSQL version'),
  );
});

Deno.test("labels and server_version_num", () => {
  assert.equal(pgMajorLabel(14), "v14");
  assert.equal(pgMajorLabel(17), "v17");
  assert.equal(majorOfVersionNum(140023), 14);
  assert.equal(majorOfVersionNum(170010), 17);
});

Deno.test("postgresMajor runs --pgbin --version once, and names the binary when it fails", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pg_version_test_" });
  try {
    const pgbin = `${dir}/postgres`;
    await Deno.writeTextFile(
      pgbin,
      `#!/bin/sh\necho x >> "${dir}/calls"\necho "postgres (PostgreSQL) 17.10"\n`,
      { mode: 0o755 },
    );
    assert.equal(await postgresMajor(pgbin), 17);
    assert.equal(await postgresMajor(pgbin), 17);
    assert.equal((await Deno.readTextFile(`${dir}/calls`)).trim(), "x", "asked once");

    const old = `${dir}/old/postgres`;
    await Deno.mkdir(`${dir}/old`);
    await Deno.writeTextFile(old, '#!/bin/sh\necho "postgres (PostgreSQL) 13.4"\n', {
      mode: 0o755,
    });
    await assert.rejects(
      postgresMajor(old),
      new PostgresVersionError(
        `--pgbin ${old}: PostgreSQL 13 is not supported ("postgres (PostgreSQL) 13.4"): ` +
          "compute_ctl runs on PostgreSQL 14, 15, 16, 17",
      ),
    );
    await assert.rejects(
      postgresMajor(`${dir}/nowhere/postgres`),
      (error) =>
        error instanceof PostgresVersionError &&
        error.message.startsWith(`could not run ${dir}/nowhere/postgres --version: `),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
