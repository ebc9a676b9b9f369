/**
 * Failover on the durable emulated storage: the primary is killed (Postgres
 * and its manager, SIGKILL), the safekeepers settle on one LSN, and a Replica
 * on the same timeline is promoted with `/promote`. The promoted compute stays
 * on timeline 1, has every acknowledged row, commits through the safekeeper
 * quorum, and `/terminate` returns the LSN the safekeepers hold, where the
 * next primary starts with every row.
 */

import assert from "node:assert/strict";
import { formatLsn, type Lsn, parseLsn } from "../../src/api/lsn.ts";
import { timelineStatus } from "../../src/storage/safekeepers.ts";
import {
  type Cluster,
  type ComputeHandle,
  promotedSpec as primarySpecOf,
  startCluster,
} from "../../harness/cluster.ts";
import type { Safekeeper } from "../../harness/safekeeper.ts";
import { eventually, query, show } from "./_helpers.ts";
import { ids, insertRows, range, timelineOf } from "../_support/acked_rows.ts";

/** `TIMELINE_STATUS` of every safekeeper of `compute`'s timeline, in cluster order. */
function statuses(safekeepers: readonly Safekeeper[], compute: ComputeHandle) {
  return Promise.all(safekeepers.map((safekeeper) =>
    timelineStatus(safekeeper.address, {
      tenantId: compute.tenantId,
      timelineId: compute.timelineId,
      timeoutMs: 5_000,
    })
  ));
}

Deno.test("failover: kill the primary, promote a Replica, lose no acknowledged row", async () => {
  const events: string[] = [];
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "primary" }],
    safekeeperLog: (line) => events.push(line),
  });
  const primary = cluster.compute("primary");
  const { tenantId, timelineId } = primary;
  const replica = await cluster.startCompute({
    id: "replica",
    tenantId,
    timelineId,
    mode: "Replica",
  });
  await query(primary.postgresUrl, "CREATE TABLE acked (id int PRIMARY KEY, body text)");
  await insertRows(primary.postgresUrl, 0, 50);

  // The primary dies at once: nothing is shut down, nothing more is sent.
  const postmaster = await primary.postmasterPid();
  assert.ok(postmaster !== undefined);
  Deno.kill(postmaster, "SIGKILL");
  await primary.kill("SIGKILL");
  await primary.exited;

  // The safekeepers settle on one LSN (peers catch each other up), the replica replays it.
  let settled: Lsn | undefined;
  await eventually(async () => {
    const all = await statuses(cluster.safekeepers, primary);
    const first = all[0];
    if (first === null || first.commitLsn !== first.flushLsn) return false;
    settled = first.flushLsn;
    return all.every((status) =>
      status !== null && status.flushLsn === settled && status.commitLsn === settled
    );
  }, "the safekeepers agree on one LSN");
  const walFlushLsn = settled!;
  await eventually(async () => {
    const [{ lsn }] = await query<{ lsn: string }>(
      replica.postgresUrl,
      "SELECT pg_last_wal_replay_lsn()::text AS lsn",
    );
    return parseLsn(lsn) >= walFlushLsn;
  }, `the replica replays up to ${formatLsn(walFlushLsn)}`);

  // The LFC prewarm must have ended (it fails on vanilla Postgres) before a promotion.
  assert.equal((await replica.request("POST", "/lfc/prewarm")).status, 202);
  await eventually(
    async () => (await replica.request("GET", "/lfc/prewarm")).body.status === "failed",
    "prewarm fails",
  );
  const spec = primarySpecOf(replica.spec, cluster.safekeepers.map((sk) => sk.address));
  const promoted = await replica.request("POST", "/promote", {
    body: { spec, wal_flush_lsn: formatLsn(walFlushLsn) },
  });
  assert.equal(promoted.status, 200, promoted.text);
  assert.equal(promoted.body.status, "completed");

  // The safekeepers follow it in a new term, from where its crash recovery ended.
  const term = cluster.store.terms(tenantId, timelineId).at(-1)!;
  assert.equal(term.source?.port, replica.pgPort);
  assert.ok(term.startLsn >= walFlushLsn, `term starts at ${formatLsn(term.startLsn)}`);
  const announcements = () =>
    events.filter((line) => line.includes(`primary 127.0.0.1:${replica.pgPort} from`)).length;
  assert.ok(announcements() >= 2, events.join("\n"));

  // A primary on timeline 1 with every acknowledged row, taking writes through the quorum.
  const url = replica.postgresUrl;
  const [{ recovering }] = await query<{ recovering: boolean }>(
    url,
    "SELECT pg_is_in_recovery() AS recovering",
  );
  assert.equal(recovering, false);
  assert.equal(await timelineOf(url), 1);
  assert.deepEqual(await ids(url), range(0, 50));
  await insertRows(url, 50, 30);
  assert.deepEqual(await ids(url), range(0, 80));
  assert.equal((await replica.status()).status, "running");

  // Reconfiguring with the same safekeepers keeps the quorum and tells them nothing new.
  const before = announcements();
  const { compute_ctl_config } = await replica.readConfig();
  const configured = await replica.configure({ spec, compute_ctl_config });
  assert.equal(configured.status, 200, configured.text);
  assert.match(await show(url, "synchronous_standby_names"), /^ANY 2 \(/);
  assert.equal(announcements(), before);
  await insertRows(url, 80, 10);

  // A primary's /terminate: the LSN every safekeeper holds.
  const terminated = await replica.terminate("fast");
  assert.equal(terminated.status, 200, terminated.text);
  const terminateLsn = parseLsn(terminated.body.lsn);
  assert.ok(terminateLsn > walFlushLsn, `terminate LSN ${terminated.body.lsn}`);
  assert.equal(await replica.exited, 0);
  assert.equal(await replica.postmasterPid(), undefined, "the restarted Postgres has stopped");
  for (const status of await statuses(cluster.safekeepers, primary)) {
    assert.deepEqual(status, { flushLsn: terminateLsn, commitLsn: terminateLsn });
  }

  // The next primary starts there and sees every row, still on timeline 1.
  const after = await cluster.startCompute({ id: "after", tenantId, timelineId });
  assert.deepEqual(await ids(after.postgresUrl), range(0, 90));
  assert.equal(await timelineOf(after.postgresUrl), 1);
  await insertRows(after.postgresUrl, 90, 5);
  assert.deepEqual(await ids(after.postgresUrl), range(0, 95));
});

