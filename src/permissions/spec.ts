/**
 * @module
 * The hosts a spec makes the manager connect to (pageservers, safekeepers,
 * endpoint storage), checked before the spec is taken: at start, at
 * `/configure` (a 400 naming the field) and for a refreshed config. Without
 * this, a spec naming a host nobody granted fails only when the compute first
 * connects there.
 */

import type { ComputeConfig } from "../api/config.ts";
import { type ParsedSpec, parseSpec, shardIndex, SpecError } from "../api/parsed_spec.ts";
import { denoPermissionQuery, type PermissionQuery, refusals } from "./refusals.ts";
import { hostRequirement, type Requirement, urlRequirement } from "./requirements.ts";

/** A spec that names a host the process may not connect to: `/configure` answers 400. */
export class PermissionRefusedError extends SpecError {
  constructor(message: string) {
    super(message);
    this.name = "PermissionRefusedError";
  }
}

/**
 * The hosts a spec makes the manager connect to: every pageserver's
 * `libpq_url`, every safekeeper, and the endpoint storage (LFC state). Each
 * names the field it came from.
 */
export function specRequirements(pspec: ParsedSpec): Requirement[] {
  const { spec } = pspec;
  const settingsField = (name: string) => `the spec's cluster.settings ${name}`;
  const pageserverField = spec.pageserver_connection_info
    ? "the spec's pageserver_connection_info"
    : spec.pageserver_connstring
    ? "the spec's pageserver_connstring"
    : settingsField("neon.pageserver_connstring");
  const needs: Requirement[] = [];
  const info = pspec.pageserverConnInfo;
  for (const [key, shard] of Object.entries(info.shards)) {
    const shardName = info.shard_count === 0 && key === shardIndex(0, 0) ? "" : ` (shard ${key})`;
    for (const pageserver of shard.pageservers) {
      if (!pageserver.libpq_url) continue;
      needs.push(...urlRequirement(`${pageserverField}${shardName}`, pageserver.libpq_url));
    }
  }
  const safekeeperField = spec.safekeeper_connstrings.length > 0
    ? "the spec's safekeeper_connstrings"
    : settingsField("neon.safekeepers");
  for (const entry of pspec.safekeeperConnstrings) {
    needs.push(hostRequirement(`${safekeeperField} entry`, entry, 5454));
  }
  if (pspec.endpointStorageAddr !== undefined) {
    const field = spec.endpoint_storage_addr != null
      ? "the spec's endpoint_storage_addr"
      : settingsField("neon.endpoint_storage_addr");
    needs.push(hostRequirement(`${field} host`, pspec.endpointStorageAddr, 80));
  }
  return needs;
}

/**
 * Throws {@linkcode PermissionRefusedError} (a 400 at `/configure`) when the
 * spec names a host the process may not connect to; its message holds every
 * refusal, separated by `; `.
 */
export async function assertSpecGranted(
  pspec: ParsedSpec,
  query: PermissionQuery = denoPermissionQuery,
): Promise<void> {
  const refused = await refusals(specRequirements(pspec), query);
  if (refused.length > 0) throw new PermissionRefusedError(refused.join("; "));
}

/**
 * `config` itself once its spec (if any) names only granted hosts; else
 * rejects with {@linkcode PermissionRefusedError}. For configs fetched later
 * (a refresh), which are checked as the first one was.
 */
export async function grantedConfig(
  config: ComputeConfig,
  query: PermissionQuery = denoPermissionQuery,
): Promise<ComputeConfig> {
  if (config.spec != null) await assertSpecGranted(parseSpec(config.spec), query);
  return config;
}
