/**
 * `dumpSchema` against a fake `pg_dump` (a shell script next to a fake
 * `--pgbin`): the database travels in `PGDATABASE`, output streams through,
 * "database does not exist" and silence are told apart, and cancelling the
 * stream kills pg_dump.
 */

import assert from "node:assert/strict";
import { dumpSchema, SchemaDumpError } from "../../src/postgres/pg_dump.ts";

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

Deno.test("no output for another reason, or no pg_dump at all, is an I/O error", async () => {
  await withFakePgbin(async (pgbin, dir) => {
    await assert.rejects(
      () => dumpSchema({ pgbin, connstr: CONNSTR, database: "silent" }),
      isKind("io", "failed to start pg_dump"),
    );
    await assert.rejects(
      () => dumpSchema({ pgbin: `${dir}/nowhere/postgres`, connstr: CONNSTR, database: "x" }),
      (error) => error instanceof SchemaDumpError && error.kind === "io",
    );
  });
});

Deno.test("a connstr without a port is unexpected, before anything runs", async () => {
  await withFakePgbin(async (pgbin) => {
    await assert.rejects(
      () =>
        dumpSchema({
          pgbin,
          connstr: "postgresql://cloud_admin@localhost/postgres",
          database: "x",
        }),
      (error) => error instanceof SchemaDumpError && error.kind === "unexpected",
    );
  });
});

Deno.test("cancelling the stream kills pg_dump", async () => {
  await withFakePgbin(async (pgbin, dir) => {
    const stream = await dumpSchema({ pgbin, connstr: CONNSTR, database: "forever" });
    const reader = stream.getReader();
    const first = await reader.read();
    assert.equal(new TextDecoder().decode(first.value), "-- started\n");
    let pid: number | undefined;
    for (let i = 0; i < 50 && pid === undefined; i++) {
      const text = await Deno.readTextFile(`${dir}/pid`).catch(() => "");
      if (text.trim()) pid = Number(text);
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(pid, "the fake wrote its pid");
    await reader.cancel();
    const alive = async () => {
      try {
        const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
        return !/^\d+ \([^)]*\) Z/.test(stat);
      } catch {
        return false;
      }
    };
    const deadline = Date.now() + 5_000;
    while (await alive()) {
      assert.ok(Date.now() < deadline, "pg_dump still runs after cancel");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Let the child's exit status be collected before the test ends.
    for (let i = 0; i < 50; i++) {
      if (!(await Deno.stat(`/proc/${pid}`).then(() => true, () => false))) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });
});
