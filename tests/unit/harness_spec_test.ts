/**
 * The specs the harness generates are ones the manager accepts (the product's
 * own schema and `parseSpec`), shaped like `neon_local`'s, and the helpers
 * tests use to change them behave as documented.
 */

import assert from "node:assert/strict";
import { computeConfigSchema } from "../../src/api/config.ts";
import { parseComputeSpecJson, parseSpec, shardLibpqUrl } from "../../src/api/parsed_spec.ts";
import {
  deepMerge,
  defaultComputeCtlConfig,
  generateComputeSpec,
  md5Password,
  randomHexId,
  type SpecInputs,
  withPageserver,
} from "../../harness/_compute_spec.ts";

const INPUTS: SpecInputs = {
  computeId: "compute-1",
  tenantId: "0123456789abcdef0123456789abcdef",
  timelineId: "fedcba9876543210fedcba9876543210",
  pgPort: 55432,
  socketDir: "/tmp/cluster/computes/compute-1",
  pageserver: { id: 1, libpqUrl: "postgresql://no_user@127.0.0.1:6400" },
  safekeepers: ["127.0.0.1:5454", "127.0.0.1:5455", "127.0.0.1:5456"],
};

Deno.test("a generated spec is a valid primary spec for the manager", () => {
  const json = generateComputeSpec(INPUTS);
  const parsed = parseSpec(parseComputeSpecJson(json));
  assert.equal(parsed.tenantId, INPUTS.tenantId);
  assert.equal(parsed.timelineId, INPUTS.timelineId);
  assert.deepEqual(parsed.safekeeperConnstrings, INPUTS.safekeepers);
  assert.equal(shardLibpqUrl(parsed.pageserverConnInfo, 0), INPUTS.pageserver.libpqUrl);
  assert.equal(parsed.spec.mode, "Primary");
  assert.equal(parsed.spec.suspend_timeout_seconds, -1);
  assert.equal(parsed.spec.format_version, 1);
  const config = computeConfigSchema.parse({
    spec: json,
    compute_ctl_config: defaultComputeCtlConfig(),
  });
  assert.equal(config.spec?.cluster.databases[0].owner, "alice");
});

Deno.test("the spec carries neon_local's shapes: pageserver info, legacy connstring, conf", () => {
  const json = generateComputeSpec(INPUTS);
  assert.deepEqual(json.pageserver_connection_info, {
    shard_count: 0,
    stripe_size: null,
    shards: {
      "0000": { pageservers: [{ id: 1, libpq_url: INPUTS.pageserver.libpqUrl, grpc_url: null }] },
    },
    prefer_protocol: "libpq",
  });
  assert.equal(json.pageserver_connstring, INPUTS.pageserver.libpqUrl);
  const cluster = json.cluster as {
    postgresql_conf: string;
    roles: { encrypted_password: string }[];
  };
  assert.match(cluster.postgresql_conf, /^port=55432$/m);
  assert.match(cluster.postgresql_conf, /^listen_addresses='127\.0\.0\.1'$/m);
  assert.match(
    cluster.postgresql_conf,
    /^unix_socket_directories='\/tmp\/cluster\/computes\/compute-1'$/m,
  );
  assert.match(cluster.postgresql_conf, /^fsync=off$/m);
  assert.doesNotMatch(cluster.postgresql_conf, /shared_preload_libraries/);
  assert.match(cluster.roles[0].encrypted_password, /^[0-9a-f]{32}$/);
});

Deno.test("md5Password is md5(password || role) in hex, without the md5 prefix", () => {
  // Postgres stores "md5" || md5('secret' || 'alice') for password "secret" of role "alice".
  assert.equal(md5Password("secret", "alice"), "4a0a68b43b6cd5cf266fa02f196e2371");
  assert.notEqual(md5Password("secret", "alice"), md5Password("secret", "bob"));
});

Deno.test("withPageserver replaces both the connection info and the legacy connstring", () => {
  const other = { id: 2, libpqUrl: "postgresql://no_user@127.0.0.1:6401" };
  const moved = withPageserver(generateComputeSpec(INPUTS), other);
  const parsed = parseSpec(parseComputeSpecJson(moved));
  assert.equal(shardLibpqUrl(parsed.pageserverConnInfo, 0), other.libpqUrl);
  assert.equal(moved.pageserver_connstring, other.libpqUrl);
});

Deno.test("deepMerge merges objects and replaces arrays, like respec_deep", () => {
  const base = { a: { b: 1, c: [1, 2] }, d: "x" };
  const merged = deepMerge(base, { a: { c: [3] }, e: null });
  assert.deepEqual(merged, { a: { b: 1, c: [3] }, d: "x", e: null });
  assert.deepEqual(base, { a: { b: 1, c: [1, 2] }, d: "x" }, "the base is not modified");
});

Deno.test("randomHexId gives distinct 32-hex ids", () => {
  const ids = new Set(Array.from({ length: 100 }, randomHexId));
  assert.equal(ids.size, 100);
  for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
});
