/**
 * Durable emulated storage, end to end with real Postgres: WAL flows to the
 * safekeepers through the vanilla quorum, so acknowledged rows outlive the
 * compute that wrote them (a fast termination, then a SIGKILL), `/terminate`
 * returns the LSN the safekeepers hold, and every new compute on the timeline
 * continues on timeline 1 from exactly there.
 */

import assert from "node:assert/strict";
import { formatLsn, parseLsn } from "../../src/api/lsn.ts";
import { timelineStatus } from "../../src/storage/safekeepers.ts";
import { type Cluster, type ComputeHandle, startCluster } from "../../harness/cluster.ts";
import pg from "pg";
import { readWalState } from "../../harness/safekeeper_wal.ts";
import { eventually, query } from "./_helpers.ts";
import { ids, insertRows, range, timelineOf } from "../_support/acked_rows.ts";

/** A compute on the timeline of `first`, under a new id. */
function successor(cluster: Cluster, first: ComputeHandle, id: string) {
  return cluster.startCompute({ id, tenantId: first.tenantId, timelineId: first.timelineId });
}

/** Waits until backend `pid` waits for synchronous replication (its commit is not acknowledged). */
function waitForSyncRep(url: string, pid: number): Promise<void> {
  return eventually(async () => {
    const rows = await query<{ event: string | null }>(
      url,
      "SELECT wait_event AS event FROM pg_stat_activity WHERE pid = $1",
      [pid],
    );
    return rows[0]?.event === "SyncRep";
  }, `backend ${pid} waits for synchronous replication`);
}

Deno.test("acknowledged rows survive a fast termination and a SIGKILL of the compute", async () => {
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "first" }] });
  const first = cluster.compute("first");
  await query(first.postgresUrl, "CREATE TABLE acked (id int PRIMARY KEY, body text)");
  const lastCommit = await insertRows(first.postgresUrl, 0, 50);

  // Fast termination: the LSN returned is where the safekeepers now agree.
  const terminated = await first.terminate("fast");
  assert.equal(terminated.status, 200, terminated.text);
  const terminateLsn = parseLsn(terminated.body.lsn);
  assert.ok(
    terminateLsn >= lastCommit,
    `terminate LSN ${terminated.body.lsn} before the last commit ${formatLsn(lastCommit)}`,
  );
  await first.exited;
  for (const safekeeper of cluster.safekeepers) {
    const status = await timelineStatus(safekeeper.address, {
      tenantId: first.tenantId,
      timelineId: first.timelineId,
      timeoutMs: 5_000,
    });
    assert.deepEqual(status, { flushLsn: terminateLsn, commitLsn: terminateLsn });
  }

  // A new compute starts exactly there, sees every row and stays on timeline 1.
  const second = await successor(cluster, first, "second");
  assert.deepEqual(await ids(second.postgresUrl), range(0, 50));
  const timings = (await second.metricsJson()).body;
  assert.ok(timings.basebackup_bytes > 0 && timings.total_startup_ms > 0, JSON.stringify(timings));
  for (const phase of ["sync_sk_check_ms", "basebackup_ms", "start_postgres_ms", "config_ms"]) {
    assert.equal(typeof timings[phase], "number", phase);
  }
  assert.equal(await timelineOf(second.postgresUrl), 1);
  await insertRows(second.postgresUrl, 50, 50);

  // SIGKILL: Postgres and its manager die at once, nothing is shut down.
  const postmaster = await second.postmasterPid();
  assert.ok(postmaster !== undefined);
  Deno.kill(postmaster, "SIGKILL");
  await second.kill("SIGKILL");
  await second.exited;

  const third = await successor(cluster, first, "third");
  assert.deepEqual(await ids(third.postgresUrl), range(0, 100));
  assert.equal(await timelineOf(third.postgresUrl), 1);
  await insertRows(third.postgresUrl, 100, 10);
  assert.deepEqual(await ids(third.postgresUrl), range(0, 110));
});

