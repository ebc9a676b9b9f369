/**
 * Ported from Neon's `test_change_pageserver` (neon-04 §D.1), both variants of
 * `use_explicit_reconfigure_for_failover`: the compute alternates between two
 * pageservers (the one left behind loses the tenant, as when the storage
 * controller marks it offline; it gets it back when the compute returns),
 * once while a `count(*)` is in flight. After each step every connection sees
 * every row and `neon.pageserver_connstring` names the new pageserver.
 *
 * Explicit: `config.json` is updated and `/configure` pushes it. Refresh: only
 * `config.json` changes; the emulated Neon extension finds the tenant gone
 * from the pageserver Postgres still names and calls `/refresh_configuration`,
 * so the manager heals the compute by itself: no `/configure` at all, the
 * refreshes counted in `pg_cctl_pagestream_request_errors_total`.
 *
 * Vanilla reads never reach the pageserver, so the counts alone would pass
 * trivially; what makes the test mean something is the probe and the
 * connstring following it.
 */

import assert from "node:assert/strict";
import pg from "pg";
import {
  type ComputeHandle,
  type HttpResult,
  specPageserver,
  startCluster,
  withPageserver,
} from "../../harness/cluster.ts";
import type { Pageserver } from "../../harness/pageserver.ts";
import { eventually, metricValue, show } from "./_helpers.ts";

const ROWS = 100_000;
const CONNECTIONS = 3;
const ERRORS_METRIC = "pg_cctl_pagestream_request_errors_total";
const CONNSTRING = "neon.pageserver_connstring";
/** Held by a fourth session so the concurrent `count(*)` stays in flight during the switch. */
const GATE_LOCK = 4242;

for (const explicit of [true, false]) {
  const variant = explicit ? "explicit /configure" : "config.json and refresh";
  Deno.test(`change pageserver (${variant})`, () => changePageserver(explicit));
}

async function changePageserver(explicit: boolean): Promise<void> {
  await using cluster = await startCluster({
    pageservers: 2,
    computes: [{ id: "change-ps", neonExtension: { intervalMs: 200, backoffMs: 200 } }],
  });
  const compute = cluster.compute("change-ps");
  const tenant = compute.tenantId;
  const [ps0, ps1] = cluster.pageservers;
  assert.equal(await show(compute.postgresUrl, CONNSTRING), ps0.libpqUrl);
  ps1.attach(tenant); // dual-attached, as `pageservers[1].tenant_attach`
  const postmaster = await compute.postmasterPid();

  await using sessions = await openSessions(compute.postgresUrl, CONNECTIONS);
  const clients = sessions.clients;
  await clients[0].query("CREATE TABLE foo (t text)");
  await clients[0].query(
    `INSERT INTO foo SELECT 'long string to consume some space' || g FROM generate_series(1, ${ROWS}) g`,
  );
  const { rows: [sizes] } = await clients[0].query<{ shared_buffers: string; table_size: string }>(
    `SELECT setting::bigint * pg_size_bytes(unit) AS shared_buffers,
            pg_relation_size('foo') AS table_size
       FROM pg_settings WHERE name = 'shared_buffers'`,
  );
  assert.ok(BigInt(sizes.shared_buffers) < BigInt(sizes.table_size), "bigger than shared_buffers");
  await assertEveryRow(clients);

  const errors = async () => metricValue(await compute.metrics(), ERRORS_METRIC) ?? 0;
  const switchTo = (target: Pageserver) => pointComputeAt(compute, target, explicit);
  /**
   * Refresh variant, after a failure: waits until the probe has asked for a
   * refresh before the control plane knows better, as Neon's compute hangs on
   * a dead pageserver until reconfigured (that refresh finds nothing new).
   */
  const probeNoticed = async (errorsBefore: number) => {
    if (explicit) return;
    await eventually(async () => (await errors()) > errorsBefore, "the probe asked for a refresh");
  };

  // 1. A healthy migration to ps1; then ps0 loses the tenant.
  let errorsBefore = await errors();
  await switchTo(ps1);
  ps0.detach(tenant);
  await followed(clients, ps1);
  await assertEveryRow(clients);
  if (!explicit) {
    assert.ok((await errors()) > errorsBefore, `${ERRORS_METRIC} rose: the probe asked`);
    assert.ok(ps0.misroutedRequests > 0, "the probe hit ps0 after it lost the tenant");
  }

  // 2. Fail back, like an unexpected failure: ps1 loses the tenant before the switch.
  errorsBefore = await errors();
  ps0.attach(tenant);
  ps1.detach(tenant);
  await probeNoticed(errorsBefore);
  await switchTo(ps0);
  await followed(clients, ps0);
  await assertEveryRow(clients);

  // 3. Again to ps1, with a count(*) on every connection in flight across the switch.
  errorsBefore = await errors();
  ps0.detach(tenant);
  ps1.attach(tenant);
  await using gate = await openSessions(compute.postgresUrl, 1);
  await gate.clients[0].query("SELECT pg_advisory_lock($1)", [GATE_LOCK]);
  const inFlight = clients.map((client) =>
    client.query<{ n: number }>(
      `WITH gate AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(${GATE_LOCK}))
       SELECT count(*)::int AS n FROM foo, gate`,
    )
  );
  // Awaited below; a failure before then must not surface as an unhandled rejection.
  for (const query of inFlight) query.catch(() => {});
  try {
    await eventually(
      async () => (await waitingOnGate(gate.clients[0])) === CONNECTIONS,
      "every count(*) is waiting at the gate",
    );
    await probeNoticed(errorsBefore);
    await switchTo(ps1);
    await eventually(
      async () => (await show(compute.postgresUrl, CONNSTRING)) === ps1.libpqUrl,
      "the compute names ps1",
    );
  } finally {
    await gate.clients[0].query("SELECT pg_advisory_unlock($1)", [GATE_LOCK]);
  }
  const counted = await Promise.all(inFlight);
  assert.deepEqual(counted.map((result) => result.rows[0].n), clients.map(() => ROWS));
  await followed(clients, ps1);

  // One final check that nothing hangs.
  await assertEveryRow(clients);
  assert.equal(await compute.postmasterPid(), postmaster, "no restart");
  const log = await compute.readLog();
  if (!explicit) {
    assert.doesNotMatch(log, / path=\/configure /, "no /configure in the refresh variant");
    assert.match(log, /neon_extension: probe of pageserver .* POST \/refresh_configuration: 200/);
    assert.ok(compute.neonExtension!.refreshes > 0);
  } else {
    assert.match(log, / path=\/configure status=200/);
  }
}

