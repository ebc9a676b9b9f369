/**
 * The compute's maintenance session as `/configure` uses it: unchanged
 * `/configure` calls open no new backend (the one `compute_ctl:apply_config`
 * session the first one opened serves the check and the apply of each), and a
 * maintenance backend terminated with `pg_terminate_backend` is replaced by
 * the next `/configure` without the caller noticing, whether or not the
 * manager saw the termination before that call.
 */

import assert from "node:assert/strict";
import { type ComputeHandle, startCluster } from "../../harness/cluster.ts";
import { APPLY_APPLICATION_NAME } from "../../src/postgres/spec_apply.ts";
import { eventually, query } from "./_helpers.ts";

/** The manager's apply sessions, as `pid@backend_start`. */
async function applyBackends(compute: ComputeHandle): Promise<string[]> {
  const rows = await query<{ backend: string }>(
    compute.postgresUrl,
    "SELECT pid || '@' || backend_start AS backend FROM pg_stat_activity " +
      "WHERE application_name = $1 ORDER BY pid",
    [APPLY_APPLICATION_NAME],
  );
  return rows.map((row) => row.backend);
}

async function configureUnchanged(compute: ComputeHandle): Promise<void> {
  const result = await compute.configure();
  assert.equal(result.status, 200, result.text);
  assert.equal(result.body.status, "running");
}

async function terminateBackend(compute: ComputeHandle, backend: string): Promise<void> {
  const pid = Number(backend.split("@")[0]);
  const [{ done }] = await query<{ done: boolean }>(
    compute.postgresUrl,
    "SELECT pg_terminate_backend($1) AS done",
    [pid],
  );
  assert.equal(done, true, `backend ${pid} signalled`);
}

Deno.test("/configure reuses one maintenance session and replaces a terminated one", async () => {
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "kept" }] });
  const compute = cluster.compute("kept");

  assert.deepEqual(await applyBackends(compute), [], "the start-up's apply session is closed");
  await configureUnchanged(compute);
  const opened = await applyBackends(compute);
  assert.equal(opened.length, 1, `one apply session after a /configure: ${opened}`);
  await configureUnchanged(compute);
  await configureUnchanged(compute);
  assert.deepEqual(await applyBackends(compute), opened, "no new backend for two /configure");

  await terminateBackend(compute, opened[0]);
  await eventually(
    async () => !(await applyBackends(compute)).includes(opened[0]),
    "the terminated backend is gone",
  );
  await configureUnchanged(compute);
  const replaced = await applyBackends(compute);
  assert.equal(replaced.length, 1, `one apply session again: ${replaced}`);
  assert.notDeepEqual(replaced, opened);

  // Terminated and asked at once: the manager may not have seen the socket close yet.
  await terminateBackend(compute, replaced[0]);
  await configureUnchanged(compute);
  const again = await applyBackends(compute);
  assert.equal(again.length, 1, `one apply session again: ${again}`);
  assert.ok(!again.includes(replaced[0]), "the terminated backend was replaced");
  await configureUnchanged(compute);
  assert.deepEqual(await applyBackends(compute), again);
  const log = await compute.readLog();
  assert.ok(!log.includes("could not check the spec"), "every spec was checked");
});
