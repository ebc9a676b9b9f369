/**
 * `src/postgres/pg_isready.ts`: the probe's target and command line, and which
 * way it asks: the install's `pg_isready` when there is one (a script here),
 * else in-process (against a fake server speaking the first message of the
 * protocol), each failure worded for the 500 of `/hadron_liveness_probe`.
 */

import assert from "node:assert/strict";
import {
  MissingPortError,
  pgIsReady,
  pgIsReadyArgs,
  probeTarget,
} from "../../src/postgres/pg_isready.ts";
import { fakeServer } from "./_fake_postgres.ts";

Deno.test("probeTarget needs an explicit port; pg_isready gets -h when the URL names a host", () => {
  assert.deepEqual(probeTarget("postgresql://cloud_admin@127.0.0.1:5433/postgres"), {
    port: 5433,
    host: "127.0.0.1",
    user: "cloud_admin",
    database: "postgres",
  });
  assert.deepEqual(probeTarget("postgresql://cloud_admin@localhost:5433/postgres?host=/run/pg"), {
    port: 5433,
    host: "/run/pg",
    user: "cloud_admin",
    database: "postgres",
  });
  assert.deepEqual(probeTarget("postgresql:///?port=5433"), { port: 5433, database: "postgres" });
  assert.throws(
    () => probeTarget("postgresql://cloud_admin@localhost/postgres"),
    (error) =>
      error instanceof MissingPortError &&
      error.message === "Failed to get the port from the connection string",
  );
  assert.deepEqual(pgIsReadyArgs({ port: 5 }), ["-p", "5"]);
  assert.deepEqual(pgIsReadyArgs({ port: 5, host: "h" }), ["-h", "h", "-p", "5"]);
});

/** A directory with a fake `postgres` path and, optionally, a `pg_isready` script. */
async function withInstall(
  pgIsReadyScript: string | null,
  fn: (pgbin: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "pg_isready_test_" });
  try {
    if (pgIsReadyScript !== null) {
      await Deno.writeTextFile(`${dir}/pg_isready`, pgIsReadyScript, { mode: 0o755 });
    }
    await fn(`${dir}/postgres`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("pg_isready beside --pgbin is run with the connstr's host and port", async () => {
  await withInstall('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\n', async (pgbin) => {
    await pgIsReady(pgbin, probeTarget("postgresql://cloud_admin@127.0.0.1:5999/postgres"));
    const args = await Deno.readTextFile(pgbin.replace(/postgres$/, "args"));
    assert.equal(args.trim(), "-h 127.0.0.1 -p 5999");
  });
  await withInstall('#!/bin/sh\necho "127.0.0.1:5999 - no response"\nexit 2\n', async (pgbin) => {
    const error = await pgIsReady(pgbin, { port: 5999, host: "127.0.0.1", database: "postgres" })
      .then(() => null, (error: Error) => error);
    const bin = pgbin.replace(/postgres$/, "pg_isready");
    assert.equal(error?.message, `could not run \`${bin} --port 5999\``);
    assert.equal(
      (error?.cause as Error).message,
      "process exited with exit status: 2: 127.0.0.1:5999 - no response",
    );
  });
});

Deno.test("without pg_isready: in-process, accepting on an authentication request", async () => {
  await using server = fakeServer("auth");
  await withInstall(null, async (pgbin) => {
    await pgIsReady(pgbin, probeTarget(`postgresql://cloud_admin@127.0.0.1:${server.port}/db`));
  });
  assert.equal(server.startups[0].get("user"), "cloud_admin");
  assert.equal(server.startups[0].get("database"), "db");
});

Deno.test("without pg_isready: a starting server rejects, a closed port does not answer", async () => {
  await using starting = fakeServer("starting");
  await withInstall(null, async (pgbin) => {
    await assert.rejects(
      pgIsReady(pgbin, probeTarget(`postgresql://u@127.0.0.1:${starting.port}/postgres`)),
      new Error(
        `Postgres at 127.0.0.1:${starting.port} rejects connections: ` +
          "the database system is starting up",
      ),
    );
    const closed = await starting.closedPort();
    await assert.rejects(
      pgIsReady(pgbin, probeTarget(`postgresql://u@127.0.0.1:${closed}/postgres`)),
      new RegExp(`no response from Postgres at 127\\.0\\.0\\.1:${closed}: .*refused`, "i"),
    );
  });
});