Deno.test("safekeepers: a minority down changes nothing, a majority down holds commits back", async () => {
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "quorum" }] });
  const compute = cluster.compute("quorum");
  const [sk1, sk2, sk3] = cluster.safekeepers;
  const acknowledged: number[] = [];
  const insert = async (from: number, count: number) => {
    await insertRows(compute.postgresUrl, from, count);
    acknowledged.push(...range(from, from + count));
  };
  await query(compute.postgresUrl, "CREATE TABLE acked (id int PRIMARY KEY, body text)");
  await insert(0, 10);

  await sk3.stop();
  await insert(10, 10);

  await sk2.kill();
  // A commit now waits for the quorum. (statement_timeout cannot bound that wait: PostgreSQL
  // disables it before the commit.) Cancelled, it was committed locally but never acknowledged.
  const cancelled = new pg.Client({ connectionString: compute.postgresUrl });
  const notices: string[] = [];
  cancelled.on("notice", (notice) => notices.push(notice.message ?? ""));
  await cancelled.connect();
  try {
    const [{ pid }] = (await cancelled.query<{ pid: number }>("SELECT pg_backend_pid() AS pid"))
      .rows;
    const pending = cancelled.query("INSERT INTO acked (id, body) VALUES (20, 'not acknowledged')");
    await waitForSyncRep(compute.postgresUrl, pid);
    await query(compute.postgresUrl, "SELECT pg_cancel_backend($1)", [pid]);
    await pending;
  } finally {
    await cancelled.end();
  }
  assert.ok(
    notices.some((text) => text.includes("canceling wait for synchronous replication")),
    `expected the synchronous replication wait to be cancelled, got ${JSON.stringify(notices)}`,
  );

  // Left alone, the commit waits; it returns once a second safekeeper is back.
  const waiter = new pg.Client({ connectionString: compute.postgresUrl });
  await waiter.connect();
  let returned = false;
  try {
    const [{ pid }] = (await waiter.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows;
    const waiting = waiter.query("INSERT INTO acked (id, body) VALUES (21, 'acknowledged late')")
      .then(() => returned = true);
    await waitForSyncRep(compute.postgresUrl, pid);
    assert.equal(returned, false);
    await sk2.start();
    await waiting;
    acknowledged.push(21);
  } finally {
    await waiter.end();
  }
  await insert(22, 10);

  // The stopped one comes back and catches up; then all three agree on one LSN.
  await sk3.start();
  const { tenantId, timelineId } = compute;
  await eventually(
    () =>
      sk3.walState(tenantId, timelineId)?.flushLsn === sk1.walState(tenantId, timelineId)?.flushLsn,
    "safekeeper 3 catches up with safekeeper 1",
  );
  const terminated = await compute.terminate("fast");
  const lsn = parseLsn(terminated.body.lsn);
  await compute.exited;
  for (const safekeeper of cluster.safekeepers) {
    assert.equal(safekeeper.walState(tenantId, timelineId)?.flushLsn, lsn);
  }

  const next = await cluster.startCompute({ id: "after-quorum", tenantId, timelineId });
  const present = await ids(next.postgresUrl);
  assert.deepEqual(acknowledged.filter((id) => !present.includes(id)), []);
});

Deno.test("a safekeeper killed right after a commit keeps every LSN it reported flushed", async () => {
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "killed-sk" }] });
  const compute = cluster.compute("killed-sk");
  const { tenantId, timelineId } = compute;
  await query(compute.postgresUrl, "CREATE TABLE acked (id int PRIMARY KEY, body text)");
  for (let round = 0; round < 3; round++) {
    const safekeeper = cluster.safekeepers[round];
    const committedTo = await insertRows(compute.postgresUrl, round * 20, 20);
    const reported = safekeeper.walState(tenantId, timelineId)!.flushLsn;
    await safekeeper.kill();
    const onDisk = await readWalState(`${safekeeper.dir}/${tenantId}/${timelineId}`);
    assert.ok(onDisk !== null && onDisk.flushLsn >= reported);
    await safekeeper.start();
    assert.ok(safekeeper.walState(tenantId, timelineId)!.flushLsn >= reported);
    // The commit was acknowledged, so a majority (this one or the other two) holds it.
    const holding = cluster.safekeepers.filter((sk) =>
      sk.walState(tenantId, timelineId)!.flushLsn >= committedTo - 8192n
    );
    assert.ok(holding.length >= 2);
  }
  await compute.terminate("immediate");
  await compute.exited;
  const next = await cluster.startCompute({ id: "after-kills", tenantId, timelineId });
  assert.deepEqual(await ids(next.postgresUrl), range(0, 60));
});

