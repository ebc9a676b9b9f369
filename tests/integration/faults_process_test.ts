/**
 * Faults in the compute's processes, each injected into a real compute on a
 * real cluster, with what the manager does and what `/status` says compared
 * with Neon's compute_ctl (neon-01 §2.3, §2.11, §3.5):
 *
 * - Postgres SIGKILLed while running: the status is left as it was
 *   (`running`), the manager syncs the safekeepers, lingers 300 ms and exits
 *   1; a `/configure` meanwhile is answered 500 at once.
 * - SIGTERM to the manager during the start-up, before Postgres exists and
 *   while its catalog apply runs: signals forwarded, exit 1 at once, no
 *   Postgres left running.
 * - Postgres crashing while the start-up applies the spec: `failed` with the
 *   error, the failed start's linger, exit 1.
 *
 * Every fault ends the compute; a new compute started from storage then has
 * every acknowledged row.
 */

import assert from "node:assert/strict";
import pg from "pg";
import { type Cluster, type ComputeHandle, startCluster } from "../../harness/cluster.ts";
import { AckedRows, faultTally, type Timeline } from "../_support/faults.ts";
import {
  expectGone,
  logged,
  postgresProcesses,
  waitForBlockedApply,
} from "../_support/process_faults.ts";
import { query } from "./_helpers.ts";

/** A role the start-up must create while a prepared transaction has created it too. */
const HELD_ROLE = "held_by_prepared";
const PREPARED = "hold-start-up";
/** Prepared transactions outlive a compute: they are in the WAL every new compute replays. */
const PREPARED_CONF = ["max_prepared_transactions = 4"];

/** A compute on `timeline`, started from what storage holds, once `running`. */
function successor(cluster: Cluster, timeline: Timeline, id: string): Promise<ComputeHandle> {
  return cluster.startCompute({ id, tenantId: timeline.tenantId, timelineId: timeline.timelineId });
}

/** A running compute on a new timeline with 20 acknowledged rows in `acked`. */
async function computeWithRows(cluster: Cluster, acked: AckedRows, id: string) {
  const compute = await cluster.startCompute({ id, postgresqlConf: PREPARED_CONF });
  await query(compute.postgresUrl, "CREATE TABLE acked (id int PRIMARY KEY, body text)");
  await acked.write(compute.postgresUrl, 20);
  return compute;
}

Deno.test("postgres SIGKILLed while running: running until exit 1, /configure answered", async () => {
  await using cluster = await startCluster({ pageservers: 1 });
  await using tally = faultTally("postgres SIGKILLed while running");
  const acked = new AckedRows();
  const victim = await computeWithRows(cluster, acked, "victim");
  const pids = await postgresProcesses(victim);
  // With no safekeeper answering, the final sync retries for seconds: time to ask the manager.
  for (const safekeeper of cluster.safekeepers) await cluster.stopSafekeeper(safekeeper);

  tally.track(() => 1);
  Deno.kill(pids[0], "SIGKILL");
  await logged(victim, "postgres exited with signal SIGKILL");
  const status = await victim.status();
  await tally.check("unexpectedStatus", () => {
    assert.deepEqual([status.status, status.error], ["running", null], "status, as in Neon");
  });
  const configure = await victim.configure();
  await tally.check("unexpectedStatus", () => {
    assert.deepEqual([configure.status, configure.body], [500, {
      error: 'compute configuration failed: "postgres exited with signal SIGKILL"',
    }]);
  });
  const after = await victim.status();
  await tally.check("unexpectedStatus", () => assert.equal(after.status, "running"));
  await expectGone(tally, pids);
  await tally.expectOrderlyExit(victim, 1);
  await victim.stop(); // already exited: waits until compute.log has everything
  const log = await victim.readLog();
  await tally.check("unexpectedStatus", () => assert.match(log, /exiting in 300 ms/));

  for (const safekeeper of cluster.safekeepers) await safekeeper.start();
  const next = await successor(cluster, victim, "next");
  await tally.expectRows(next.postgresUrl, acked.ids);
});

