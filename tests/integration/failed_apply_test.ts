/**
 * A spec that passes validation but that Postgres refuses while it is being
 * applied, on a real compute: the compute ends `failed` with the error in
 * `/status`, Postgres keeps running on the configuration it had (the same
 * `postgresql.conf` bytes, `SHOW` the old values, the same postmaster, the
 * activity monitor still at work), nothing of what failed is in the catalog,
 * and a later valid `/configure`, or a `/refresh_configuration` that brings a
 * fixed spec from the control plane, returns it to `running` with the new
 * spec in force.
 */

import assert from "node:assert/strict";
import pg from "pg";
import {
  type ComputeHandle,
  type JsonObject,
  SPEC_DATABASE,
  SPEC_ROLE,
  startCluster,
} from "../../harness/cluster.ts";
import { catalogFingerprint, fingerprintChanges } from "../_support/bad_input_target.ts";
import { migrationsRecorded, RecoveryTally, respec } from "../_support/recovery_tally.ts";
import { scaled } from "../../harness/reliability/record.ts";
import { eventually, query, show } from "./_helpers.ts";

const COMPUTE_CTL_CONFIG = { jwks: { keys: [] } };

const role = (name: string, options: JsonObject[] | null = null) => ({
  name,
  encrypted_password: null,
  options,
});

/**
 * A database option Postgres refuses only when it runs `CREATE DATABASE` (the
 * admission checks cannot know which locales the server has).
 */
const badLocale = { name: "LOCALE", value: "no_such_locale", vartype: "string" };

const workMem = (value: string) => ({ name: "work_mem", value, vartype: "string" });

async function configure(compute: ComputeHandle, spec: JsonObject) {
  return await compute.configure({ spec, compute_ctl_config: COMPUTE_CTL_CONFIG });
}

async function roleNames(compute: ComputeHandle): Promise<string[]> {
  const rows = await query<{ rolname: string }>(
    compute.postgresUrl,
    "SELECT rolname FROM pg_roles WHERE rolname LIKE 'fa\\_%' ORDER BY 1",
  );
  return rows.map((row) => row.rolname);
}

async function databaseNames(compute: ComputeHandle): Promise<string[]> {
  const rows = await query<{ datname: string }>(
    compute.postgresUrl,
    "SELECT datname FROM pg_database WHERE datname LIKE 'fa\\_%' ORDER BY 1",
  );
  return rows.map((row) => row.datname);
}

/** Waits until a reload has taken `work_mem` to `value`, as `SHOW` and `pg_file_settings` agree. */
async function workMemBecomes(compute: ComputeHandle, value: string): Promise<void> {
  await eventually(
    async () => (await show(compute.postgresUrl, "work_mem")) === value,
    `work_mem = ${value}`,
  );
}

/**
 * After a failed apply: the status, Postgres up with the same postmaster and the
 * same `postgresql.conf` bytes, `work_mem` back at `previousWorkMem`, the catalog
 * as `before` (once the reload that put the old settings back is in).
 */
async function assertPreviousConfiguration(
  tally: RecoveryTally,
  compute: ComputeHandle,
  expected: { conf: Uint8Array; postmaster: number | undefined; workMem: string; error: RegExp },
  before: Awaited<ReturnType<typeof catalogFingerprint>>,
): Promise<void> {
  const status = await compute.status();
  if (status.status !== "failed" || !expected.error.test(status.error ?? "")) {
    tally.fail("status after the failed apply", JSON.stringify(status));
  }
  assert.deepEqual(
    await Deno.readFile(`${compute.pgdata}/postgresql.conf`),
    expected.conf,
    "postgresql.conf is the one Postgres ran before",
  );
  assert.equal(await compute.postmasterPid(), expected.postmaster, "the same postmaster runs");
  await workMemBecomes(compute, expected.workMem);
  let changes: string[] = [];
  await eventually(async () => {
    changes = fingerprintChanges(before, await catalogFingerprint(compute));
    return changes.length === 0;
  }, "catalog and settings as before").catch((error) => {
    throw new Error(`${error.message}: ${changes.join("; ")}`);
  });
}

/**
 * The activity monitor keeps working while `failed`: a user's session, held
 * open, moves `last_active` to its last query (the manager's own do not count).
 */
