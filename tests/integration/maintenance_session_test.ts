/**
 * The maintenance session against a real Postgres: it is opened once and
 * reused, a terminated backend is replaced by the next use, a use that fails
 * or leaves a transaction open ends the session, session settings do not
 * carry over from one use to the next, uses never overlap, and closing it
 * leaves no backend behind. And the cluster snapshot a check leaves on it is
 * taken by the next plan only while nothing has committed since.
 */

import assert from "node:assert/strict";
import type pg from "pg";
import { computeSpecSchema } from "../../src/api/spec.ts";
import { readClusterSnapshot } from "../../src/postgres/cluster_handover.ts";
import {
  type MaintenanceSession,
  maintenanceSession,
  MaintenanceSessionClosedError,
} from "../../src/postgres/maintenance_session.ts";
import { applySpec, SpecApplyError } from "../../src/postgres/spec_apply.ts";
import { type LocalPostgres, startLocalPostgres } from "../_support/local_postgres.ts";
import { eventually, query } from "./_helpers.ts";

const APPLICATION_NAME = "maintenance_session_test";

/** The pids of the backends named {@link APPLICATION_NAME}. */
async function sessionPids(server: LocalPostgres): Promise<number[]> {
  const rows = await query<{ pid: number }>(
    server.connstr,
    "SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid",
    [APPLICATION_NAME],
  );
  return rows.map((row) => row.pid);
}

function backendPid(session: MaintenanceSession): Promise<number> {
  return session.use(async (client) => {
    const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    return rows[0].pid;
  });
}

async function terminate(server: LocalPostgres, pid: number): Promise<void> {
  await query(server.connstr, "SELECT pg_terminate_backend($1)", [pid]);
}

function open(server: LocalPostgres): MaintenanceSession {
  return maintenanceSession(server.connstr, { applicationName: APPLICATION_NAME });
}

