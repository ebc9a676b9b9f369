/**
 * The harness admin API over real HTTP against a real cluster (2 pageservers,
 * 3 safekeepers, one primary): each route's success, 404 and 409, and the
 * flows they exist for: a migration with `notify: true` moves the compute's
 * `neon.pageserver_connstring` while the old pageserver answers `not found`;
 * a killed compute comes back on the same ports with its rows; a Replica and
 * a Static compute added later see them; a migration with `notify: false`
 * rewrites the config and leaves the computes alone.
 */

import assert from "node:assert/strict";
import pg from "pg";
import { addLsn, formatLsn, parseLsn } from "../../src/api/lsn.ts";
import { type BasebackupResult, fetchBasebackup } from "../../src/storage/basebackup.ts";
import { type Cluster, startCluster } from "../../harness/cluster.ts";
import { eventually, query, show } from "./_helpers.ts";

interface Answer {
  status: number;
  // deno-lint-ignore no-explicit-any -- each route answers its own shape
  body: any;
}

async function admin(
  cluster: Cluster,
  method: string,
  path: string,
  body?: unknown,
): Promise<Answer> {
  const response = await fetch(`${cluster.controlPlane.url}/harness/${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.match(response.headers.get("content-type") ?? "", /application\/json/);
  return { status: response.status, body: await response.json() };
}

/** Asserts the answer's status and, for an error, that its message matches. */
function expectError(answer: Answer, status: number, message: RegExp): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.match(answer.body.error, message);
}

async function ids(url: string): Promise<number[]> {
  const rows = await query<{ id: number }>(url, "SELECT id FROM acked ORDER BY id");
  return rows.map((row) => row.id);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

async function insertRows(url: string, from: number, to: number): Promise<void> {
  await query(url, "INSERT INTO acked SELECT g, 'row ' || g FROM generate_series($1::int, $2) g", [
    from,
    to - 1,
  ]);
}

/**
 * Starts a basebackup from pageserver 1 at 64 KiB past the end of the WAL, so
 * that it waits until {@linkcode writeWal} writes that much; returns it once
 * the pageserver has it running.
 */
async function pendingBasebackup(
  cluster: Cluster,
  pgdata: string,
): Promise<{ fetched: Promise<BasebackupResult> }> {
  const compute = cluster.compute("compute-1");
  const [{ lsn }] = await query<{ lsn: string }>(
    compute.postgresUrl,
    "SELECT pg_current_wal_insert_lsn()::text AS lsn",
  );
  const fetched = fetchBasebackup({
    libpqUrl: cluster.pageservers[0].libpqUrl,
    tenantId: compute.tenantId,
    timelineId: compute.timelineId,
    lsn: addLsn(parseLsn(lsn), 64 * 1024),
    mode: "Primary",
    pgdata,
    gzip: true,
  });
  fetched.catch(() => {});
  // The command reached the pageserver: it waits there for the WAL to arrive.
  await eventually(
    () => cluster.pageservers[0].commandsInProgress > 0,
    "the basebackup to reach the pageserver",
  );
  return { fetched };
}

/** Commits a few hundred KiB of WAL. */
async function writeWal(url: string): Promise<void> {
  await query(url, "CREATE TABLE IF NOT EXISTS filler (g int, body text)");
  await query(url, "INSERT INTO filler SELECT g, md5(g::text) FROM generate_series(1, 5000) g");
}

async function configuredPageserver(cluster: Cluster, id: string): Promise<unknown> {
  return (await cluster.compute(id).readConfig()).spec?.pageserver_connstring;
}

Deno.test("harness admin API: every route, its refusals, and the failover moves", async (t) => {
  await using cluster = await startCluster({ pageservers: 2, computes: [{ id: "compute-1" }] });
  const [ps1, ps2] = cluster.pageservers;
  const first = cluster.compute("compute-1");
  const tenant = first.tenantId;
  await query(first.postgresUrl, "CREATE TABLE acked (id int PRIMARY KEY, body text)");
  await insertRows(first.postgresUrl, 0, 10);

  await t.step(
    "GET /harness/state is cluster.json; unknown paths 404, wrong methods 405",
    async () => {
      const state = await admin(cluster, "GET", "state");
      assert.equal(state.status, 200);
      assert.deepEqual(state.body, cluster.clusterJson());
      expectError(await admin(cluster, "GET", "nothing"), 404, /no route/);
      expectError(await admin(cluster, "POST", "state"), 405, /not allowed/);
      // The control plane's own endpoint still works beside it.
      const spec = await fetch(`${cluster.controlPlane.url}/compute/api/v2/computes/x/spec`);
      await spec.body?.cancel();
      assert.equal(spec.status, 404);
    },
  );

  await t.step("pageservers stop, die and come back on the same ports", async () => {
    assert.equal(ps1.tenantState(tenant), "attached");
    assert.equal(ps2.tenantState(tenant), "secondary");
    const idle = new pg.Client({ connectionString: ps1.libpqUrl, ssl: false });
    idle.on("error", () => {});
    await idle.connect();

    const stopped = await admin(cluster, "POST", "pageservers/1/stop");
    assert.deepEqual([stopped.status, stopped.body], [200, { id: 1, running: false }]);
    await assert.rejects(idle.query("set x = 1"), "the stop closed its connections");
    await assert.rejects(query(ps1.libpqUrl, "set x = 1"), /ECONNREFUSED/);
    expectError(await admin(cluster, "POST", "pageservers/1/stop"), 409, /not running/);
    expectError(await admin(cluster, "POST", "pageservers/1/kill"), 409, /not running/);

    const started = await admin(cluster, "POST", "pageservers/1/start");
    assert.deepEqual([started.status, started.body], [200, { id: 1, running: true }]);
    expectError(await admin(cluster, "POST", "pageservers/1/start"), 409, /is running/);
    await query(ps1.libpqUrl, "set x = 1");
    assert.equal(ps1.tenantState(tenant), "attached", "attachments survive a restart");

    const victim = new pg.Client({ connectionString: ps1.libpqUrl, ssl: false });
    victim.on("error", () => {});
    await victim.connect();
    const killed = await admin(cluster, "POST", "pageservers/1/kill");
    assert.deepEqual([killed.status, killed.body], [200, { id: 1, running: false }]);
    await assert.rejects(victim.query("set x = 1"), "the kill dropped its connections");
    assert.equal((await admin(cluster, "POST", "pageservers/1/start")).body.running, true);
    expectError(await admin(cluster, "POST", "pageservers/9/stop"), 404, /no pageserver 9/);
    await idle.end().catch(() => {});
    await victim.end().catch(() => {});
  });

  await t.step("a graceful stop lets a running basebackup finish, a kill cuts it", async () => {
    const pgdata = await Deno.makeTempDir({ prefix: "admin-api-basebackup-" });
    try {
      const { fetched: finishing } = await pendingBasebackup(cluster, pgdata);
      const stopping = admin(cluster, "POST", "pageservers/1/stop");
      await eventually(() => ps1.draining, "pageserver 1 to start draining");
      await assert.rejects(query(ps1.libpqUrl, "set x = 1"), /pageserver is shutting down/);
      await writeWal(first.postgresUrl);
      const result = await finishing;
      assert.ok(result.bytes > 0, "the basebackup in progress was served in full");
      assert.deepEqual((await stopping).body, { id: 1, running: false });
      await cluster.pageserverAction(1, "start");

      const { fetched: cut } = await pendingBasebackup(cluster, pgdata);
      assert.deepEqual((await admin(cluster, "POST", "pageservers/1/kill")).body, {
        id: 1,
        running: false,
      });
      await assert.rejects(cut, /failed to get basebackup/);
      await cluster.pageserverAction(1, "start");
    } finally {
      await Deno.remove(pgdata, { recursive: true });
    }
  });

  await t.step("safekeepers stop and start; commits go on with two of three", async () => {
    const stopped = await admin(cluster, "POST", "safekeepers/2/stop");
    assert.deepEqual([stopped.status, stopped.body], [200, { id: 2, running: false }]);
    expectError(await admin(cluster, "POST", "safekeepers/2/stop"), 409, /not running/);
    await insertRows(first.postgresUrl, 10, 12);
    const started = await admin(cluster, "POST", "safekeepers/2/start");
    assert.deepEqual([started.status, started.body], [200, { id: 2, running: true }]);
    expectError(await admin(cluster, "POST", "safekeepers/2/start"), 409, /is running/);
    const killed = await admin(cluster, "POST", "safekeepers/3/kill");
    assert.deepEqual(killed.body, { id: 3, running: false });
    assert.equal((await admin(cluster, "POST", "safekeepers/3/start")).body.running, true);
    expectError(await admin(cluster, "POST", "safekeepers/7/kill"), 404, /no safekeeper 7/);
  });

  await t.step(
    "migrate with notify: the compute follows, the old pageserver says not found",
    async () => {
      expectError(
        await admin(cluster, "POST", `tenants/${tenant}/migrate`, { to: 1, notify: true }),
        409,
        /already attached to pageserver 1/,
      );
      expectError(
        await admin(cluster, "POST", `tenants/${"0".repeat(32)}/migrate`, { to: 2, notify: true }),
        404,
        /no tenant/,
      );
      expectError(
        await admin(cluster, "POST", `tenants/${tenant}/migrate`, { to: 9, notify: true }),
        404,
        /no pageserver 9/,
      );
      expectError(
        await admin(cluster, "POST", `tenants/${tenant}/migrate`, { notify: true }),
        400,
        /to: missing field/,
      );
      await cluster.pageserverAction(2, "stop");
      expectError(
        await admin(cluster, "POST", `tenants/${tenant}/migrate`, { to: 2, notify: true }),
        409,
        /pageserver 2 is not running/,
      );
      await cluster.pageserverAction(2, "start");

      assert.equal(await show(first.postgresUrl, "neon.pageserver_connstring"), ps1.libpqUrl);
      const postmaster = await first.postmasterPid();
      const moved = await admin(cluster, "POST", `tenants/${tenant}/migrate`, {
        to: 2,
        notify: true,
      });
      assert.equal(moved.status, 200, JSON.stringify(moved.body));
      assert.deepEqual(moved.body, {
        tenant_id: tenant,
        to: 2,
        secondary: [1],
        computes: ["compute-1"],
        notified: ["compute-1"],
      });
      assert.equal(await show(first.postgresUrl, "neon.pageserver_connstring"), ps2.libpqUrl);
      assert.equal(await first.postmasterPid(), postmaster, "no restart");
      assert.equal(await configuredPageserver(cluster, "compute-1"), ps2.libpqUrl);
      assert.deepEqual([ps1.tenantState(tenant), ps2.tenantState(tenant)], [
        "secondary",
        "attached",
      ]);

      const misrouted = ps1.misroutedRequests;
      await assert.rejects(
        query(ps1.libpqUrl, `lease lsn ${tenant} ${first.timelineId} 0/1`),
        /Not found: Tenant .* not found/,
      );
      assert.equal(ps1.misroutedRequests, misrouted + 1);
      const [row] = await query<{ valid_until: string }>(
        ps2.libpqUrl,
        `lease lsn ${tenant} ${first.timelineId} ${
          formatLsn(cluster.store.commitLsn(tenant, first.timelineId))
        }`,
      );
      assert.ok(Number(row.valid_until) > Date.now(), "the new pageserver serves the tenant");
    },
  );

  await t.step("a compute killed, then started: same ports, same rows", async () => {
    const before = cluster.computeJson("compute-1");
    const killed = await admin(cluster, "POST", "computes/compute-1/kill");
    assert.equal(killed.status, 200, JSON.stringify(killed.body));
    assert.equal(killed.body.id, "compute-1");
    assert.equal(killed.body.exit_code, 137, "128 + SIGKILL");
    expectError(await admin(cluster, "POST", "computes/compute-1/kill"), 409, /has exited/);
    expectError(await admin(cluster, "POST", "computes/compute-1/stop"), 409, /has exited/);

    const started = await admin(cluster, "POST", "computes/compute-1/start");
    assert.equal(started.status, 200, JSON.stringify(started.body));
    assert.deepEqual(started.body, before, "same ports, paths and tokens");
    expectError(await admin(cluster, "POST", "computes/compute-1/start"), 409, /is running/);
    expectError(await admin(cluster, "POST", "computes/nope/start"), 404, /no compute "nope"/);

    const compute = cluster.compute("compute-1");
    assert.notEqual(compute, first, "a new handle");
    assert.equal((await compute.status()).status, "running");
    assert.deepEqual(await ids(compute.postgresUrl), range(0, 12));
    assert.equal(await show(compute.postgresUrl, "neon.pageserver_connstring"), ps2.libpqUrl);
    await insertRows(compute.postgresUrl, 12, 20);
  });

  await t.step("a compute stopped with /terminate, then started", async () => {
    const stopped = await admin(cluster, "POST", "computes/compute-1/stop");
    assert.deepEqual([stopped.status, stopped.body], [200, { id: "compute-1", exit_code: 0 }]);
    const started = await admin(cluster, "POST", "computes/compute-1/start");
    assert.equal(started.status, 200, JSON.stringify(started.body));
    assert.deepEqual(await ids(started.body.postgres), range(0, 20));
  });

  await t.step("POST /harness/computes adds a Replica and a Static compute", async () => {
    const primary = cluster.compute("compute-1");
    const replica = await admin(cluster, "POST", "computes", { mode: "Replica" });
    assert.equal(replica.status, 201, JSON.stringify(replica.body));
    assert.equal(replica.body.id, "compute-2");
    assert.equal(replica.body.tenant_id, tenant);
    assert.match(replica.body.postgres, /^postgresql:\/\/cloud_admin@127\.0\.0\.1:\d+\/postgres$/);
    assert.match(replica.body.tokens.compute, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.deepEqual(await ids(replica.body.postgres), range(0, 20));
    assert.equal(
      await show(replica.body.postgres, "neon.pageserver_connstring"),
      ps2.libpqUrl,
      "a new compute gets the pageserver its tenant is attached to",
    );

    const [{ lsn }] = await query<{ lsn: string }>(
      primary.postgresUrl,
      "SELECT pg_current_wal_insert_lsn()::text AS lsn",
    );
    await insertRows(primary.postgresUrl, 20, 25);
    await eventually(
      async () => (await ids(replica.body.postgres)).length === 25,
      "the replica follows the primary",
    );
    const frozen = await admin(cluster, "POST", "computes", {
      mode: "Static",
      lsn: lsn.toLowerCase(),
      tenant_id: tenant,
      timeline_id: primary.timelineId,
    });
    assert.equal(frozen.status, 201, JSON.stringify(frozen.body));
    assert.equal(frozen.body.id, "compute-3");
    assert.deepEqual(await ids(frozen.body.postgres), range(0, 20));
    const spec = (await cluster.compute("compute-3").readConfig()).spec;
    assert.deepEqual(spec?.mode, { Static: formatLsn(parseLsn(lsn)) });

    const state = await admin(cluster, "GET", "state");
    assert.deepEqual(
      state.body.computes.map((compute: { id: string }) => compute.id),
      ["compute-1", "compute-2", "compute-3"],
    );
    expectError(
      await admin(cluster, "POST", "computes", {
        mode: "Replica",
        tenant_id: "0".repeat(32),
        timeline_id: "1".repeat(32),
      }),
      404,
      /no timeline/,
    );
    expectError(
      await admin(cluster, "POST", "computes", { mode: "Static", lsn: "nope" }),
      400,
      /lsn: expected an LSN/,
    );
    expectError(
      await admin(cluster, "POST", "computes", { mode: "Replica", tenant_id: tenant }),
      400,
      /both tenant_id and timeline_id/,
    );
  });

  await t.step("migrate without notify: configs change, the computes are left alone", async () => {
    const moved = await admin(cluster, "POST", `tenants/${tenant}/migrate`, {
      to: 1,
      notify: false,
    });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.deepEqual(moved.body, {
      tenant_id: tenant,
      to: 1,
      secondary: [2],
      computes: ["compute-1", "compute-2", "compute-3"],
      notified: [],
    });
    for (const id of ["compute-1", "compute-2", "compute-3"]) {
      assert.equal(await configuredPageserver(cluster, id), ps1.libpqUrl, id);
    }
    const primary = cluster.compute("compute-1");
    assert.equal(await show(primary.postgresUrl, "neon.pageserver_connstring"), ps2.libpqUrl);
  });
});
