/**
 * Replicas beside one primary, for what Neon's `test_replica_promotes.py`
 * checks and `promote_test.ts` does not: `/grants` on a read-only standby
 * (what the role holds is answered without writing; a missing privilege fails
 * as Postgres refuses the GRANT), `/promote` with the `compute-promotion`
 * failpoint (fails, stays a replica, the failure is the answer from then on),
 * and `/promote` whose client disconnects mid-request (the promotion goes on
 * and a later call gets its outcome).
 */

import assert from "node:assert/strict";
import {
  type ComputeHandle,
  promotedSpec as primarySpecOf,
  startCluster,
} from "../../harness/cluster.ts";
import { eventually, query, show } from "./_helpers.ts";

const SCHEMA = "shared";
const GRANTEE = "grantee";

async function inRecovery(compute: ComputeHandle): Promise<boolean> {
  const [{ recovering }] = await query<{ recovering: boolean }>(
    compute.postgresUrl,
    "SELECT pg_is_in_recovery() AS recovering",
  );
  return recovering;
}

/** Sets the manager's failpoint `compute-promotion` to `actions`. */
async function setPromotionFailpoint(compute: ComputeHandle, actions: string): Promise<void> {
  const result = await compute.request("POST", "/failpoints", {
    internal: true,
    body: [{ name: "compute-promotion", actions }],
  });
  assert.equal(result.status, 200, result.text);
}

/** Runs the prewarm promotion waits for; on vanilla Postgres it fails, which promotion accepts. */
async function endPrewarm(compute: ComputeHandle): Promise<void> {
  assert.equal((await compute.request("POST", "/lfc/prewarm")).status, 202);
  await eventually(
    async () => (await compute.request("GET", "/lfc/prewarm")).body.status === "failed",
    `${compute.id}: prewarm ends`,
  );
}

Deno.test("replicas: /grants read-only, /promote with a failpoint and with a disconnect", async (t) => {
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "primary" }] });
  const primary = cluster.compute("primary");
  const replica = (id: string) =>
    cluster.startCompute({
      id,
      tenantId: primary.tenantId,
      timelineId: primary.timelineId,
      mode: "Replica",
      extraArgs: ["--enable-failpoints"],
    });
  const failing = await replica("replica-failpoint");
  const dropped = await replica("replica-disconnect");

  await query(primary.postgresUrl, `CREATE ROLE ${GRANTEE} LOGIN`);
  await query(primary.postgresUrl, `CREATE SCHEMA ${SCHEMA}`);
  await query(primary.postgresUrl, `GRANT USAGE ON SCHEMA ${SCHEMA} TO ${GRANTEE}`);
  await query(primary.postgresUrl, "CREATE TABLE notes (id int PRIMARY KEY)");
  await query(primary.postgresUrl, "INSERT INTO notes SELECT generate_series(1, 100)");
  const [{ lsn }] = await query<{ lsn: string }>(
    primary.postgresUrl,
    "SELECT pg_current_wal_flush_lsn()::text AS lsn",
  );
  const promotedSpec = (compute: ComputeHandle) => ({
    spec: primarySpecOf(compute.spec, cluster.safekeepers.map((sk) => sk.address)),
    wal_flush_lsn: lsn,
  });

  await t.step("/grants on a replica: held privileges 201, a missing one 500", async () => {
    const privileges = async () =>
      (await query<{ usage: boolean; create: boolean }>(
        failing.postgresUrl,
        "SELECT has_schema_privilege($1, $2, 'USAGE') AS usage, " +
          "has_schema_privilege($1, $2, 'CREATE') AS create",
        [GRANTEE, SCHEMA],
      ))[0];
    await eventually(
      async () =>
        (await query(failing.postgresUrl, "SELECT 1 FROM pg_roles WHERE rolname = $1", [GRANTEE]))
            .length === 1 && (await privileges()).usage,
      "the replica has replayed the grant",
    );
    assert.equal(await inRecovery(failing), true);
    const grants = (list: string[]) =>
      failing.request("POST", "/grants", {
        internal: true,
        body: { database: "postgres", schema: SCHEMA, privileges: list, role: GRANTEE },
      });

    // Neon reads the ACL first "to gracefully handle read-replicas": nothing to write.
    const held = await grants(["USAGE"]);
    assert.equal(held.status, 201, held.text);
    assert.deepEqual(held.body, {
      database: "postgres",
      schema: SCHEMA,
      privileges: ["USAGE"],
      role: GRANTEE,
    });

    // A missing privilege needs a GRANT, which a read-only standby refuses.
    const missing = await grants(["USAGE", "CREATE"]);
    assert.equal(missing.status, 500, missing.text);
    assert.deepEqual(missing.body, {
      error: "failed to grant role privileges to the schema: Failed to execute query: " +
        `GRANT CREATE ON SCHEMA "${SCHEMA}" TO "${GRANTEE}"`,
    });
    await eventually(
      async () =>
        (await failing.readLog()).includes("cannot execute GRANT in a read-only transaction"),
      "the manager logs why Postgres refused the GRANT",
    );
    assert.deepEqual(await privileges(), { usage: true, create: false });
    assert.equal((await failing.status()).status, "running");
  });

  await t.step(
    "/promote with the compute-promotion failpoint: failed, still a replica",
    async () => {
      await endPrewarm(failing);
      await setPromotionFailpoint(failing, "return");
      const refused = await failing.request("POST", "/promote", { body: promotedSpec(failing) });
      assert.equal(refused.status, 500, refused.text);
      assert.deepEqual(refused.body, { status: "failed", error: "compute-promotion failpoint" });
      assert.equal(await inRecovery(failing), true);
      assert.equal((await failing.status()).status, "running");
      assert.equal(await show(failing.postgresUrl, "neon.compute_mode"), "replica");

      // As in the reference, the outcome is kept: a later call gets it, failpoint or not.
      await setPromotionFailpoint(failing, "off");
      const again = await failing.request("POST", "/promote", { body: promotedSpec(failing) });
      assert.equal(again.status, 500, again.text);
      assert.deepEqual(again.body, refused.body);
      assert.equal(await inRecovery(failing), true);
    },
  );

  await t.step("/promote whose client disconnects: the promotion still completes", async () => {
    await endPrewarm(dropped);
    await setPromotionFailpoint(dropped, "pause");
    const abort = new AbortController();
    const request = fetch(`${dropped.externalHttp}/promote`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${dropped.tokens.compute}`,
        "content-type": "application/json",
      },
      body: JSON.stringify(promotedSpec(dropped)),
      signal: abort.signal,
    });
    await eventually(
      async () => (await dropped.readLog()).includes("failpoint compute-promotion paused"),
      "the promotion reaches the paused failpoint",
    );
    abort.abort();
    await assert.rejects(request, (error: unknown) => (error as Error).name === "AbortError");

    // Resume the promotion the vanished client started; a new call waits for its outcome.
    await setPromotionFailpoint(dropped, "off");
    const later = await dropped.request("POST", "/promote", { body: promotedSpec(dropped) });
    assert.equal(later.status, 200, later.text);
    assert.equal(later.body.status, "completed");
    assert.equal(await inRecovery(dropped), false);
    await query(dropped.postgresUrl, "INSERT INTO notes VALUES (101)");
    const [{ n }] = await query<{ n: number }>(
      dropped.postgresUrl,
      "SELECT count(*)::int AS n FROM notes",
    );
    assert.equal(n, 101);
    assert.equal((await dropped.status()).status, "running");
    assert.equal(await show(dropped.postgresUrl, "neon.compute_mode"), "primary");
  });
});
