/**
 * The parts of `src/postgres/process.ts` that start nothing: binary paths,
 * reading `postmaster.pid`, and `waitForReady` against a stand-in process and
 * a `postmaster.pid` the test writes. Spawning (Postgres stand-ins, sync
 * safekeepers) is in `tests/integration/process_test.ts`.
 */

import assert from "node:assert/strict";
import {
  type ExitInfo,
  type PostgresProcess,
  postmasterStatus,
  siblingBinary,
  waitForReady,
} from "../../src/postgres/process.ts";

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
    let readyWritten = false;
    setTimeout(() => Deno.writeTextFileSync(`${dir}/postmaster.pid`, PIDFILE("starting")), 50);
    setTimeout(() => {
      Deno.writeTextFileSync(`${dir}/postmaster.pid`, PIDFILE("ready   "));
      readyWritten = true;
    }, 150);
    await waitForReady(dir, proc, { timeoutMs: 5_000 });
    assert.ok(readyWritten, "resolved only once postmaster.pid said ready");
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