Deno.test("maintenance session", async (t) => {
  await using server = await startLocalPostgres();

  await t.step("opens on first use and is reused", async () => {
    await using session = open(server);
    assert.deepEqual(await sessionPids(server), [], "nothing opened before the first use");
    const first = await backendPid(session);
    assert.equal(await backendPid(session), first);
    assert.deepEqual(await sessionPids(server), [first]);
  });

  await t.step("closing leaves no backend, and later uses are refused", async () => {
    const session = open(server);
    await backendPid(session);
    await session.close();
    await eventually(async () => (await sessionPids(server)).length === 0, "the backend ends");
    await assert.rejects(backendPid(session), MaintenanceSessionClosedError);
  });

  await t.step("a terminated backend is replaced by the next use", async () => {
    await using session = open(server);
    const first = await backendPid(session);
    await terminate(server, first);
    await eventually(async () => !(await sessionPids(server)).includes(first), "it is gone");
    const second = await backendPid(session);
    assert.notEqual(second, first);
    assert.deepEqual(await sessionPids(server), [second]);
  });

  await t.step(
    "a use right after the termination, before the driver saw it, reconnects",
    async () => {
      await using session = open(server);
      for (let round = 0; round < 5; round++) {
        const before = await backendPid(session);
        await terminate(server, before);
        assert.notEqual(await backendPid(session), before);
      }
    },
  );

  await t.step("reset ends the connection; the next use connects again", async () => {
    await using session = open(server);
    const first = await backendPid(session);
    await session.reset();
    await eventually(async () => (await sessionPids(server)).length === 0, "the backend ends");
    assert.notEqual(await backendPid(session), first);
  });

  await t.step("settings a use changed are back to the session's own at the next use", async () => {
    await using session = open(server);
    const settings = (client: pg.Client) =>
      client.query<{ role: string; path: string; timeout: string; ddl: string }>(
        `SELECT current_user AS role, current_setting('search_path') AS path,
                current_setting('statement_timeout') AS timeout,
                current_setting('neon.forward_ddl') AS ddl`,
      ).then((result) => result.rows[0]);
    const initial = await session.use(settings);
    assert.deepEqual(initial, { role: "cloud_admin", path: "''", timeout: "0", ddl: "false" });
    await query(server.connstr, "CREATE ROLE maintenance_other NOLOGIN");
    const pid = await backendPid(session);
    await session.use(async (client) => {
      await client.query("SET ROLE maintenance_other");
      await client.query("SET search_path = public");
      await client.query("SET statement_timeout = 5000");
      await client.query("SET neon.forward_ddl = true");
    });
    assert.deepEqual(await session.use(settings), initial);
    assert.equal(await backendPid(session), pid, "the same session, reset");
  });

  await t.step("a failing use passes its error on and ends the session", async () => {
    await using session = open(server);
    const first = await backendPid(session);
    await assert.rejects(
      session.use((client) => client.query("SELECT * FROM no_such_table")),
      /relation "no_such_table" does not exist/,
    );
    await eventually(async () => !(await sessionPids(server)).includes(first), "it is ended");
    assert.notEqual(await backendPid(session), first);
  });

  await t.step("a use that leaves a transaction open ends the session", async () => {
    await using session = open(server);
    const first = await backendPid(session);
    await session.use((client) => client.query("BEGIN"));
    const status = await session.use((client) => Promise.resolve(client.getTransactionStatus()));
    assert.equal(status, "I");
    assert.notEqual(await backendPid(session), first);
  });

  await t.step("uses run one at a time, in call order", async () => {
    await using session = open(server);
    let running = 0;
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3].map((n) =>
      session.use(async (client) => {
        running++;
        assert.equal(running, 1, "no other use runs");
        await client.query("SELECT pg_sleep(0.01)");
        order.push(n);
        running--;
      })
    ));
    assert.deepEqual(order, [0, 1, 2, 3]);
  });

  await t.step("a failed connection is reported with the given message", async () => {
    const url = new URL(server.connstr);
    url.port = String(closedPort());
    await using session = maintenanceSession(url.href, {
      applicationName: APPLICATION_NAME,
      connectError: "Failed to connect to the database",
    });
    await assert.rejects(backendPid(session), /^Error: Failed to connect to the database$/);
  });

  await t.step(
    "the apply's cluster-wide part runs on it; a failed statement is reported",
    async () => {
      await using session = open(server);
      const pid = await backendPid(session);
      const spec = (roles: unknown[]) =>
        computeSpecSchema.parse({
          format_version: 1,
          suspend_timeout_seconds: 0,
          cluster: { roles, databases: [] },
        });
      const apply = (roles: unknown[]) =>
        applySpec(server.connstr, spec(roles), {
          privilegedRoleName: "neon_superuser",
          concurrency: 1,
          systemSession: session.use,
          log: { debug() {}, info() {}, warn() {}, error() {} },
        });
      const applied = await apply([{
        name: "maintained",
        encrypted_password: null,
        options: null,
      }]);
      assert.equal(applied.plan.steps.some((step) => step.sql.includes("maintained")), true);
      assert.equal(await backendPid(session), pid, "applied on the kept session");
      const rows = await query(
        server.connstr,
        "SELECT 1 FROM pg_roles WHERE rolname = 'maintained'",
      );
      assert.equal(rows.length, 1);

      const never = { name: "VALID UNTIL", value: "never ever", vartype: "string" };
      await assert.rejects(
        apply([{ name: "refused", encrypted_password: null, options: [never] }]),
        (error) => error instanceof SpecApplyError && /never ever/.test(error.message),
      );
      assert.notEqual(await backendPid(session), pid, "the failed apply ended the session");
    },
  );
});

Deno.test("a cluster snapshot is handed over once, and only while nothing has committed", async () => {
  await using server = await startLocalPostgres();
  await using session = open(server);
  await session.use(async (client) => {
    const offered = await readClusterSnapshot(client, {}, "offer");
    assert.equal(await readClusterSnapshot(client, {}, "accept"), offered, "taken as it is");
    assert.notEqual(await readClusterSnapshot(client, {}, "accept"), offered, "taken once");

    const other = await readClusterSnapshot(client, { timelineId: "a".repeat(32) }, "offer");
    assert.notEqual(await readClusterSnapshot(client, {}, "accept"), other, "another timeline");

    await readClusterSnapshot(client, {}, "offer");
    await query(server.connstr, "CREATE ROLE handed_over");
    const fresh = await readClusterSnapshot(client, {}, "accept");
    assert.ok(fresh.roles.has("handed_over"), "read again after a commit");
  });
});

/** A loopback port nothing listens on (it was free a moment ago). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
