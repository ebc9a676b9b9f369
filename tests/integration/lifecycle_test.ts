/**
 * Start-up scenarios against real Postgres through the harness cluster: from a
 * config file, from the control plane, an empty compute configured over HTTP,
 * logging in as the spec's role, and a pageserver that is down at start.
 */

import assert from "node:assert/strict";
import { SPEC_DATABASE, SPEC_ROLE, startCluster } from "../../harness/cluster.ts";
import { metricValue, query, within } from "./_helpers.ts";
import { PSQL } from "../_support/psql.ts";

Deno.test("starts from config.json; the spec role logs in and creates a table", async () => {
  await using cluster = await startCluster({ computes: [{ id: "from-config" }] });
  const compute = cluster.compute("from-config");

  const status = await compute.status();
  assert.equal(status.status, "running");
  assert.equal(status.tenant, compute.tenantId);
  assert.equal(status.timeline, compute.timelineId);
  assert.equal(status.error, null);

  const aliceUrl = compute.connectionUrl({
    user: SPEC_ROLE.name,
    password: SPEC_ROLE.password,
    database: SPEC_DATABASE,
  });
  await query(aliceUrl, "CREATE TABLE notes (id int PRIMARY KEY, body text)");
  await query(aliceUrl, "INSERT INTO notes VALUES (1, 'hello'), (2, 'world')");
  const rows = await query<{ n: number; owner: string }>(
    aliceUrl,
    "SELECT count(*)::int AS n, (SELECT tableowner FROM pg_tables WHERE tablename = 'notes') AS owner FROM notes",
  );
  assert.deepEqual(rows, [{ n: 2, owner: SPEC_ROLE.name }]);

  // The URL in cluster.json works as is with psql, as the user running the test
  // (the pg client above used it too; PostgreSQL from npm ships no psql).
  if (PSQL === undefined) return;
  const psql = await new Deno.Command(PSQL, {
    args: [compute.postgresUrl, "-XAtc", "SELECT current_user"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(psql.code, 0, new TextDecoder().decode(psql.stderr));
  assert.equal(new TextDecoder().decode(psql.stdout).trim(), "cloud_admin");
});

Deno.test("starts from the control plane", async () => {
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "from-cplane", source: "control-plane" }],
  });
  const compute = cluster.compute("from-cplane");
  assert.equal((await compute.status()).status, "running");
  assert.ok(cluster.controlPlane.requests("from-cplane") >= 1);
  const metrics = await compute.metrics();
  assert.equal(
    metricValue(metrics, "compute_ctl_cplane_requests_total", {
      rpc: "GetConfig",
      http_status: "200 OK",
    }),
    1,
  );
  const rows = await query<{ datname: string }>(
    compute.postgresUrl,
    "SELECT datname FROM pg_database WHERE datname = $1",
    [SPEC_DATABASE],
  );
  assert.equal(rows.length, 1);
});

Deno.test("an empty compute waits, then POST /configure brings it to running", async () => {
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "pooled", source: "control-plane", empty: true }],
  });
  const compute = cluster.compute("pooled");
  const empty = await compute.status();
  assert.equal(empty.status, "empty");

  const configured = await compute.configure();
  assert.equal(configured.status, 200, configured.text);
  assert.equal(configured.body.status, "running");
  assert.equal((await compute.status()).status, "running");

  const aliceUrl = compute.connectionUrl({ password: SPEC_ROLE.password });
  const rows = await query<{ user: string; db: string }>(
    aliceUrl,
    "SELECT current_user AS user, current_database() AS db",
  );
  assert.deepEqual(rows, [{ user: SPEC_ROLE.name, db: SPEC_DATABASE }]);
});

Deno.test("a pageserver down at start: retries, then failed with the error in /status", async () => {
  await using cluster = await startCluster({ pageservers: 2 });
  await cluster.stopPageserver(cluster.pageservers[0]);
  const compute = await cluster.startCompute({
    id: "no-pageserver",
    pageserver: 0,
    env: { NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES: "2" },
    exitDelayMs: 3_000,
    waitFor: "failed",
  });
  const status = await compute.status();
  assert.equal(status.status, "failed");
  // Neon's error context for this step (neon-01 §2.5): `failed to get basebackup@<lsn>`.
  assert.match(status.error ?? "", /failed to get basebackup@\d+\/[0-9A-F]+/);
  const retries = (await compute.readLog()).match(/basebackup attempt failed; retrying/g) ?? [];
  assert.equal(retries.length, 2, "NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES=2: two retries");
  const code = await within(compute.exited, 30_000, "manager exit after a failed start");
  assert.notEqual(code, 0);
});

Deno.test("safekeepers that disagree at start: vanilla Postgres cannot sync them, so failed", async () => {
  await using cluster = await startCluster({ pageservers: 1 });
  const tenantId = crypto.randomUUID().replaceAll("-", "");
  const timelineId = crypto.randomUUID().replaceAll("-", "");
  // Two of three safekeepers report different commit LSNs: no quorum agrees.
  cluster.safekeepers[0].setStatusOverride(tenantId, timelineId, {
    flushLsn: 0x1000000n,
    commitLsn: 0x1000000n,
  });
  cluster.safekeepers[1].setStatusOverride(tenantId, timelineId, {
    flushLsn: 0x2000000n,
    commitLsn: 0x1000000n,
  });
  const compute = await cluster.startCompute({
    id: "disagreeing-safekeepers",
    tenantId,
    timelineId,
    exitDelayMs: 3_000,
    waitFor: "failed",
    startTimeoutMs: 60_000,
  });
  const status = await compute.status();
  assert.equal(status.status, "failed");
  assert.match(
    status.error ?? "",
    /safekeepers are not in sync and .* does not support --sync-safekeepers/,
  );
  const log = await compute.readLog();
  assert.doesNotMatch(log, /basebackup attempt/, "no basebackup without a start LSN");
  const code = await within(compute.exited, 30_000, "manager exit after a failed start");
  assert.notEqual(code, 0);
});
