/**
 * `POST /promote` with real streaming replication: a primary compute and a
 * `Replica` compute on the same timeline (a hot standby streaming the
 * primary's WAL from the safekeepers). Writes on the primary, promotion with
 * the primary's flush LSN, then writes on the promoted compute, which stays on
 * timeline 1 and commits through the safekeeper quorum. Also the single
 * flight, the refusals (mode, prewarm state, invalid spec) and the plain-text
 * body errors. The failover with the primary killed is in
 * `promote_durable_test.ts`.
 */

import assert from "node:assert/strict";
import {
  type HttpResult,
  promotedSpec as primarySpecOf,
  startCluster,
} from "../../harness/cluster.ts";
import { eventually, query, show } from "./_helpers.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function assertRequestId(result: HttpResult): void {
  assert.match(result.headers.get("x-request-id") ?? "", UUID);
}

Deno.test("promote: a replica catches up, becomes primary, takes writes; refusals", async () => {
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "primary" }] });
  const primary = cluster.compute("primary");
  const replica = await cluster.startCompute({
    id: "replica",
    tenantId: primary.tenantId,
    timelineId: primary.timelineId,
    mode: "Replica",
  });
  const [{ recovering }] = await query<{ recovering: boolean }>(
    replica.postgresUrl,
    "SELECT pg_is_in_recovery() AS recovering",
  );
  assert.equal(recovering, true);

  await query(primary.postgresUrl, "CREATE TABLE notes (id int PRIMARY KEY, body text)");
  await query(
    primary.postgresUrl,
    "INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 1000) g",
  );
  const [{ lsn }] = await query<{ lsn: string }>(
    primary.postgresUrl,
    "SELECT pg_current_wal_flush_lsn()::text AS lsn",
  );

  const promotedSpec = primarySpecOf(replica.spec, cluster.safekeepers.map((sk) => sk.address));
  const promote = (target = replica, body: unknown = { spec: promotedSpec, wal_flush_lsn: lsn }) =>
    target.request("POST", "/promote", { body });

  // Body errors are plain text, as with axum's own Json extractor.
  const notJson = await promote(primary, "{oops");
  assert.equal(notJson.status, 400);
  assert.match(notJson.text, /^Failed to parse the request body as JSON: /);
  assert.equal(notJson.headers.get("content-type"), "text/plain; charset=utf-8");
  assertRequestId(notJson);
  const numericLsn = await promote(primary, { spec: promotedSpec, wal_flush_lsn: 12345 });
  assert.equal(numericLsn.status, 422);
  assert.match(numericLsn.text, /^Failed to deserialize the JSON body into the target type: /);
  const plainText = await primary.request("POST", "/promote", {
    body: "{}",
    headers: { "content-type": "text/plain" },
  });
  assert.equal(plainText.status, 415);
  assert.equal(plainText.text, "Expected request with `Content-Type: application/json`");
  // An invalid primary spec: JSON 400, nothing started.
  const noSafekeepers = await promote(primary, {
    spec: { ...promotedSpec, safekeeper_connstrings: [] },
    wal_flush_lsn: lsn,
  });
  assert.equal(noSafekeepers.status, 400, noSafekeepers.text);
  assert.equal(typeof noSafekeepers.body.error, "string");

  // A primary is not promoted.
  const onPrimary = await promote(primary);
  assert.equal(onPrimary.status, 500, onPrimary.text);
  assert.deepEqual(onPrimary.body, {
    status: "failed",
    error: 'compute mode "primary" is not replica',
  });
  assertRequestId(onPrimary);

  // The prewarm must have ended first; on vanilla Postgres without endpoint storage it fails,
  // which promotion accepts (with a warning).
  assert.equal((await replica.request("POST", "/lfc/prewarm")).status, 202);
  await eventually(
    async () => (await replica.request("GET", "/lfc/prewarm")).body.status === "failed",
    "prewarm fails",
  );

  // Two concurrent calls: one promotion, one result.
  const [first, second] = await Promise.all([promote(), promote()]);
  assert.equal(first.status, 200, first.text);
  assertRequestId(first);
  assert.deepEqual(second.body, first.body);
  assert.equal(first.body.status, "completed");
  assert.deepEqual(Object.keys(first.body).sort(), [
    "lsn_wait_time_ms",
    "pg_promote_time_ms",
    "reconfigure_time_ms",
    "status",
  ]);
  for (const key of ["lsn_wait_time_ms", "pg_promote_time_ms", "reconfigure_time_ms"]) {
    assert.ok(Number.isInteger(first.body[key]) && first.body[key] >= 0, key);
  }

  // A later call, whatever it asks, gets the same outcome.
  const later = await promote(replica, { spec: promotedSpec, wal_flush_lsn: "FF/0" });
  assert.equal(later.status, 200);
  assert.deepEqual(later.body, first.body);

  // The promoted compute: out of recovery on timeline 1, sees the primary's rows, takes writes
  // (each one acknowledged by a quorum of safekeepers), runs the spec.
  const url = replica.postgresUrl;
  const [{ recovering: after, timeline }] = await query<{ recovering: boolean; timeline: number }>(
    url,
    "SELECT pg_is_in_recovery() AS recovering, timeline_id AS timeline FROM pg_control_checkpoint()",
  );
  assert.equal(after, false);
  assert.equal(timeline, 1);
  await query(url, "INSERT INTO notes VALUES (1001, 'written after promotion')");
  const [{ n }] = await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM notes");
  assert.equal(n, 1001);
  const [{ mode }] = await query<{ mode: string }>(
    url,
    "SELECT current_setting('neon.compute_mode') AS mode",
  );
  assert.equal(mode, "primary");
  const [{ safekeepers }] = await query<{ safekeepers: string }>(
    url,
    "SELECT current_setting('neon.safekeepers') AS safekeepers",
  );
  assert.equal(safekeepers, cluster.safekeepers.map((sk) => sk.address).join(","));
  assert.match(await show(url, "synchronous_standby_names"), /^ANY 2 \(/);
  const status = await replica.status();
  assert.equal(status.status, "running");
  assert.equal(status.error, null);
});

Deno.test("promote: a replica whose prewarm has not ended is refused, for good", async () => {
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "lonely-replica", spec: { mode: "Replica" } }],
  });
  const replica = cluster.compute("lonely-replica");
  const body = { spec: { ...replica.spec, mode: "Primary" }, wal_flush_lsn: "0/0" };
  const refused = await replica.request("POST", "/promote", { body });
  assert.equal(refused.status, 500, refused.text);
  assert.deepEqual(refused.body, { status: "failed", error: "compute NotPrewarmed" });
  // Single flight caches the failure, as in the reference.
  assert.equal((await replica.request("POST", "/lfc/prewarm")).status, 202);
  const again = await replica.request("POST", "/promote", { body });
  assert.deepEqual(again.body, refused.body);
});