Deno.test("a Static compute sees exactly what was committed at its LSN; a Replica follows", async () => {
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "primary" }] });
  const primary = cluster.compute("primary");
  const { tenantId, timelineId } = primary;
  await query(primary.postgresUrl, "CREATE TABLE acked (id int PRIMARY KEY, body text)");
  const between = await insertRows(primary.postgresUrl, 0, 20);
  await insertRows(primary.postgresUrl, 20, 20);

  const frozen = await cluster.startCompute({
    id: "static",
    tenantId,
    timelineId,
    mode: { Static: formatLsn(between) },
  });
  assert.deepEqual(await ids(frozen.postgresUrl), range(0, 20));
  await assert.rejects(
    query(frozen.postgresUrl, "INSERT INTO acked (id) VALUES (1000)"),
    /read-only transaction/,
  );
  // Its manager holds a lease on that LSN at the pageserver, so compaction keeps it servable.
  await eventually(
    () => cluster.store.activeLeases(tenantId, timelineId).includes(between),
    "the Static compute leases its LSN",
  );

  const replica = await cluster.startCompute({
    id: "replica",
    tenantId,
    timelineId,
    mode: "Replica",
  });
  assert.deepEqual(await ids(replica.postgresUrl), range(0, 40));
  await insertRows(primary.postgresUrl, 40, 1);
  await eventually(
    async () => (await ids(replica.postgresUrl)).includes(40),
    "the replica sees the primary's new row",
  );
  await assert.rejects(
    query(replica.postgresUrl, "INSERT INTO acked (id) VALUES (1001)"),
    /read-only transaction/,
  );
});

Deno.test("after compaction a new compute replays only the WAL since the new base image", async () => {
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "before" }] });
  const before = cluster.compute("before");
  const { tenantId, timelineId } = before;
  await query(before.postgresUrl, "CREATE TABLE acked (id int PRIMARY KEY, body text)");
  await insertRows(before.postgresUrl, 0, 200);
  await query(before.postgresUrl, "CHECKPOINT");
  const [{ redo }] = await query<{ redo: string }>(
    before.postgresUrl,
    "SELECT redo_lsn::text AS redo FROM pg_control_checkpoint()",
  );
  await insertRows(before.postgresUrl, 200, 20);

  const compacted = await cluster.store.compact(tenantId, timelineId);
  assert.equal(compacted.redoLsn, parseLsn(redo));
  assert.equal(compacted.lsn, cluster.store.commitLsn(tenantId, timelineId));
  await insertRows(before.postgresUrl, 220, 20);
  await before.terminate("fast");
  await before.exited;

  const after = await cluster.startCompute({ id: "after", tenantId, timelineId });
  assert.deepEqual(await ids(after.postgresUrl), range(0, 240));
  assert.equal(await timelineOf(after.postgresUrl), 1);
  const log = await after.readLog();
  const redoStart = /redo starts at ([0-9A-F]+\/[0-9A-F]+)/.exec(log);
  assert.ok(redoStart, "the compute ran crash recovery");
  assert.equal(redoStart[1], redo, "recovery started at the compacted image's redo point");
});

Deno.test("a safekeeper that missed a whole compute catches up from its peers", async () => {
  const events: string[] = [];
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "early" }],
    safekeeperLog: (line) => events.push(line),
  });
  const early = cluster.compute("early");
  const { tenantId, timelineId } = early;
  const [sk1, , sk3] = cluster.safekeepers;
  await sk3.stop();
  await query(early.postgresUrl, "CREATE TABLE acked (id int PRIMARY KEY, body text)");
  await insertRows(early.postgresUrl, 0, 30);
  await early.terminate("fast");
  await early.exited;

  const late = await cluster.startCompute({ id: "late", tenantId, timelineId });
  await insertRows(late.postgresUrl, 30, 10);
  await sk3.start();
  await eventually(
    () =>
      sk3.walState(tenantId, timelineId)?.flushLsn === sk1.walState(tenantId, timelineId)?.flushLsn,
    "safekeeper 3 catches up",
  );
  assert.ok(
    events.some((line) => line.startsWith("safekeeper 3 ") && line.includes("caught up from peer")),
    `safekeeper 3 read the WAL it missed from a peer:\n${events.join("\n")}`,
  );
  const terminated = await late.terminate("fast");
  const lsn = parseLsn(terminated.body.lsn);
  for (const safekeeper of cluster.safekeepers) {
    assert.equal(safekeeper.walState(tenantId, timelineId)?.flushLsn, lsn);
  }
});