/** Whether a process with `pid` exists (a zombie counts as gone). */
async function processAlive(pid: number): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/**
 * Promotes `replica`, sends `/terminate` as soon as its log has `marker`, and
 * checks that the compute ends with no Postgres left running: neither the
 * standby nor one the restart started. Once the restart has started Postgres
 * again, the compute runs as a primary, so `/terminate` reports the
 * safekeepers' LSN; before, null, as for any replica.
 */
async function terminateDuringPromotion(
  cluster: Cluster,
  replica: ComputeHandle,
  marker: string,
): Promise<void> {
  assert.equal((await replica.request("POST", "/lfc/prewarm")).status, 202);
  await eventually(
    async () => (await replica.request("GET", "/lfc/prewarm")).body.status === "failed",
    "prewarm fails",
  );
  const pids = new Set<number>();
  const standby = await replica.postmasterPid();
  assert.ok(standby !== undefined);
  pids.add(standby);

  const promoting = replica.request("POST", "/promote", {
    body: {
      spec: primarySpecOf(replica.spec, cluster.safekeepers.map((sk) => sk.address)),
      wal_flush_lsn: "0/0",
    },
  });
  // Polled every 5 ms: the restart moves on quickly, the termination must land in this phase.
  await eventually(
    async () => (await replica.readLog()).includes(marker),
    `${replica.id} logs ${marker}`,
    30_000,
    5,
  );
  const terminating = replica.terminate("fast");
  // Whichever postmaster the restart starts meanwhile must be stopped too.
  const watching = eventually(
    async () => {
      const pid = await replica.postmasterPid();
      if (pid !== undefined) pids.add(pid);
      return (await replica.readLog()).includes("sending SIGINT to postgres");
    },
    "the manager stops postgres",
    30_000,
    5,
  );
  const [terminated, promoted] = await Promise.all([terminating, promoting, watching]);
  assert.equal(terminated.status, 200, terminated.text);
  assert.ok(["completed", "failed"].includes(promoted.body.status), promoted.text);
  await replica.exited;
  const log = await replica.readLog();
  if (log.split("started postgres").length - 1 === 2) {
    assert.ok(parseLsn(terminated.body.lsn) > 0n, terminated.text);
  } else {
    assert.equal(terminated.body.lsn, null);
  }
  const left = await replica.postmasterPid();
  if (left !== undefined) pids.add(left);
  for (const pid of pids) {
    assert.equal(await processAlive(pid), false, `postgres ${pid} still runs`);
  }
  assert.match(log, /Changing compute status from termination-pending-fast to terminated/);
}

Deno.test("a termination during the promotion's restart leaves no Postgres running", async () => {
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "old-primary" }] });
  const primary = cluster.compute("old-primary");
  const replica = (id: string) =>
    cluster.startCompute({
      id,
      tenantId: primary.tenantId,
      timelineId: primary.timelineId,
      mode: "Replica",
    });
  // While the standby stops, and while the new Postgres runs crash recovery (or just after).
  const stopping = await replica("stopping");
  await terminateDuringPromotion(cluster, stopping, "stopping postgres for a restart");
  const recovering = await replica("recovering");
  await terminateDuringPromotion(cluster, recovering, "automatic recovery in progress");
});
