/**
 * @module
 * What a successful spec apply left in each spec database (the `public`-schema
 * details of ChangeSchemaPerms), remembered so that the next apply on the same
 * run of the same server connects only to the databases where those details
 * may differ: new ones, ones dropped and created again (another oid), and all
 * of them when a role the details name was created again, the server
 * restarted, the privileged role changed, or roles are being dropped (whose
 * references are freed in every database).
 *
 * A deliberate difference from Neon, which connects to every spec database on
 * every apply: a change a database owner makes by hand to their own `public`
 * schema (revoking `web_access`'s CREATE, dropping and creating the schema
 * again) is put right at the next apply that inspects that database, not at
 * every `/configure`.
 */

import type { ComputeSpec } from "../api/spec.ts";
import type { ClusterSnapshot, DatabaseDetails } from "./catalog.ts";
import { databasesToInspect, type SpecApplyPlan } from "./spec_plan/mod.ts";

/** A spec database as the last successful apply left it. */
export interface SettledDatabase {
  /** `pg_database.oid` when it was inspected. */
  oid: number;
  details: DatabaseDetails;
}

/** What the last successful apply left, and under which conditions it still holds. */
export interface SettledDatabases {
  /** `pg_postmaster_start_time()`: the record is about this run of the server only. */
  postmasterStartTime: string;
  privilegedRoleName: string;
  serverVersionNum: number;
  /** Oids of the roles the details are about (null: the role did not exist before that apply). */
  privilegedRoleOid: number | null;
  webAccessOid: number | null;
  databases: ReadonlyMap<string, SettledDatabase>;
}

/** Records by connection string; one per server this process applies specs to. */
export type SettledStore = Map<string, SettledDatabases>;

/** The record this process keeps unless an apply is given another. */
export const PROCESS_SETTLED: SettledStore = new Map();

/** Which databases to connect to for details, and the details already known for the others. */
export interface DetailReads {
  /** Databases to inspect: their details may differ from what was left. */
  inspect: string[];
  /** Details of the other wanted databases, as the last apply left them. */
  known: Map<string, DatabaseDetails>;
}

function roleOid(cluster: ClusterSnapshot, name: string): number | null {
  return cluster.roles.get(name)?.oid ?? null;
}

/**
 * Splits the databases whose details planning `spec` needs (see
 * `databasesToInspect`) into those to inspect and those whose details
 * `settled` still tells: same server run, privileged role, server version and
 * role oids, the same database oid, and no role being dropped. Pure.
 */
export function planDetailReads(
  cluster: ClusterSnapshot,
  spec: ComputeSpec,
  settled: SettledDatabases | undefined,
  privilegedRoleName: string,
): DetailReads {
  const wanted = databasesToInspect(spec);
  const reads: DetailReads = { inspect: [], known: new Map() };
  const dropsRoles = (spec.delta_operations ?? []).some((op) => op.action === "delete_role");
  const holds = settled !== undefined && !dropsRoles &&
    cluster.postmasterStartTime !== undefined &&
    settled.postmasterStartTime === cluster.postmasterStartTime &&
    settled.privilegedRoleName === privilegedRoleName &&
    settled.serverVersionNum === cluster.serverVersionNum &&
    settled.privilegedRoleOid === roleOid(cluster, privilegedRoleName) &&
    settled.webAccessOid === roleOid(cluster, "web_access");
  for (const name of wanted) {
    const left = holds ? settled.databases.get(name) : undefined;
    const oid = cluster.databases.get(name)?.oid;
    if (left !== undefined && oid !== undefined && left.oid === oid) {
      reads.known.set(name, left.details);
    } else {
      reads.inspect.push(name);
    }
  }
  return reads;
}

/**
 * The record of an apply of `plan` that succeeded, planned on `cluster`:
 * the settled details of each database that existed under the same name
 * before it (a database it created or renamed is inspected next time).
 * Null when the snapshot lacks what a record needs. Pure.
 */
export function settledAfter(
  cluster: ClusterSnapshot,
  plan: SpecApplyPlan,
  privilegedRoleName: string,
): SettledDatabases | null {
  if (cluster.postmasterStartTime === undefined) return null;
  const databases = new Map<string, SettledDatabase>();
  for (const [name, details] of plan.settled ?? []) {
    const oid = cluster.databases.get(name)?.oid;
    if (oid !== undefined) databases.set(name, { oid, details });
  }
  return {
    postmasterStartTime: cluster.postmasterStartTime,
    privilegedRoleName,
    serverVersionNum: cluster.serverVersionNum,
    privilegedRoleOid: roleOid(cluster, privilegedRoleName),
    webAccessOid: roleOid(cluster, "web_access"),
    databases,
  };
}
