/**
 * fast_import's bad inputs, each run as production runs it: an unreachable
 * source, a wrong password, a working directory that is not empty, an
 * encrypted spec, and a pg_dump of another major (a fake one in a copy of the
 * binaries directory).
 * Each is a clear error and exit code 1, made before anything is created:
 * the working directory is not made (or not touched), nothing is published
 * (so the storage has nothing to import) and `status/fast_import` records
 * the failure.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { publishedPgdata } from "../../harness/_published_pgdata.ts";
import { HarnessBadRequestError } from "../../harness/_errors.ts";
import { freePort, pgFileOwner } from "../../harness/_processes.ts";
import { REPO_ROOT } from "../../harness/cluster.ts";
import { fastImportRunFlags } from "../../harness/fast_import_runner.ts";
import { startLocalPostgres } from "../_support/local_postgres.ts";
import {
  FAST_IMPORT_MISSING,
  fastImport,
  fastImportArgs,
  ownedTempDir,
  PG_BIN_DIR,
  SOURCE_ROLE,
  sql,
} from "../_support/fast_import.ts";

/** Asserts the run failed with `message`, made no working directory and published nothing. */
async function assertRefused(
  run: { code: number; output: string },
  { workdir, published, message }: { workdir: string; published: string; message: RegExp },
): Promise<void> {
  assert.equal(run.code, 1, run.output);
  assert.match(run.output, message);
  await assert.rejects(Deno.stat(join(published, "pgdata")), Deno.errors.NotFound);
  const status = JSON.parse(await Deno.readTextFile(join(published, "status", "fast_import")));
  assert.equal(status.command, "pgdata");
  assert.equal(status.done, false);
  assert.match(`pgdata failed: ${status.error}`, message);
  await assert.rejects(publishedPgdata(published), HarnessBadRequestError);
  await assert.rejects(Deno.stat(workdir), Deno.errors.NotFound);
}

Deno.test({
  name: "fast_import refuses bad input with a clear error and leaves nothing behind",
  ignore: FAST_IMPORT_MISSING !== undefined,
  fn: async (t) => {
    await using source = await startLocalPostgres();
    await sql(
      source.connstr,
      `CREATE ROLE ${SOURCE_ROLE.name} LOGIN PASSWORD '${SOURCE_ROLE.password}';
     CREATE TABLE t AS SELECT generate_series(1, 100) AS n`,
    );
    const dir = await ownedTempDir("fast-import-errors-");
    let case_ = 0;
    const paths = () => {
      case_++;
      return { workdir: join(dir, `work-${case_}`), published: join(dir, `published-${case_}`) };
    };
    const pgdata = (workdir: string, published: string, sourceUrl: string) =>
      fastImportArgs(
        workdir,
        "--destination-dir",
        published,
        "pgdata",
        "--source-connection-string",
        sourceUrl,
        "--pg-port",
        String(freePort()),
      );
    try {
      await t.step("an unreachable source", async () => {
        const { workdir, published } = paths();
        const closed = freePort();
        const run = await fastImport(
          pgdata(workdir, published, `postgresql://cloud_admin@127.0.0.1:${closed}/postgres`),
        );
        await assertRefused(run, {
          workdir,
          published,
          message:
            /pgdata failed: cannot connect to the source database: connection to server at "127\.0\.0\.1", port \d+ failed: Connection refused/,
        });
      });

      await t.step("a wrong password", async () => {
        const { workdir, published } = paths();
        const url =
          `postgresql://${SOURCE_ROLE.name}:wrong-password@127.0.0.1:${source.port}/postgres`;
        const run = await fastImport(pgdata(workdir, published, url));
        await assertRefused(run, {
          workdir,
          published,
          message:
            /pgdata failed: cannot connect to the source database: .*password authentication failed for user "importer"/,
        });
        assert.ok(!run.output.includes("wrong-password"), "the password is never logged");
      });

      await t.step("a working directory that is not empty", async () => {
        const { workdir, published } = paths();
        await Deno.mkdir(workdir);
        await Deno.writeTextFile(join(workdir, "precious"), "keep me");
        const run = await fastImport(pgdata(workdir, published, source.connstr));
        assert.equal(run.code, 1, run.output);
        assert.match(run.output, /pgdata failed: working directory is not empty: /);
        assert.deepEqual(
          (await Array.fromAsync(Deno.readDir(workdir))).map((entry) => entry.name),
          ["precious"],
        );
        await assert.rejects(Deno.stat(join(published, "pgdata")), Deno.errors.NotFound);
        await assert.rejects(publishedPgdata(published), HarnessBadRequestError);
      });

      await t.step("an encrypted (Neon) spec", async () => {
        const { workdir, published } = paths();
        const spec = join(dir, "spec.json");
        await Deno.writeTextFile(
          spec,
          JSON.stringify({
            encryption_secret: { KMS: { key_id: "k" } },
            source_connstring_ciphertext_base64: "AAAA",
          }),
        );
        const run = await fastImport(fastImportArgs(
          workdir,
          "--spec-file",
          spec,
          "--destination-dir",
          published,
          "pgdata",
          "--pg-port",
          String(freePort()),
        ));
        await assertRefused(run, {
          workdir,
          published,
          message: /pgdata failed: spec .* is encrypted \(KMS\), which is not supported here/,
        });
      });

      await t.step("a pg_dump of another major version", async () => {
        const { workdir, published } = paths();
        const bin = join(dir, "bin");
        await Deno.mkdir(bin);
        for (const program of ["initdb", "postgres", "pg_config", "pg_restore", "psql"]) {
          await Deno.symlink(join(PG_BIN_DIR, program), join(bin, program));
        }
        await Deno.writeTextFile(
          join(bin, "pg_dump"),
          '#!/bin/sh\necho "pg_dump (PostgreSQL) 14.11"\n',
          { mode: 0o755 },
        );
        const owner = await pgFileOwner();
        if (owner) await Deno.chown(join(bin, "pg_dump"), owner.uid, owner.gid);
        const args = pgdata(workdir, published, source.connstr);
        args[args.indexOf(PG_BIN_DIR)] = bin;
        const run = await fastImport(args, { denoFlags: fastImportRunFlags(REPO_ROOT, bin) });
        await assertRefused(run, {
          workdir,
          published,
          message: new RegExp(
            `pgdata failed: pg_dump in ${bin} is PostgreSQL 14 \\("pg_dump \\(PostgreSQL\\) 14.11"\\) ` +
              "but pg_config says PostgreSQL 15",
          ),
        });
      });
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
