/**
 * @module
 * A spec resolved for use: pageserver shards, safekeepers, tenant and timeline
 * taken from the spec's fields or, for old control planes, from `neon.*`
 * settings; then validated. Failures throw `SpecError` with the messages Neon's
 * compute_ctl uses, which `/configure` returns as its 400 body.
 */

import { isHexId } from "./ids.ts";
import { type Lsn, parseLsn } from "./lsn.ts";
import {
  type ComputeSpec,
  computeSpecSchema,
  findOption,
  formatIssues,
  type PageserverConnectionInfo,
} from "./spec.ts";

/** A spec that is invalid, with the message to show the caller. */
export class SpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SpecError";
  }
}

/** A spec plus everything derived from it that the lifecycle needs. */
export interface ParsedSpec {
  readonly spec: ComputeSpec;
  readonly pageserverConnInfo: PageserverConnectionInfo;
  readonly safekeeperConnstrings: readonly string[];
  readonly tenantId: string;
  readonly timelineId: string;
  readonly endpointStorageAddr?: string;
  readonly endpointStorageToken?: string;
}

/** Parses untrusted JSON into a `ComputeSpec`, throwing `SpecError` naming each bad field. */
export function parseComputeSpecJson(value: unknown): ComputeSpec {
  const result = computeSpecSchema.safeParse(value);
  if (!result.success) throw new SpecError(formatIssues(result.error));
  return result.data;
}

/** Resolves and validates a spec. Order and messages follow Neon's `ParsedSpec::try_from`. */
export function parseSpec(spec: ComputeSpec): ParsedSpec {
  const settings = spec.cluster.settings;
  const pageserverConnInfo = resolvePageserverConnInfo(spec);
  checkShardMap(pageserverConnInfo);

  let safekeeperConnstrings: string[] = [...spec.safekeeper_connstrings];
  if (safekeeperConnstrings.length === 0 && spec.mode === "Primary") {
    const fromSettings = findOption(settings, "neon.safekeepers");
    if (fromSettings === undefined) {
      throw new SpecError("safekeeper connstrings should be provided");
    }
    safekeeperConnstrings = fromSettings.split(",").filter((entry) => entry !== "");
  }

  const tenantId = resolveId(spec.tenant_id, findOption(settings, "neon.tenant_id"), "tenant");
  const timelineId = resolveId(
    spec.timeline_id,
    findOption(settings, "neon.timeline_id"),
    "timeline",
  );

  const parsed: ParsedSpec = {
    spec,
    pageserverConnInfo,
    safekeeperConnstrings,
    tenantId,
    timelineId,
    endpointStorageAddr: spec.endpoint_storage_addr ??
      findOption(settings, "neon.endpoint_storage_addr"),
    endpointStorageToken: spec.endpoint_storage_token ??
      findOption(settings, "neon.endpoint_storage_token"),
  };
  validate(parsed);
  return parsed;
}

function validate(parsed: ParsedSpec): void {
  if (parsed.spec.mode !== "Primary") return;
  if (parsed.safekeeperConnstrings.length === 0) {
    throw new SpecError("safekeeper_connstrings is empty");
  }
  const seen = new Set<string>();
  for (const entry of parsed.safekeeperConnstrings) {
    if (seen.has(entry)) {
      throw new SpecError(`duplicate entry in safekeeper_connstrings: ${entry}!`);
    }
    seen.add(entry);
  }
}

function resolveId(
  field: string | null | undefined,
  setting: string | undefined,
  what: "tenant" | "timeline",
): string {
  if (field) return field;
  if (setting === undefined) throw new SpecError(`${what} id should be provided`);
  if (!isHexId(setting)) throw new SpecError(`invalid ${what} id`);
  return setting.toLowerCase();
}

function resolvePageserverConnInfo(spec: ComputeSpec): PageserverConnectionInfo {
  if (spec.pageserver_connection_info) return spec.pageserver_connection_info;
  if (spec.pageserver_connstring) {
    return connInfoFromConnstring(spec.pageserver_connstring, spec.shard_stripe_size ?? undefined);
  }
  const settings = spec.cluster.settings;
  const connstring = findOption(settings, "neon.pageserver_connstring");
  if (connstring !== undefined) {
    const stripeText = findOption(settings, "neon.stripe_size");
    let stripe: number | undefined;
    if (stripeText !== undefined) {
      if (!/^\d+$/.test(stripeText) || Number(stripeText) > 0xffff_ffff) {
        throw new SpecError(`invalid neon.stripe_size: ${stripeText}`);
      }
      stripe = Number(stripeText);
    }
    return connInfoFromConnstring(connstring, stripe);
  }
  throw new SpecError("pageserver connection information should be provided");
}

/**
 * Refuses a shard map the compute could not start from: every shard
 * `0 … max(shard_count, 1) - 1` must be in it with at least one pageserver
 * (the same messages {@link shardLibpqUrl} would give later, at basebackup).
 */
function checkShardMap(info: PageserverConnectionInfo): void {
  for (let number = 0; number < Math.max(info.shard_count, 1); number++) {
    shardLibpqUrl(info, number);
  }
}

/**
 * Turns a legacy comma-separated connstring into shard info: one entry is
 * unsharded (count 0, key `0000`); N entries are N shards and need a stripe size.
 */
export function connInfoFromConnstring(
  connstring: string,
  stripeSize: number | undefined,
): PageserverConnectionInfo {
  const urls = connstring.split(",");
  const shardCount = urls.length === 1 ? 0 : urls.length;
  if (shardCount > 255) throw new SpecError(`too many shards: ${shardCount}`);
  if (shardCount > 1 && stripeSize === undefined) {
    throw new SpecError(`${shardCount} shards but no stripe_size`);
  }
  const shards = Object.fromEntries(urls.map((url, number) => [
    shardIndex(number, shardCount),
    { pageservers: [{ id: null, libpq_url: url, grpc_url: null }] },
  ]));
  return {
    shard_count: shardCount,
    stripe_size: shardCount === 0 ? null : stripeSize,
    shards,
    prefer_protocol: "libpq",
  };
}

/** The shard index key: shard number then shard count, two lower-case hex digits each. */
export function shardIndex(shardNumber: number, shardCount: number): string {
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  return `${hex(shardNumber)}${hex(shardCount)}`;
}

/**
 * The libpq URL of the first pageserver of a shard, or undefined when that
 * pageserver has none (gRPC only). Throws when the shard is missing from the map.
 */
export function shardLibpqUrl(
  info: PageserverConnectionInfo,
  shardNumber: number,
): string | undefined {
  const key = shardIndex(shardNumber, info.shard_count);
  const shard = info.shards[key];
  if (!shard) {
    throw new SpecError(`shard ${key} missing from pageserver_connection_info shard map`);
  }
  const first = shard.pageservers[0];
  if (!first) throw new SpecError(`shard ${key} has no pageservers`);
  return first.libpq_url ?? undefined;
}

/** True when two pageserver configurations would send the compute to the same places. */
export function samePageserverConnInfo(
  a: PageserverConnectionInfo,
  b: PageserverConnectionInfo,
): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function canonicalJson(value: unknown): string {
  if (value === undefined) return "null";
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined && v !== null)
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** The LSN a Static compute is pinned at, or undefined for the other modes. */
export function staticLsn(spec: ComputeSpec): Lsn | undefined {
  return typeof spec.mode === "object" ? parseLsn(spec.mode.Static) : undefined;
}
