import assert from "node:assert/strict";
import {
  type ExitInfo,
  type PostgresProcess,
  postmasterStatus,
  runSyncSafekeepers,
  siblingBinary,
  spawnPostgres,
  supportsSyncSafekeepers,
  SyncSafekeepersError,
  waitForReady,
} from "../../src/postgres/process.ts";

const VANILLA_POSTGRES = "/usr/lib/postgresql/15/bin/postgres";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "process_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A stand-in for the postmaster whose exit the test controls. */
function fakeProcess(): PostgresProcess & { exit(info: ExitInfo): void } {
  const { promise, resolve } = Promise.withResolvers<ExitInfo>();
  return { pid: 1, exited: promise, kill() {}, exit: resolve };
}

/** Writes an executable shell script standing in for a postgres binary. */
async function script(dir: string, name: string, body: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return path;
}

const PIDFILE = (status: string) =>
  `1234\n/data\n1700000000\n5432\n/tmp\n127.0.0.1\n  5432001  1\n${status}\n`;

Deno.test("siblingBinary swaps the file name in the postgres path", () => {
  assert.equal(
    siblingBinary("/usr/lib/postgresql/15/bin/postgres", "pg_ctl"),
    "/usr/lib/postgresql/15/bin/pg_ctl",
  );
  assert.equal(siblingBinary("postgres", "pg_ctl"), "pg_ctl");
});

Deno.test("postmasterStatus reads the padded last line", async () => {
  await withTempDir(async (dir) => {
    assert.equal(await postmasterStatus(dir), undefined);
    await Deno.writeTextFile(`${dir}/postmaster.pid`, PIDFILE("ready   "));
    assert.equal(await postmasterStatus(dir), "ready");
  });
});

Deno.test("waitForReady resolves once postmaster.pid ends with ready", async () => {
  await withTempDir(async (dir) => {
    const proc = fakeProcess();
    setTimeout(() => Deno.writeTextFileSync(`${dir}/postmaster.pid`, PIDFILE("starting")), 50);
    setTimeout(() => Deno.writeTextFileSync(`${dir}/postmaster.pid`, PIDFILE("ready   ")), 150);
    const started = Date.now();
    await waitForReady(dir, proc, { timeoutMs: 5_000 });
    assert.ok(Date.now() - started >= 100);
  });
});

Deno.test("waitForReady accepts a hot standby", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/postmaster.pid`, PIDFILE("standby "));
    await waitForReady(dir, fakeProcess(), { timeoutMs: 1_000 });
  });
});

Deno.test("waitForReady fails when Postgres exits first", async () => {
  await withTempDir(async (dir) => {
    const proc = fakeProcess();
    setTimeout(() => proc.exit({ code: 3, signal: null }), 50);
    await assert.rejects(
      waitForReady(dir, proc, { timeoutMs: 5_000 }),
      /^PostgresStartError: Postgres exited unexpectedly with code 3$/,
    );
  });
});

Deno.test("waitForReady times out", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/postmaster.pid`, PIDFILE("starting"));
    await assert.rejects(
      waitForReady(dir, fakeProcess(), { timeoutMs: 200 }),
      /timed out while waiting for Postgres to start/,
    );
  });
});

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
