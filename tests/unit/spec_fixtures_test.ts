import assert from "node:assert/strict";
import {
  parseComputeSpecJson,
  parseSpec,
  SpecError,
  staticLsn,
} from "../../src/api/parsed_spec.ts";
import { clusterSchema, computeSpecSchema } from "../../src/api/spec.ts";

const SPECS = new URL("../../fixtures/specs/", import.meta.url);
const VALID = ["full", "minimal_primary", "static", "replica", "legacy_settings"];

function readJson(url: URL): unknown {
  return JSON.parse(Deno.readTextFileSync(url));
}

function readSpec(name: string): unknown {
  return readJson(new URL(`${name}.json`, SPECS));
}

for (const name of VALID) {
  Deno.test(`${name}.json parses with computeSpecSchema and parseSpec`, () => {
    const result = computeSpecSchema.safeParse(readSpec(name));
    assert.ok(result.success, result.success ? "" : result.error.message);
    parseSpec(result.data);
  });

  Deno.test(`${name}.json: parse → JSON.stringify → parse is stable`, () => {
    const once = parseComputeSpecJson(readSpec(name));
    const twice = parseComputeSpecJson(JSON.parse(JSON.stringify(once)));
    assert.deepEqual(twice, once);
    assert.equal(JSON.stringify(twice), JSON.stringify(once));
    assert.deepEqual(parseSpec(twice), parseSpec(once));
  });
}

Deno.test("full.json sets every ComputeSpec and Cluster field", () => {
  const raw = readSpec("full") as Record<string, Record<string, unknown>>;
  for (const key of Object.keys(computeSpecSchema.shape)) {
    assert.ok(key in raw && raw[key] !== null, `full.json lacks ${key}`);
  }
  for (const key of Object.keys(clusterSchema.shape)) {
    assert.ok(key in raw.cluster && raw.cluster[key] !== null, `full.json cluster lacks ${key}`);
  }
});

Deno.test("full.json: unknown keys dropped, unknown features mapped, derived values", () => {
  const spec = parseComputeSpecJson(readSpec("full"));
  assert.ok(!("timestamp" in spec));
  assert.deepEqual(spec.features, [
    "activity_monitor_experimental",
    "tls_experimental",
    "unknown_feature",
  ]);
  assert.equal(spec.tenant_id, "5d3f0a2b9c8e7d6f1a2b3c4d5e6f7a8b");
  assert.deepEqual(spec.delta_operations?.map((op) => op.action), [
    "rename_role",
    "delete_db",
    "rename_db",
    "delete_role",
    "frobnicate_db",
  ]);
  assert.deepEqual(Object.keys(spec.pgbouncer_settings ?? {}), [
    "default_pool_size",
    "pool_mode",
    "max_client_conn",
  ]);
  assert.ok(spec.cluster.roles.some((role) => role.name === 'weird "quoted" role'));
  assert.ok(spec.cluster.roles.some((role) => role.name === "back\\slash"));
  const parsed = parseSpec(spec);
  assert.deepEqual(parsed.safekeeperConnstrings, [
    "127.0.0.1:65001",
    "127.0.0.1:65002",
    "127.0.0.1:65003",
  ]);
  assert.equal(parsed.endpointStorageAddr, "127.0.0.1:9993");
  assert.equal(parsed.pageserverConnInfo.shards["0000"].pageservers.length, 2);
});

Deno.test("minimal_primary.json gets the reference defaults", () => {
  const spec = parseComputeSpecJson(readSpec("minimal_primary"));
  assert.deepEqual(spec.features, []);
  assert.equal(spec.reconfigure_concurrency, 1);
  assert.equal(spec.mode, "Primary");
  assert.equal(spec.audit_log_level, "Disabled");
  assert.equal(spec.skip_pg_catalog_updates, false);
  assert.equal(spec.drop_subscriptions_before_start, false);
  assert.equal(spec.autoprewarm, false);
  assert.equal(spec.pageserver_connection_info?.prefer_protocol, "libpq");
});

Deno.test("static.json: pinned LSN, legacy sharded connstring, no safekeepers", () => {
  const parsed = parseSpec(parseComputeSpecJson(readSpec("static")));
  assert.equal(staticLsn(parsed.spec), 0x169ad58n);
  assert.deepEqual(parsed.safekeeperConnstrings, []);
  assert.equal(parsed.pageserverConnInfo.shard_count, 2);
  assert.equal(parsed.pageserverConnInfo.stripe_size, 2048);
  assert.deepEqual(Object.keys(parsed.pageserverConnInfo.shards), ["0002", "0102"]);
});

Deno.test("replica.json: two shards with gRPC preferred, no safekeepers", () => {
  const parsed = parseSpec(parseComputeSpecJson(readSpec("replica")));
  assert.equal(parsed.spec.mode, "Replica");
  assert.deepEqual(parsed.safekeeperConnstrings, []);
  assert.equal(parsed.pageserverConnInfo.prefer_protocol, "grpc");
});

Deno.test("legacy_settings.json: storage info comes from the neon.* settings", () => {
  const parsed = parseSpec(parseComputeSpecJson(readSpec("legacy_settings")));
  assert.equal(parsed.spec.tenant_id, undefined);
  assert.equal(parsed.tenantId, "0a1b2c3d4e5f60718293a4b5c6d7e8f9");
  assert.equal(parsed.timelineId, "f9e8d7c6b5a40392817160f5e4d3c2b1");
  assert.deepEqual(parsed.safekeeperConnstrings, [
    "127.0.0.1:65001",
    "127.0.0.1:65002",
    "127.0.0.1:65003",
  ]);
  assert.equal(parsed.pageserverConnInfo.shard_count, 0);
  assert.equal(
    parsed.pageserverConnInfo.shards["0000"].pageservers[0].libpq_url,
    "host=127.0.0.1 port=64000",
  );
  assert.equal(parsed.endpointStorageAddr, "127.0.0.1:9993");
  assert.equal(parsed.endpointStorageToken, "legacy-token");
});

interface InvalidCase {
  file: string;
  error: string;
}

const INVALID = new URL("invalid/", SPECS);
const cases = readJson(new URL("cases.json", INVALID)) as InvalidCase[];

Deno.test("cases.json lists every invalid fixture exactly once", () => {
  const files = [...Deno.readDirSync(INVALID)]
    .map((entry) => entry.name)
    .filter((name) => name.endsWith(".json") && name !== "cases.json")
    .sort();
  assert.deepEqual(cases.map((c) => c.file).sort(), files);
});

for (const { file, error } of cases) {
  Deno.test(`invalid/${file} fails with: ${error}`, () => {
    const json = readJson(new URL(file, INVALID));
    assert.throws(
      () => parseSpec(parseComputeSpecJson(json)),
      (thrown) => {
        assert.ok(thrown instanceof SpecError, `not a SpecError: ${thrown}`);
        assert.equal(thrown.message, error);
        return true;
      },
    );
  });
}
