import assert from "node:assert/strict";
import {
  connInfoFromConnstring,
  parseComputeSpecJson,
  parseSpec,
  samePageserverConnInfo,
  shardLibpqUrl,
  SpecError,
  staticLsn,
} from "../../src/api/parsed_spec.ts";
import { computeModeName } from "../../src/api/spec.ts";

const TENANT = "b0554b632bd4d547a63b86c3630317e8";
const TIMELINE = "2414a61ffc94e428f14b5758fe308e13";

function spec(overrides: Record<string, unknown> = {}, settings?: unknown[]) {
  return parseComputeSpecJson({
    format_version: 1.0,
    suspend_timeout_seconds: -1,
    cluster: { roles: [], databases: [], settings },
    tenant_id: TENANT,
    timeline_id: TIMELINE,
    pageserver_connstring: "postgresql://no_user@127.0.0.1:6400",
    safekeeper_connstrings: ["127.0.0.1:6501", "127.0.0.1:6502", "127.0.0.1:6503"],
    ...overrides,
  });
}

const setting = (name: string, value: string) => ({ name, value, vartype: "string" });

Deno.test("defaults: features, concurrency, mode, audit", () => {
  const parsed = spec();
  assert.deepEqual(parsed.features, []);
  assert.equal(parsed.reconfigure_concurrency, 1);
  assert.equal(parsed.mode, "Primary");
  assert.equal(parsed.audit_log_level, "Disabled");
  assert.equal(parsed.skip_pg_catalog_updates, false);
});

Deno.test("unknown keys are ignored and unknown features become unknown_feature", () => {
  const parsed = spec({
    timestamp: "2021-05-23T18:25:43.511Z",
    features: ["foo", "tls_experimental"],
  });
  assert.deepEqual(parsed.features, ["unknown_feature", "tls_experimental"]);
  assert.equal("timestamp" in parsed, false);
});

Deno.test("required fields and bad values are named in the error", () => {
  assert.throws(
    () => parseComputeSpecJson({ format_version: 1, cluster: { roles: [], databases: [] } }),
    /suspend_timeout_seconds/,
  );
  assert.throws(
    () => spec({ offload_lfc_interval_seconds: 0 }),
    /offload_lfc_interval_seconds: must be non-zero/,
  );
  assert.throws(() => spec({ mode: { Static: "nope" } }), /mode/);
  assert.throws(() => spec({ tenant_id: "abc" }), /tenant_id: invalid tenant id/);
});

Deno.test("mode forms", () => {
  assert.equal(computeModeName(spec({ mode: "Replica" }).mode), "replica");
  const staticSpec = spec({ mode: { Static: "0/169AD58" } });
  assert.equal(computeModeName(staticSpec.mode), "static");
  assert.equal(staticLsn(staticSpec), 0x169ad58n);
});

Deno.test("parseSpec takes storage info from the fields", () => {
  const parsed = parseSpec(spec());
  assert.equal(parsed.tenantId, TENANT);
  assert.equal(parsed.timelineId, TIMELINE);
  assert.equal(parsed.pageserverConnInfo.shard_count, 0);
  assert.equal(shardLibpqUrl(parsed.pageserverConnInfo, 0), "postgresql://no_user@127.0.0.1:6400");
  assert.deepEqual(parsed.safekeeperConnstrings, [
    "127.0.0.1:6501",
    "127.0.0.1:6502",
    "127.0.0.1:6503",
  ]);
});

Deno.test("parseSpec falls back to neon.* settings", () => {
  const parsed = parseSpec(spec(
    { tenant_id: null, timeline_id: null, pageserver_connstring: null, safekeeper_connstrings: [] },
    [
      setting("neon.tenant_id", TENANT.toUpperCase()),
      setting("neon.timeline_id", TIMELINE),
      setting("neon.pageserver_connstring", "host=127.0.0.1 port=6400"),
      setting("neon.safekeepers", "127.0.0.1:6502,127.0.0.1:6503,127.0.0.1:6501"),
    ],
  ));
  assert.equal(parsed.tenantId, TENANT);
  assert.equal(shardLibpqUrl(parsed.pageserverConnInfo, 0), "host=127.0.0.1 port=6400");
  assert.deepEqual(parsed.safekeeperConnstrings, [
    "127.0.0.1:6502",
    "127.0.0.1:6503",
    "127.0.0.1:6501",
  ]);
});