async function assertMonitorWatches(compute: ComputeHandle): Promise<void> {
  const session = new pg.Client({
    connectionString: compute.connectionUrl({
      password: SPEC_ROLE.password,
      database: SPEC_DATABASE,
    }),
  });
  session.on("error", () => {});
  await session.connect();
  try {
    const [{ at }] = (await session.query<{ at: Date }>("SELECT pg_catalog.now() AS at")).rows;
    await eventually(async () => {
      const lastActive = (await compute.status()).last_active;
      return lastActive !== null && new Date(lastActive).getTime() >= at.getTime();
    }, "last_active reaches the session's query while failed");
  } finally {
    await session.end();
  }
}

Deno.test("a spec Postgres refuses mid-apply: the previous configuration stays, /configure recovers", async () => {
  const tally = new RecoveryTally("failed apply, then /configure");
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "refused" }] });
  const compute = cluster.compute("refused");
  await migrationsRecorded(compute);

  const baseline = respec(compute, {
    roles: [...(compute.spec.cluster as JsonObject).roles as JsonObject[], role("fa_keeper")],
    settings: [workMem("8MB")],
  });
  const first = await configure(compute, baseline);
  tally.answer("baseline /configure", first.status === 200, first.text);
  await workMemBecomes(compute, "8MB");
  const conf = await Deno.readFile(`${compute.pgdata}/postgresql.conf`);
  const postmaster = await compute.postmasterPid();
  const before = await catalogFingerprint(compute);
  const baselineCluster = baseline.cluster as JsonObject;
  const baselineRoles = baselineCluster.roles as JsonObject[];

  // A database option Postgres refuses at run time: a locale the server does not have.
  const refusedDatabase = respec(compute, {
    roles: baselineRoles,
    databases: [...baselineCluster.databases as JsonObject[], {
      name: "fa_newdb",
      owner: "fa_keeper",
      options: [badLocale],
    }],
    settings: [workMem("16MB")],
  });
  const refused = await configure(compute, refusedDatabase);
  const refusedError = /failed to create database \\?"fa_newdb\\?": invalid locale name/;
  tally.answer(
    "/configure with a database Postgres refuses",
    refused.status === 500 && refusedError.test(refused.body?.error ?? ""),
    `${refused.status} ${refused.text}`,
  );
  await assertPreviousConfiguration(tally, compute, {
    conf,
    postmaster,
    workMem: "8MB",
    error: refusedError,
  }, before);
  assert.deepEqual(await roleNames(compute), ["fa_keeper"]);
  assert.deepEqual(await databaseNames(compute), []);

  await assertMonitorWatches(compute);

  // From failed, a setting value Postgres refuses is refused at the door: still failed, same conf.
  const badValue = await configure(
    compute,
    respec(compute, { ...baselineCluster, settings: [workMem("lots")] }),
  );
  tally.answer(
    "/configure from failed with a value Postgres refuses",
    badValue.status === 400 &&
      badValue.body?.error === 'settings[0].value: invalid value for parameter "work_mem": "lots"',
    `${badValue.status} ${badValue.text}`,
  );
  await assertPreviousConfiguration(tally, compute, {
    conf,
    postmaster,
    workMem: "8MB",
    error: refusedError,
  }, before);

  // A valid spec from failed: running, no error, and everything of it in force.
  const fixed = respec(compute, {
    roles: [
      ...baselineRoles,
      role("fa_newbie", [{ name: "VALID UNTIL", value: "infinity", vartype: "string" }]),
    ],
    databases: [...baselineCluster.databases as JsonObject[], {
      name: "fa_newdb",
      owner: "fa_newbie",
    }],
    settings: [workMem("16MB")],
  });
  const recovered = await configure(compute, fixed);
  const ok = tally.answer(
    "/configure from failed with a valid spec",
    recovered.status === 200 && recovered.body?.status === "running" &&
      recovered.body?.error === null,
    `${recovered.status} ${recovered.text}`,
  );
  if (!ok) tally.unusable("after a valid /configure", recovered.text);
  await workMemBecomes(compute, "16MB");
  assert.deepEqual(await roleNames(compute), ["fa_keeper", "fa_newbie"]);
  assert.deepEqual(await databaseNames(compute), ["fa_newdb"]);
  const [{ valid }] = await query<{ valid: string }>(
    compute.postgresUrl,
    "SELECT rolvaliduntil::text AS valid FROM pg_authid WHERE rolname = 'fa_newbie'",
  );
  assert.equal(valid, "infinity");

  // Fail and recover again and again: each failure leaves the configuration of the moment.
  const confNow = await Deno.readFile(`${compute.pgdata}/postgresql.conf`);
  for (let cycle = 0; cycle < scaled(3, 30); cycle++) {
    const fixedCluster = fixed.cluster as JsonObject;
    const failing = await configure(
      compute,
      respec(compute, {
        ...fixedCluster,
        databases: [...fixedCluster.databases as JsonObject[], {
          name: `fa_cycle_${cycle}`,
          owner: "fa_newbie",
          options: [badLocale],
        }],
        settings: [workMem(`${17 + cycle}MB`)],
      }),
    );
    tally.answer(`cycle ${cycle}: refused spec`, failing.status === 500, failing.text);
    const conf = await Deno.readFile(`${compute.pgdata}/postgresql.conf`);
    if (conf.length !== confNow.length || !conf.every((byte, i) => byte === confNow[i])) {
      tally.fail(`cycle ${cycle}`, "postgresql.conf not put back");
    }
    const again = await configure(compute, fixed);
    if (!tally.answer(`cycle ${cycle}: valid spec`, again.status === 200, again.text)) {
      tally.unusable(`cycle ${cycle}`, again.text);
    }
  }
  assert.deepEqual(await roleNames(compute), ["fa_keeper", "fa_newbie"]);
  await workMemBecomes(compute, "16MB");
  assert.equal(await compute.postmasterPid(), postmaster, "never restarted");
  await tally.finish();
});

