/**
 * `POST /configure` on a running compute: switching pageservers without a
 * restart, applying role/database/password/setting changes (and issuing no DDL
 * when nothing changed), and rejecting an invalid spec without a status change.
 */

import assert from "node:assert/strict";
import {
  type JsonObject,
  md5Password,
  SPEC_DATABASE,
  SPEC_ROLE,
  specPageserver,
  startCluster,
  withPageserver,
} from "../../harness/cluster.ts";
import { loggedDdl, logThroughMarker, query, show } from "./_helpers.ts";

const COMPUTE_CTL_CONFIG = { jwks: { keys: [] } };

Deno.test("change pageserver: /configure with the other pageserver, no restart", async () => {
  await using cluster = await startCluster({ pageservers: 2, computes: [{ id: "switch" }] });
  const compute = cluster.compute("switch");
  const [first, second] = cluster.pageservers;
  assert.equal(await show(compute.postgresUrl, "neon.pageserver_connstring"), first.libpqUrl);
  const postmaster = await compute.postmasterPid();
  const [{ started }] = await query<{ started: Date }>(
    compute.postgresUrl,
    "SELECT pg_postmaster_start_time() AS started",
  );

  const spec = withPageserver(compute.spec, specPageserver(second));
  const result = await compute.configure({ spec, compute_ctl_config: COMPUTE_CTL_CONFIG });
  assert.equal(result.status, 200, result.text);
  assert.equal(result.body.status, "running");

  assert.equal(await show(compute.postgresUrl, "neon.pageserver_connstring"), second.libpqUrl);
  assert.equal(await compute.postmasterPid(), postmaster, "same postmaster");
  const [{ started: after }] = await query<{ started: Date }>(
    compute.postgresUrl,
    "SELECT pg_postmaster_start_time() AS started",
  );
  assert.equal(after.getTime(), started.getTime());
});

Deno.test("spec changes are applied, and an identical /configure issues no DDL", async () => {
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "respec", postgresqlConf: ["log_statement='all'"] }],
  });
  const compute = cluster.compute("respec");
  const url = compute.postgresUrl;
  const configure = async (spec: JsonObject) => {
    const result = await compute.configure({ spec, compute_ctl_config: COMPUTE_CTL_CONFIG });
    assert.equal(result.status, 200, result.text);
    assert.equal(result.body.status, "running");
  };
  const cluster0 = compute.spec.cluster as JsonObject;
  const role = (name: string, password: string) => ({
    name,
    encrypted_password: md5Password(password, name),
    options: null,
  });
  const database = (name: string, owner: string) => ({ name, owner, options: null });
  const respec = (changes: JsonObject, delta: JsonObject[] | null = null): JsonObject => ({
    ...compute.spec,
    cluster: { ...cluster0, ...changes },
    delta_operations: delta,
  });
  const roles = async () =>
    (await query<{ rolname: string }>(
      url,
      "SELECT rolname FROM pg_roles WHERE rolname IN ('alice', 'bob', 'carol') ORDER BY 1",
    )).map((row) => row.rolname);
  const databases = async () =>
    (await query<{ datname: string; owner: string }>(
      url,
      "SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database " +
        "WHERE datname NOT IN ('postgres', 'template0', 'template1') ORDER BY 1",
    )).map((row) => `${row.datname}:${row.owner}`);

  // Add a role and a database, change alice's password and a setting.
  await configure(respec({
    roles: [role(SPEC_ROLE.name, "new-password"), role("bob", "bob-password")],
    databases: [database(SPEC_DATABASE, SPEC_ROLE.name), database("reports", "bob")],
    settings: [{ name: "work_mem", value: "12MB", vartype: "string" }],
  }));
  assert.deepEqual(await roles(), ["alice", "bob"]);
  assert.deepEqual(await databases(), ["appdb:alice", "reports:bob"]);
  const [{ rolpassword }] = await query<{ rolpassword: string }>(
    url,
    "SELECT rolpassword FROM pg_authid WHERE rolname = 'alice'",
  );
  assert.equal(rolpassword, `md5${md5Password("new-password", SPEC_ROLE.name)}`);
  assert.equal(await show(url, "work_mem"), "12MB");

  // Rename the role and the database.
  await configure(respec({
    roles: [role(SPEC_ROLE.name, "new-password"), role("carol", "bob-password")],
    databases: [database(SPEC_DATABASE, SPEC_ROLE.name), database("archive", "carol")],
    settings: [{ name: "work_mem", value: "12MB", vartype: "string" }],
  }, [
    { action: "rename_role", name: "bob", new_name: "carol" },
    { action: "rename_db", name: "reports", new_name: "archive" },
  ]));
  assert.deepEqual(await roles(), ["alice", "carol"]);
  assert.deepEqual(await databases(), ["appdb:alice", "archive:carol"]);

  // Drop them.
  const final = respec({
    roles: [role(SPEC_ROLE.name, "new-password")],
    databases: [database(SPEC_DATABASE, SPEC_ROLE.name)],
    settings: [{ name: "work_mem", value: "12MB", vartype: "string" }],
  });
  await configure({
    ...final,
    delta_operations: [
      { action: "delete_db", name: "archive" },
      { action: "delete_role", name: "carol" },
    ],
  });
  assert.deepEqual(await roles(), ["alice"]);
  assert.deepEqual(await databases(), ["appdb:alice"]);

  // The same spec twice: the second /configure must not touch the catalog.
  await configure(final);
  const before = loggedDdl(await logThroughMarker(compute)).length;
  await configure(final);
  const after = loggedDdl(await logThroughMarker(compute));
  assert.deepEqual(after.slice(before), [], "no DDL for an unchanged spec");
  assert.ok(
    before > 0,
    "log_statement output reaches compute.log (the check above means something)",
  );
});

Deno.test("a spec of the wrong shape is 422, an invalid one 400; the status is unchanged", async () => {
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "strict" }] });
  const compute = cluster.compute("strict");

  // Wrong shape (as Rust's serde rejects it): 422 naming the path of the missing field.
  const missingCluster = await compute.configure({
    spec: { format_version: 1.0, suspend_timeout_seconds: -1 },
    compute_ctl_config: COMPUTE_CTL_CONFIG,
  });
  assert.equal(missingCluster.status, 422, missingCluster.text);
  assert.match(
    missingCluster.body.error,
    /^failed to deserialize the json body into the target type: .*spec\.cluster/,
  );

  // Parses, but fails ParsedSpec validation: 400 with the reference's message.

  const duplicateSafekeepers = await compute.configure({
    spec: {
      ...compute.spec,
      safekeeper_connstrings: [cluster.safekeepers[0].address, cluster.safekeepers[0].address],
    },
    compute_ctl_config: COMPUTE_CTL_CONFIG,
  });
  assert.equal(duplicateSafekeepers.status, 400, duplicateSafekeepers.text);
  assert.match(duplicateSafekeepers.body.error, /duplicate entry in safekeeper_connstrings/);

  const notJson = await compute.request("POST", "/configure", { body: "{not json" });
  assert.equal(notJson.status, 400, notJson.text);

  const status = await compute.status();
  assert.equal(status.status, "running");
  assert.equal(status.error, null);
});