Deno.test("a safekeeper catches up from a running peer, never from a killed one that holds as much", async () => {
  const events: string[] = [];
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "writer" }],
    safekeeperLog: (line) => events.push(line),
  });
  const writer = cluster.compute("writer");
  const { tenantId, timelineId } = writer;
  const [sk1, sk2, sk3] = cluster.safekeepers;
  await sk3.stop();
  await query(writer.postgresUrl, "CREATE TABLE acked (id int PRIMARY KEY, body text)");
  await insertRows(writer.postgresUrl, 0, 30);
  await writer.terminate("fast");
  await writer.exited;
  // Safekeeper 1 is the first peer holding everything; dead, it must be passed over.
  await sk1.kill();
  await sk3.start();
  await eventually(
    () =>
      sk3.walState(tenantId, timelineId)?.flushLsn === sk2.walState(tenantId, timelineId)?.flushLsn,
    "safekeeper 3 catches up from safekeeper 2",
  );
  assert.ok(
    events.some((line) =>
      line.startsWith("safekeeper 3 ") && line.includes(`caught up from peer ${sk2.address}`)
    ),
    `safekeeper 3 read the WAL it missed from safekeeper 2:\n${events.join("\n")}`,
  );
  const next = await cluster.startCompute({ id: "next", tenantId, timelineId });
  assert.deepEqual(await ids(next.postgresUrl), range(0, 30));
});

Deno.test("past the threshold the store compacts by itself and drops the WAL it no longer needs", async () => {
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "busy" }],
    compactionThresholdBytes: 16 * 1024 * 1024,
  });
  const busy = cluster.compute("busy");
  const { tenantId, timelineId } = busy;
  const firstImage = cluster.store.baseImages(tenantId, timelineId)[0];
  const newest = () => cluster.store.baseImages(tenantId, timelineId).at(-1)!;
  // About 20 MiB of WAL per batch: each one passes the threshold.
  const batch = (from: number) =>
    query(
      busy.postgresUrl,
      `INSERT INTO bulk SELECT g, repeat('y', 300) FROM generate_series(${from}, ${
        from + 59999
      }) g`,
    );
  await query(busy.postgresUrl, "CREATE TABLE bulk (id int, body text)");
  await batch(1);
  await eventually(() => newest().lsn > firstImage.lsn, "the store compacts by itself");
  // The next image starts from a checkpoint past the first segment: that segment is dropped.
  await query(busy.postgresUrl, "CHECKPOINT");
  const [{ redo }] = await query<{ redo: string }>(
    busy.postgresUrl,
    "SELECT redo_lsn::text AS redo FROM pg_control_checkpoint()",
  );
  await batch(60001);
  await eventually(
    () => newest().redoLsn >= parseLsn(redo),
    "a second compaction from the checkpoint",
  );
  assert.equal(
    cluster.store.baseImages(tenantId, timelineId).length,
    1,
    "no lease needs older images: they are dropped",
  );
  await eventually(async () => {
    const states = await Promise.all(
      cluster.safekeepers.map((sk) => readWalState(`${sk.dir}/${tenantId}/${timelineId}`)),
    );
    return states.every((state) => state !== null && state.startLsn > firstImage.redoLsn);
  }, "the safekeepers drop the WAL the newest image covers");

  await busy.terminate("fast");
  await busy.exited;
  const next = await cluster.startCompute({ id: "busy-next", tenantId, timelineId });
  const [{ n }] = await query<{ n: number }>(
    next.postgresUrl,
    "SELECT count(*)::int AS n FROM bulk",
  );
  assert.equal(n, 120000);
});