/**
 * Updates `config.json` (and the control plane) to `target`; explicit also
 * pushes `/configure`, again while the compute answers 412 because the probe
 * has a refresh under way (`/configure` needs `running`), as the storage
 * controller retries a compute notification.
 */
async function pointComputeAt(
  compute: ComputeHandle,
  target: Pageserver,
  explicit: boolean,
): Promise<void> {
  const config = await compute.updateConfig((current) => ({
    ...current,
    spec: withPageserver(current.spec!, specPageserver(target)),
  }));
  if (!explicit) return;
  let result!: HttpResult;
  await eventually(
    async () => (result = await compute.configure(config)).status !== 412,
    "/configure found the compute running",
  );
  assert.equal(result.status, 200, result.text);
  assert.equal(result.body.status, "running");
}

/** Waits until every session's `neon.pageserver_connstring` names `target`. */
async function followed(clients: pg.Client[], target: Pageserver): Promise<void> {
  await eventually(async () => {
    for (const client of clients) {
      const { rows } = await client.query<Record<string, string>>(`SHOW ${CONNSTRING}`);
      if (rows[0][CONNSTRING] !== target.libpqUrl) return false;
    }
    return true;
  }, `every connection names pageserver ${target.id}`);
}

async function assertEveryRow(clients: pg.Client[]): Promise<void> {
  for (const client of clients) {
    const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM foo");
    assert.equal(rows[0].n, ROWS);
  }
}

/** How many sessions wait for an advisory lock. */
async function waitingOnGate(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'`,
  );
  return rows[0].n;
}

/** `count` connected clients, ended on dispose. */
async function openSessions(
  url: string,
  count: number,
): Promise<{ clients: pg.Client[] } & AsyncDisposable> {
  const clients: pg.Client[] = [];
  const end = async () => {
    await Promise.all(clients.map((client) => client.end().catch(() => {})));
  };
  try {
    for (let i = 0; i < count; i++) {
      const client = new pg.Client({
        connectionString: url,
        application_name: "change-pageserver",
      });
      client.on("error", () => {});
      clients.push(client);
      await client.connect();
    }
  } catch (error) {
    await end();
    throw error;
  }
  return { clients, [Symbol.asyncDispose]: end };
}