Deno.test("SIGTERM to the manager before postgres exists: exit 1 at once", async () => {
  await using cluster = await startCluster({ pageservers: 1 });
  await using tally = faultTally("SIGTERM during start-up before postgres");
  const [pageserver] = cluster.pageservers;
  await cluster.stopPageserver(pageserver);
  const early = await cluster.startCompute({ id: "early", waitFor: "init" });
  await logged(early, "basebackup attempt failed; retrying");

  tally.track(() => 1);
  await early.kill("SIGTERM");
  await tally.expectOrderlyExit(early, 1);
  await early.stop();
  const log = await early.readLog();
  await tally.check("unexpectedStatus", () => {
    assert.match(log, /received SIGTERM, forwarding termination and exiting/);
    assert.doesNotMatch(log, /started postgres/);
  });

  await pageserver.start();
  const next = await successor(cluster, early, "next");
  await tally.check("unusableComputes", async () => {
    assert.equal((await next.status()).status, "running");
  });
});

/** A compute whose start-up apply waits for the prepared transaction that created {@link HELD_ROLE}. */
async function blockedStart(
  cluster: Cluster,
  first: ComputeHandle,
  id: string,
  exitDelayMs = 1_000,
): Promise<ComputeHandle> {
  const roles = [...(first.spec.cluster as { roles: unknown[] }).roles];
  roles.push({ name: HELD_ROLE, encrypted_password: null, options: null });
  const compute = await cluster.startCompute({
    id,
    tenantId: first.tenantId,
    timelineId: first.timelineId,
    postgresqlConf: PREPARED_CONF,
    spec: { cluster: { roles } },
    waitFor: "init",
    exitDelayMs,
  });
  await waitForBlockedApply(compute.postgresUrl);
  return compute;
}

/** Leaves a prepared transaction that has created {@link HELD_ROLE} in the timeline's WAL. */
async function prepareHeldRole(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("BEGIN");
    await client.query(`CREATE ROLE ${HELD_ROLE}`);
    await client.query(`PREPARE TRANSACTION '${PREPARED}'`);
  } finally {
    await client.end();
  }
}

Deno.test("the start-up apply interrupted: postgres crashes, then SIGTERM", async () => {
  await using cluster = await startCluster({ pageservers: 1 });
  await using tally = faultTally("faults during the start-up apply");
  const acked = new AckedRows();
  const first = await computeWithRows(cluster, acked, "first");
  await prepareHeldRole(first.postgresUrl);
  assert.equal((await first.terminate()).status, 200);
  await first.exited;

  // Postgres crashes while the start-up applies the spec: `failed`, the failed start's linger, 1.
  const crashed = await blockedStart(cluster, first, "crashed", 2_000);
  const crashedPids = await postgresProcesses(crashed);
  tally.track(() => 1);
  Deno.kill(crashedPids[0], "SIGKILL");
  const failed = await tally.check("unexpectedStatus", () => crashed.waitForStatus("failed"));
  await tally.check("unexpectedStatus", () => assert.ok(failed.error, "a failed start says why"));
  await expectGone(tally, crashedPids);
  await tally.expectOrderlyExit(crashed, 1);
  await crashed.stop();
  const log = await crashed.readLog();
  await tally.check("unexpectedStatus", () => assert.match(log, /exiting in 2000 ms/));

  // SIGTERM while the start-up applies the spec: Postgres is told to stop, the manager exits 1.
  const stopped = await blockedStart(cluster, first, "stopped");
  const stoppedPids = await postgresProcesses(stopped);
  tally.track(() => 1);
  await stopped.kill("SIGTERM");
  await expectGone(tally, stoppedPids);
  await tally.expectOrderlyExit(stopped, 1);

  // Once the prepared transaction is gone, the start-up goes on.
  const last = await blockedStart(cluster, first, "last");
  await query(last.postgresUrl, `ROLLBACK PREPARED '${PREPARED}'`);
  await tally.check("unusableComputes", () => last.waitForStatus("running"));
  const held = await query(last.postgresUrl, "SELECT 1 FROM pg_roles WHERE rolname = $1", [
    HELD_ROLE,
  ]);
  await tally.check("unusableComputes", () => assert.equal(held.length, 1, "the spec's role"));
  await tally.expectRows(last.postgresUrl, acked.ids);
});
