/**
 * @module
 * The `ComputeConfig` the harness hands a compute (in `config.json` or through
 * the control plane), shaped like the one `neon_local` writes: a primary with
 * one role and one database, the unsharded pageserver connection info plus the
 * legacy connstring, every safekeeper, and a small vanilla `postgresql.conf`.
 */

import { createHash } from "node:crypto";
import type { JsonObject } from "./control_plane.ts";

/** The role every generated spec creates. */
export const SPEC_ROLE = { name: "alice", password: "alice-secret-password" } as const;

/** The database every generated spec creates, owned by {@linkcode SPEC_ROLE}. */
export const SPEC_DATABASE = "appdb";

/** A pageserver as a spec names it. */
export interface SpecPageserver {
  id: number;
  libpqUrl: string;
}

/** What varies between generated specs. */
export interface SpecInputs {
  computeId: string;
  tenantId: string;
  timelineId: string;
  pgPort: number;
  /** Directory for Postgres's unix socket (`unix_socket_directories`). */
  socketDir: string;
  pageserver: SpecPageserver;
  /** `host:port` of every safekeeper. */
  safekeepers: readonly string[];
  /** Extra `postgresql.conf` lines, appended after the generated ones. */
  postgresqlConf?: readonly string[];
  /** The compute's mode; default `"Primary"`. */
  mode?: SpecMode;
}

/** A compute mode as the spec JSON writes it. */
export type SpecMode = "Primary" | "Replica" | { Static: string };

/** The md5 verifier body Neon specs carry: hex md5 of password then role name, no `md5` prefix. */
export function md5Password(password: string, role: string): string {
  return createHash("md5").update(password + role).digest("hex");
}

/** A random 32-hex tenant or timeline id. */
export function randomHexId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** `pageserver_connection_info` for an unsharded tenant served by `pageserver`. */
export function pageserverConnectionInfo(pageserver: SpecPageserver): JsonObject {
  return {
    shard_count: 0,
    stripe_size: null,
    shards: {
      "0000": {
        pageservers: [{ id: pageserver.id, libpq_url: pageserver.libpqUrl, grpc_url: null }],
      },
    },
    prefer_protocol: "libpq",
  };
}

/**
 * Points `spec` at `pageserver`: replaces `pageserver_connection_info` and the
 * legacy `pageserver_connstring`, like `neon_local endpoint update-pageservers`.
 */
export function withPageserver(spec: JsonObject, pageserver: SpecPageserver): JsonObject {
  return {
    ...spec,
    pageserver_connection_info: pageserverConnectionInfo(pageserver),
    pageserver_connstring: pageserver.libpqUrl,
  };
}

/**
 * The server settings every generated spec gives its compute (small and
 * unsynced: test data lives in the emulated storage, not in PGDATA). A
 * benchmark's bare-Postgres baseline runs with the same ones.
 */
export const COMPUTE_SERVER_SETTINGS = [
  "shared_buffers=1MB",
  "max_connections=100",
  "fsync=off",
] as const;

/**
 * The vanilla `postgresql.conf` text of a generated spec. A Replica also gets
 * what Neon's control plane gives one (neon-04 §C.6): `primary_conninfo` naming
 * every safekeeper with the timeline in `options`, a slot name and
 * `hot_standby=on`.
 */
export function renderPostgresqlConf(inputs: SpecInputs): string {
  const lines = [
    `port=${inputs.pgPort}`,
    "listen_addresses='127.0.0.1'",
    `unix_socket_directories='${inputs.socketDir}'`,
    ...COMPUTE_SERVER_SETTINGS,
  ];
  if (inputs.mode === "Replica") lines.push(...replicaConfLines(inputs));
  lines.push(...(inputs.postgresqlConf ?? []));
  return lines.join("\n") + "\n";
}

function replicaConfLines(inputs: SpecInputs): string[] {
  const hosts = inputs.safekeepers.map((address) => address.slice(0, address.lastIndexOf(":")));
  const ports = inputs.safekeepers.map((address) => address.slice(address.lastIndexOf(":") + 1));
  const conninfo = `host=${hosts.join(",")} port=${ports.join(",")} user=cloud_admin ` +
    `options='-c timeline_id=${inputs.timelineId} tenant_id=${inputs.tenantId}' ` +
    "application_name=replica";
  return [
    `primary_conninfo='${conninfo.replaceAll("'", "''")}'`,
    `primary_slot_name='repl_${inputs.timelineId}_'`,
    "hot_standby=on",
    "recovery_prefetch=off",
  ];
}

/** A `ComputeSpec` (neon-04 §C.2) for `inputs`: a primary unless `inputs.mode` says otherwise. */
export function generateComputeSpec(inputs: SpecInputs): JsonObject {
  return withPageserver({
    format_version: 1.0,
    operation_uuid: null,
    cluster: {
      cluster_id: inputs.computeId,
      name: inputs.computeId,
      roles: [{
        name: SPEC_ROLE.name,
        encrypted_password: md5Password(SPEC_ROLE.password, SPEC_ROLE.name),
        options: null,
      }],
      databases: [{ name: SPEC_DATABASE, owner: SPEC_ROLE.name, options: null }],
      postgresql_conf: renderPostgresqlConf(inputs),
      settings: [],
    },
    delta_operations: null,
    skip_pg_catalog_updates: false,
    tenant_id: inputs.tenantId,
    timeline_id: inputs.timelineId,
    endpoint_id: inputs.computeId,
    safekeeper_connstrings: (inputs.mode ?? "Primary") === "Primary" ? [...inputs.safekeepers] : [],
    mode: inputs.mode ?? "Primary",
    reconfigure_concurrency: 1,
    suspend_timeout_seconds: -1,
  }, inputs.pageserver);
}

/** The `postgresql.conf` lines only a Replica's spec has (see {@linkcode renderPostgresqlConf}). */
const STANDBY_LINE = /^(primary_conninfo|primary_slot_name|hot_standby|recovery_prefetch)\s*=/;

/**
 * The spec a promoted replica runs (the body of `/promote`): the replica's, as
 * a Primary with `safekeepers` (`host:port` each), without its standby lines.
 */
export function promotedSpec(replicaSpec: JsonObject, safekeepers: readonly string[]): JsonObject {
  const cluster = replicaSpec.cluster as JsonObject;
  const conf = String(cluster.postgresql_conf).split("\n")
    .filter((line) => !STANDBY_LINE.test(line));
  return {
    ...replicaSpec,
    mode: "Primary",
    safekeeper_connstrings: [...safekeepers],
    cluster: { ...cluster, postgresql_conf: conf.join("\n") },
  };
}

/** The `compute_ctl_config` of generated configs: a JWKS holding `jwk`, or no keys. */
export function defaultComputeCtlConfig(jwk?: JsonObject): JsonObject {
  return { jwks: { keys: jwk ? [structuredClone(jwk)] : [] } };
}

/**
 * Merges `patch` into `base` like the Python fixtures' `respec_deep`: objects
 * merge key by key, anything else (arrays included) replaces. Returns a new value.
 */
export function deepMerge(base: JsonObject, patch: JsonObject): JsonObject {
  const merged: JsonObject = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    const current = merged[key];
    merged[key] = isPlainObject(current) && isPlainObject(value)
      ? deepMerge(current, value)
      : structuredClone(value);
  }
  return merged;
}

function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
