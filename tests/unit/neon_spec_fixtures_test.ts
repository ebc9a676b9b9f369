/**
 * Neon's own `cluster_spec.json` fixtures (`fixtures/specs/neon/`, see its
 * README) parse the way Neon's unit tests expect: the compute_api one as a
 * valid spec (defaults, unknown fields and features, the option and settings
 * rendering of `pg_helpers_tests.rs`), the compute_tools one, whose
 * `neon.safekeepers` setting names a safekeeper twice, refused by `parseSpec`.
 */

import assert from "node:assert/strict";
import { parseComputeSpecJson, parseSpec, SpecError } from "../../src/api/parsed_spec.ts";
import { computeSpecSchema } from "../../src/api/spec.ts";
import { databaseOptionsSql, roleOptionsSql, settingsBlock } from "../../src/postgres/sql_quote.ts";

const NEON = new URL("../../fixtures/specs/neon/", import.meta.url);

function readFixture(name: string): Record<string, unknown> {
  return JSON.parse(Deno.readTextFileSync(new URL(name, NEON)));
}

const computeApi = () => readFixture("compute_api_cluster_spec.json");
const computeTools = () => readFixture("compute_tools_cluster_spec.json");

Deno.test("compute_api cluster_spec.json: parse_spec_file (features [], concurrency 1)", () => {
  const result = computeSpecSchema.safeParse(computeApi());
  assert.ok(result.success, result.success ? "" : result.error.message);
  const spec = result.data;
  assert.deepEqual(spec.features, []);
  assert.equal(spec.reconfigure_concurrency, 1);
  assert.equal(spec.mode, "Primary");
  assert.equal(spec.suspend_timeout_seconds, 3600);
  assert.equal(spec.operation_uuid, "0f657b36-4b0f-4a2d-9c2e-1dcd615e7d8b");
  assert.ok(!("timestamp" in spec), "unknown keys are dropped");

  assert.deepEqual(spec.cluster.roles.map((role) => role.name), [
    "postgres",
    "alexk",
    'zenith "new"',
    "zen",
    '"name";\\n select 1;',
    "MyRole",
  ]);
  assert.deepEqual(
    spec.cluster.databases.map((database) => `${database.name}:${database.owner}`),
    ["DB2:alexk", "zenith:MyRole", "zen:zen"],
  );
  assert.equal(spec.cluster.settings?.length, 25);
  assert.deepEqual(spec.delta_operations?.map((op) => op.action), [
    "delete_db",
    "rename_db",
    "delete_role",
    "rename_role",
  ]);
  assert.deepEqual(spec.remote_extensions?.public_extensions, ["postgis"]);
  assert.deepEqual(spec.remote_extensions?.custom_extensions, []);
  assert.deepEqual(spec.pgbouncer_settings, { default_pool_size: "42", pool_mode: "session" });
});

Deno.test("compute_api cluster_spec.json: the derived ParsedSpec comes from the settings", () => {
  const parsed = parseSpec(parseComputeSpecJson(computeApi()));
  assert.equal(parsed.tenantId, "b0554b632bd4d547a63b86c3630317e8");
  assert.equal(parsed.timelineId, "2414a61ffc94e428f14b5758fe308e13");
  assert.deepEqual(parsed.safekeeperConnstrings, [
    "127.0.0.1:6502",
    "127.0.0.1:6503",
    "127.0.0.1:6501",
  ]);
  assert.deepEqual(Object.keys(parsed.pageserverConnInfo.shards), ["0000"]);
});

Deno.test("compute_api cluster_spec.json: parse_unknown_fields", () => {
  const spec = parseComputeSpecJson({ ...computeApi(), unknown_field_123123123: "hello" });
  assert.ok(!("unknown_field_123123123" in spec));
});

Deno.test("compute_api cluster_spec.json: parse_unknown_features and parse_known_features", () => {
  const unknown = parseComputeSpecJson({
    ...computeApi(),
    features: ["foo_bar_feature", "baz_feature"],
  });
  assert.deepEqual(unknown.features, ["unknown_feature", "unknown_feature"]);
  const known = parseComputeSpecJson({
    ...computeApi(),
    features: ["activity_monitor_experimental"],
  });
  assert.deepEqual(known.features, ["activity_monitor_experimental"]);
});

Deno.test("compute_api cluster_spec.json: params_serialize", () => {
  const spec = parseComputeSpecJson(computeApi());
  assert.equal(
    databaseOptionsSql(spec.cluster.databases[0]),
    `LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0 OWNER "alexk"`,
  );
  assert.equal(
    roleOptionsSql(spec.cluster.roles[0]),
    " LOGIN PASSWORD 'md56b1d16b78004bbd51fa06af9eda75972'",
  );
});

Deno.test("compute_api cluster_spec.json: settings_serialize", () => {
  const spec = parseComputeSpecJson(computeApi());
  assert.equal(
    settingsBlock(spec.cluster.settings),
    `fsync = off
wal_level = logical
hot_standby = on
autoprewarm = off
offload_lfc_interval_seconds = 20
neon.safekeepers = '127.0.0.1:6502,127.0.0.1:6503,127.0.0.1:6501'
wal_log_hints = on
log_connections = on
shared_buffers = 32768
port = 55432
max_connections = 100
max_wal_senders = 10
listen_addresses = '0.0.0.0'
wal_sender_timeout = 0
password_encryption = md5
maintenance_work_mem = 65536
max_parallel_workers = 8
max_worker_processes = 8
neon.tenant_id = 'b0554b632bd4d547a63b86c3630317e8'
max_replication_slots = 10
neon.timeline_id = '2414a61ffc94e428f14b5758fe308e13'
shared_preload_libraries = 'neon'
synchronous_standby_names = 'walproposer'
neon.pageserver_connstring = 'host=127.0.0.1 port=6400'
test.escaping = 'here''s a backslash \\\\ and a quote '' and a double-quote " hooray'
`,
  );
});

Deno.test("compute_tools cluster_spec.json: duplicate_safekeeper_connstring", () => {
  const spec = parseComputeSpecJson(computeTools());
  assert.equal(spec.cluster.settings?.length, 24);
  assert.throws(
    () => parseSpec(spec),
    (error: unknown) =>
      error instanceof SpecError &&
      error.message.startsWith("duplicate entry in safekeeper_connstrings:"),
  );
});
