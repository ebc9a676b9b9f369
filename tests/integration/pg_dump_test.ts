/**
 * `dumpSchema` (`src/postgres/pg_dump.ts`) running a fake `pg_dump` (a shell
 * script next to a fake `--pgbin`): the database travels in `PGDATABASE`,
 * output streams through, "database does not exist", silence and an install
 * without pg_dump are told apart, and cancelling the stream kills pg_dump. The pure parts (target,
 * arguments, the missing-database line) are in `tests/unit/pg_dump_test.ts`.
 */

import assert from "node:assert/strict";
import { dumpSchema, SchemaDumpError } from "../../src/postgres/pg_dump.ts";
import { eventually } from "./_helpers.ts";

const CONNSTR = "postgresql://cloud_admin@127.0.0.1:5999/postgres";

const FAKE_PG_DUMP = `#!/bin/sh
case "$PGDATABASE" in
  missing*)
    echo "pg_dump: error: connection to server at \\"127.0.0.1\\", port 5999 failed: FATAL:  database \\"$PGDATABASE\\" does not exist" >&2
    exit 1 ;;
  silent)
    echo "pg_dump: error: something else" >&2
    exit 1 ;;
  forever)
    echo "-- started"
    echo $$ > "$(dirname "$0")/pid"
    exec sleep 1000 ;;
  *)
    echo "-- dump of [$PGDATABASE] with $*"
    echo "-- PostgreSQL database dump complete" ;;
esac
`;

async function withFakePgbin(fn: (pgbin: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "fake_pgbin_" });
  try {
    await Deno.writeTextFile(`${dir}/pg_dump`, FAKE_PG_DUMP, { mode: 0o755 });
    await fn(`${dir}/postgres`, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function isKind(kind: SchemaDumpError["kind"], message: string) {
  return (error: unknown) =>
    error instanceof SchemaDumpError && error.kind === kind && error.message === message;
}

Deno.test("the dump streams; the database name goes in PGDATABASE", async () => {
  await withFakePgbin(async (pgbin) => {
    const database = `we=ird "db" name`;
    const stream = await dumpSchema({ pgbin, connstr: CONNSTR, database });
    const text = await new Response(stream).text();
    assert.equal(
      text,
      `-- dump of [${database}] with --host 127.0.0.1 --port 5999 --username cloud_admin ` +
        "--schema-only\n-- PostgreSQL database dump complete\n",
    );
  });
});

Deno.test("a missing database is recognised from the first stderr line", async () => {
  await withFakePgbin(async (pgbin) => {
    await assert.rejects(
      () => dumpSchema({ pgbin, connstr: CONNSTR, database: "missing db" }),
      isKind("database_does_not_exist", "database does not exist"),
    );
  });
});

Deno.test("no output for another reason is an I/O error; no pg_dump at all says so", async () => {
  await withFakePgbin(async (pgbin, dir) => {
    await assert.rejects(
      () => dumpSchema({ pgbin, connstr: CONNSTR, database: "silent" }),
      isKind("io", "failed to start pg_dump"),
    );
    await assert.rejects(
      () => dumpSchema({ pgbin: `${dir}/nowhere/postgres`, connstr: CONNSTR, database: "x" }),
      isKind(
        "unavailable",
        `${dir}/nowhere/pg_dump does not exist: pg_dump is not part of this PostgreSQL install`,
      ),
    );
  });
});

Deno.test("cancelling the stream kills pg_dump", async () => {
  await withFakePgbin(async (pgbin, dir) => {
    const stream = await dumpSchema({ pgbin, connstr: CONNSTR, database: "forever" });
    const reader = stream.getReader();
    const first = await reader.read();
    assert.equal(new TextDecoder().decode(first.value), "-- started\n");
    let pid = 0;
    await eventually(async () => {
      pid = Number((await Deno.readTextFile(`${dir}/pid`).catch(() => "")).trim());
      return pid > 0;
    }, "the fake wrote its pid");
    await reader.cancel();
    const alive = async () => {
      try {
        const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
        return !/^\d+ \([^)]*\) Z/.test(stat);
      } catch {
        return false;
      }
    };
    await eventually(async () => !(await alive()), "pg_dump ends after cancel");
    // Let the child's exit status be collected before the test ends.
    await eventually(
      () => Deno.stat(`/proc/${pid}`).then(() => false, () => true),
      "pg_dump is reaped",
    );
  });
});
