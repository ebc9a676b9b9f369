/**
 * Termination scenarios: `/terminate` in fast and immediate mode (200 with the
 * final LSN, which is what every safekeeper holds afterwards; status
 * `terminated`; the manager lingers as long as the mode says and exits with
 * Postgres's code), the answers in the wrong state (412, and 201 for a repeated
 * terminate), and a Postgres killed behind the manager's back.
 */

import assert from "node:assert/strict";
import { type Cluster, type ComputeHandle, startCluster } from "../../harness/cluster.ts";
import { type Lsn, parseLsn } from "../../src/api/lsn.ts";
import { SHORT_EXIT_DELAY_MS } from "../../src/compute/termination.ts";
import { timelineStatus } from "../../src/storage/safekeepers.ts";
import { query, within } from "./_helpers.ts";

/** Asserts that every safekeeper reports `lsn` as both its flush and its commit LSN. */
async function assertSafekeepersAt(cluster: Cluster, compute: ComputeHandle, lsn: Lsn) {
  for (const safekeeper of cluster.safekeepers) {
    const status = await timelineStatus(safekeeper.address, {
      tenantId: compute.tenantId,
      timelineId: compute.timelineId,
      timeoutMs: 5_000,
    });
    assert.deepEqual(status, { flushLsn: lsn, commitLsn: lsn }, safekeeper.address);
  }
}

/** The manager's own word on how long it lingers before exiting (awaits the whole log). */
async function lingerLogged(compute: ComputeHandle): Promise<number> {
  await compute.stop(); // already exited: only waits until compute.log has everything
  const match = /exiting in (\d+) ms/.exec(await compute.readLog());
  assert.ok(match, "the manager says how long it lingers");
  return Number(match[1]);
}

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
  await assertSafekeepersAt(cluster, compute, parseLsn(terminated.body.lsn));
  assert.equal((await compute.status()).status, "terminated");

  const configure = await compute.configure();
  assert.equal(configure.status, 412, configure.text);
  assert.deepEqual(configure.body, { error: "invalid compute status: terminated" });

  const again = await compute.terminate("fast");
  assert.equal(again.status, 201, again.text);
  assert.deepEqual(again.body, terminated.body);

  assert.equal(await within(compute.exited, 30_000, "manager exit"), 0);
  assert.equal(await lingerLogged(compute), 5_000, "a fast termination lingers --exit-delay-ms");
});

Deno.test("terminate immediate: 200 with an LSN, terminated, exit code 0", async () => {
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "immediate", exitDelayMs: 30_000 }],
  });
  const compute = cluster.compute("immediate");
  const terminated = await compute.terminate("immediate");
  assert.equal(terminated.status, 200, terminated.text);
  assert.equal(typeof terminated.body.lsn, "string", `an LSN, got ${terminated.text}`);
  await assertSafekeepersAt(cluster, compute, parseLsn(terminated.body.lsn));
  assert.equal(await within(compute.exited, 60_000, "manager exit"), 0);
  assert.equal(
    await lingerLogged(compute),
    SHORT_EXIT_DELAY_MS,
    "an immediate termination does not linger --exit-delay-ms",
  );
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