Deno.test("parseSpec errors carry the reference messages", () => {
  const cases: [Record<string, unknown>, unknown[] | undefined, string][] = [
    [
      { pageserver_connstring: null },
      undefined,
      "pageserver connection information should be provided",
    ],
    [{ safekeeper_connstrings: [] }, undefined, "safekeeper connstrings should be provided"],
    [{ tenant_id: null }, undefined, "tenant id should be provided"],
    [{ timeline_id: null }, undefined, "timeline id should be provided"],
    [{ tenant_id: null }, [setting("neon.tenant_id", "xyz")], "invalid tenant id"],
    [{ timeline_id: null }, [setting("neon.timeline_id", "12")], "invalid timeline id"],
    [
      { safekeeper_connstrings: [] },
      [setting("neon.safekeepers", "")],
      "safekeeper_connstrings is empty",
    ],
    [
      { safekeeper_connstrings: ["a:1", "b:2", "a:1"] },
      undefined,
      "duplicate entry in safekeeper_connstrings: a:1!",
    ],
  ];
  for (const [overrides, settings, message] of cases) {
    assert.throws(() => parseSpec(spec(overrides, settings)), (error: unknown) => {
      assert.ok(error instanceof SpecError);
      assert.equal(error.message, message);
      return true;
    });
  }
});

Deno.test("non-primary computes need no safekeepers", () => {
  const parsed = parseSpec(spec({ mode: "Replica", safekeeper_connstrings: [] }));
  assert.deepEqual(parsed.safekeeperConnstrings, []);
});

Deno.test("legacy connstrings become shards", () => {
  const two = connInfoFromConnstring("host=a,host=b", 8);
  assert.equal(two.shard_count, 2);
  assert.deepEqual(Object.keys(two.shards), ["0002", "0102"]);
  assert.equal(shardLibpqUrl(two, 1), "host=b");
  assert.throws(
    () => connInfoFromConnstring("host=a,host=b", undefined),
    /2 shards but no stripe_size/,
  );
  assert.throws(() => shardLibpqUrl(two, 2), /shard 0202 missing/);
});

Deno.test("samePageserverConnInfo ignores key order and nulls", () => {
  const a = connInfoFromConnstring("postgresql://no_user@127.0.0.1:1", undefined);
  const b = parseComputeSpecJson({
    format_version: 1,
    suspend_timeout_seconds: 0,
    cluster: { roles: [], databases: [] },
    pageserver_connection_info: {
      prefer_protocol: "libpq",
      shards: { "0000": { pageservers: [{ libpq_url: "postgresql://no_user@127.0.0.1:1" }] } },
      shard_count: 0,
    },
  }).pageserver_connection_info!;
  assert.ok(samePageserverConnInfo(a, b));
  assert.ok(
    !samePageserverConnInfo(
      a,
      connInfoFromConnstring("postgresql://no_user@127.0.0.1:2", undefined),
    ),
  );
});

Deno.test("a shard map without every shard, or a shard without a pageserver, is refused at parse", () => {
  const info = (shards: Record<string, unknown>, shardCount = 0) =>
    spec({
      pageserver_connstring: undefined,
      pageserver_connection_info: { prefer_protocol: "libpq", shard_count: shardCount, shards },
    });
  const pageserver = { pageservers: [{ libpq_url: "postgresql://no_user@127.0.0.1:1" }] };
  assert.equal(parseSpec(info({ "0000": pageserver })).pageserverConnInfo.shard_count, 0);
  assert.throws(
    () => parseSpec(info({ "0100": pageserver })),
    new SpecError("shard 0000 missing from pageserver_connection_info shard map"),
  );
  assert.throws(
    () => parseSpec(info({ "0000": { pageservers: [] } })),
    new SpecError("shard 0000 has no pageservers"),
  );
  assert.throws(
    () => parseSpec(info({ "0002": pageserver }, 2)),
    new SpecError("shard 0102 missing from pageserver_connection_info shard map"),
  );
});
