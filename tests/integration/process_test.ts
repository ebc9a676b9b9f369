/**
 * `src/postgres/process.ts` running stand-ins for the postgres binary (shell
 * scripts): `spawnPostgres` passes `-D` and the environment, collects stderr
 * records and reports the exit; `--sync-safekeepers` support is detected and
 * `runSyncSafekeepers` parses the LSN. The parts that start nothing are in
 * `tests/unit/process_test.ts`.
 */

import { locatePostgresOnce } from "../../harness/pg_locate.ts";
import assert from "node:assert/strict";
import {
  runSyncSafekeepers,
  spawnPostgres,
  supportsSyncSafekeepers,
  SyncSafekeepersError,
} from "../../src/postgres/process.ts";

const VANILLA_POSTGRES = (await locatePostgresOnce()).pgbin;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "process_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes an executable shell script standing in for a postgres binary. */
async function script(dir: string, name: string, body: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return path;
}

Deno.test("spawnPostgres passes -D, collects stderr records and reports the exit", async () => {
  await withTempDir(async (dir) => {
    const bin = await script(
      dir,
      "postgres",
      'echo "2024-05-01 10:00:00 UTC LOG:  args $1 $2 token=$NEON_AUTH_TOKEN" >&2\n' +
        'echo "\tdetail" >&2\necho "2024-05-01 10:00:01 UTC LOG:  bye" >&2\nexit 7',
    );
    const records: string[] = [];
    const proc = spawnPostgres({
      pgbin: bin,
      pgdata: `${dir}/data`,
      env: { NEON_AUTH_TOKEN: "tok" },
      onLog: (record) => records.push(record),
    });
    assert.deepEqual(await proc.exited, { code: 7, signal: null });
    assert.deepEqual(records, [
      `2024-05-01 10:00:00 UTC LOG:  args -D ${dir}/data token=tok\u200B\tdetail`,
      "2024-05-01 10:00:01 UTC LOG:  bye",
    ]);
    proc.kill("SIGTERM"); // after exit: a no-op
  });
});

Deno.test("spawnPostgres reports a signal as the exit cause", async () => {
  await withTempDir(async (dir) => {
    const bin = await script(dir, "postgres", "exec sleep 30");
    const proc = spawnPostgres({ pgbin: bin, pgdata: dir, onLog: () => {} });
    proc.kill("SIGKILL");
    assert.deepEqual(await proc.exited, { code: null, signal: "SIGKILL" });
  });
});

Deno.test("vanilla postgres has no --sync-safekeepers; a binary that mentions it has", async () => {
  try {
    await Deno.stat(VANILLA_POSTGRES);
    assert.equal(await supportsSyncSafekeepers(VANILLA_POSTGRES), false);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  await withTempDir(async (dir) => {
    const neon = await script(dir, "neon-postgres", 'echo "  --sync-safekeepers  sync"');
    assert.equal(await supportsSyncSafekeepers(neon), true);
    assert.equal(await supportsSyncSafekeepers(`${dir}/missing`), false);
  });
});

Deno.test("--sync-safekeepers is found in the binary itself, also across its read chunks", async () => {
  const chunk = 256 * 1024; // the scan's chunk size
  await withTempDir(async (dir) => {
    // The help text never mentions the flag; only the bytes after `exit` do.
    const help = "echo usage\nexit 0\n#";
    const header = `#!/bin/sh\n${help}\n`.length;
    for (const offset of [chunk - 5, chunk - 1, chunk, 3 * chunk + 7]) {
      const path = await script(
        dir,
        `straddling-${offset}`,
        `${help}${"x".repeat(offset - header)}--sync-safekeepers${"y".repeat(chunk)}`,
      );
      assert.equal(await supportsSyncSafekeepers(path), true, `flag at ${offset}`);
    }
    const without = await script(dir, "without", `${help}${"-sync-safekeepers ".repeat(40_000)}`);
    assert.equal(await supportsSyncSafekeepers(without), false);
  });
});

Deno.test("runSyncSafekeepers sets PGDATA and parses the LSN on stdout", async () => {
  await withTempDir(async (dir) => {
    const bin = await script(
      dir,
      "postgres",
      'test "$1" = --sync-safekeepers && test "$PGDATA" = /pgdata || exit 9\n' +
        'echo "2024-05-01 10:00:00 UTC LOG:  syncing" >&2\necho "0/16B3748"',
    );
    const records: string[] = [];
    const lsn = await runSyncSafekeepers({
      pgbin: bin,
      pgdata: "/pgdata",
      onLog: (record) => records.push(record),
    });
    assert.equal(lsn, 0x16b3748n);
    assert.deepEqual(records, ["2024-05-01 10:00:00 UTC LOG:  syncing"]);
  });
});

Deno.test("runSyncSafekeepers fails on a non-zero exit or output that is no LSN", async () => {
  await withTempDir(async (dir) => {
    const failing = await script(dir, "failing", 'echo "partial"; exit 2');
    await assert.rejects(
      runSyncSafekeepers({ pgbin: failing, pgdata: dir, onLog: () => {} }),
      (error: unknown) =>
        error instanceof SyncSafekeepersError && /code 2/.test(error.message) &&
        /partial/.test(error.message),
    );
    const garbage = await script(dir, "garbage", "echo hello");
    await assert.rejects(
      runSyncSafekeepers({ pgbin: garbage, pgdata: dir, onLog: () => {} }),
      /printed no LSN/,
    );
  });
});