Deno.test("a failure at the last phase, then a fixed spec from the control plane through /refresh_configuration", async () => {
  const tally = new RecoveryTally("failed apply, then /refresh_configuration");
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "refreshed" }] });
  const compute = cluster.compute("refreshed");
  await migrationsRecorded(compute);
  const generated = compute.spec.cluster as JsonObject;
  const url = compute.postgresUrl;

  // A role that owns a table in a database the spec does not know: DROP ROLE must fail.
  await query(url, "CREATE ROLE fa_holder LOGIN");
  await query(url, "CREATE DATABASE fa_other OWNER cloud_admin");
  const other = compute.connectionUrl({ user: "cloud_admin", database: "fa_other" });
  await query(other, "CREATE TABLE held (id int)");
  await query(other, "ALTER TABLE held OWNER TO fa_holder");
  const conf = await Deno.readFile(`${compute.pgdata}/postgresql.conf`);
  const postmaster = await compute.postmasterPid();
  const workMemBefore = await show(url, "work_mem");

  const withNewObjects = (extra: JsonObject) =>
    respec(compute, {
      roles: [...generated.roles as JsonObject[], role("fa_added")],
      databases: [...generated.databases as JsonObject[], { name: "fa_made", owner: "fa_added" }],
      settings: [workMem("24MB")],
    }, extra);
  const failing = withNewObjects({
    delta_operations: [{ action: "delete_role", name: "fa_holder" }],
  });
  const failed = await configure(compute, failing);
  tally.answer(
    "/configure whose DROP ROLE a non-spec object blocks",
    failed.status === 500 &&
      /DropRoles failed to drop role \\"fa_holder\\": role \\"fa_holder\\" cannot be dropped because some objects depend on it/
        .test(failed.body?.error ?? ""),
    `${failed.status} ${failed.text}`,
  );
  const status = await compute.status();
  if (status.status !== "failed" || !/DropRoles/.test(status.error ?? "")) {
    tally.fail("status after the failed apply", JSON.stringify(status));
  }
  assert.deepEqual(await Deno.readFile(`${compute.pgdata}/postgresql.conf`), conf);
  await workMemBecomes(compute, workMemBefore);
  // What the earlier phases did stays (each statement commits on its own); the role is still there.
  assert.deepEqual(await roleNames(compute), ["fa_added", "fa_holder"]);
  assert.deepEqual(await databaseNames(compute), ["fa_made", "fa_other"]);

  // The control plane's spec is fixed (no delete_role), and the refresh brings it.
  const fixed = withNewObjects({ delta_operations: null });
  await compute.updateConfig((config) => ({ ...config, spec: fixed }));
  const refresh = await compute.refreshConfiguration();
  tally.answer("/refresh_configuration from failed", refresh.status === 200, refresh.text);
  const after = await compute.waitForStatus("running", 30_000).catch(async (error) => {
    tally.unusable("after the refresh", String(error));
    await tally.finish();
    throw error;
  });
  tally.answer(
    "status after the refresh",
    after.status === "running" && after.error === null,
    JSON.stringify(after),
  );
  await workMemBecomes(compute, "24MB");
  assert.deepEqual(await roleNames(compute), ["fa_added", "fa_holder"]);
  assert.equal(await compute.postmasterPid(), postmaster, "never restarted");

  // And the compute takes /configure again.
  const again = await configure(compute, fixed);
  tally.answer("/configure after the refresh", again.status === 200, again.text);
  await tally.finish();
});
