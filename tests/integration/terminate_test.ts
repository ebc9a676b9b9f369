/**
 * Termination scenarios: `/terminate` in fast and immediate mode (200 with the
 * final LSN, status `terminated`, the manager exits with Postgres's code), the
 * answers in the wrong state (412, and 201 for a repeated terminate), and a
 * Postgres killed behind the manager's back.
 */

import assert from "node:assert/strict";
import { parseLsn } from "../../src/api/lsn.ts";
import { startCluster } from "../../harness/cluster.ts";
import { query, within } from "./_helpers.ts";

Deno.test("terminate fast: 200 with an LSN, terminated, 412/201 afterwards, exit code 0", async () => {
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "fast", exitDelayMs: 5_000 }],
  });
  const compute = cluster.compute("fast");
  await query(compute.postgresUrl, "CREATE TABLE t AS SELECT generate_series(1, 1000) AS x");

  const terminated = await compute.terminate("fast");
  assert.equal(terminated.status, 200, terminated.text);
  assert.equal(typeof terminated.body.lsn, "string", `an LSN, got ${terminated.text}`);
  assert.ok(parseLsn(terminated.body.lsn) > 0n);
  assert.equal((await compute.status()).status, "terminated");

  const configure = await compute.configure();
  assert.equal(configure.status, 412, configure.text);
  assert.deepEqual(configure.body, { error: "invalid compute status: terminated" });

  const again = await compute.terminate("fast");
  assert.equal(again.status, 201, again.text);
  assert.deepEqual(again.body, terminated.body);

  assert.equal(await within(compute.exited, 30_000, "manager exit"), 0);
});

Deno.test("terminate immediate: 200 with an LSN, terminated, exit code 0", async () => {
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "immediate", exitDelayMs: 30_000 }],
  });
  const compute = cluster.compute("immediate");
  const started = Date.now();
  const terminated = await compute.terminate("immediate");
  assert.equal(terminated.status, 200, terminated.text);
  assert.ok(parseLsn(terminated.body.lsn) > 0n, `an LSN, got ${terminated.text}`);
  const code = await within(compute.exited, 20_000, "manager exit (immediate does not linger)");
  assert.equal(code, 0);
  assert.ok(Date.now() - started < 20_000);
});

Deno.test("postgres killed with SIGKILL: the manager exits non-zero", async () => {
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "victim" }] });
  const compute = cluster.compute("victim");
  const postmaster = await compute.postmasterPid();
  assert.ok(postmaster, "postmaster.pid exists");
  Deno.kill(postmaster, "SIGKILL");
  const code = await within(compute.exited, 30_000, "manager exit after postgres died");
  assert.equal(code, 1);
});

Deno.test("terminate an empty compute: 200 without LSN, exit code 0 (test_compute_terminate_empty)", async () => {
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "pooled", source: "control-plane", empty: true }],
  });
  const compute = cluster.compute("pooled");
  const terminated = await compute.terminate();
  assert.equal(terminated.status, 200, terminated.text);
  assert.deepEqual(terminated.body, { lsn: null });
  assert.equal(await within(compute.exited, 10_000, "manager exit"), 0);
});
