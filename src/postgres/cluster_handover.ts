/**
 * @module
 * Reading the cluster snapshot once per `/configure` instead of twice: the
 * check of a pushed spec leaves the snapshot it read on its kept session, and
 * the apply that follows on that session takes it instead of reading the
 * catalog again, when nothing can have changed in between. That is the case
 * when `pg_current_snapshot()` reads the same as before the check began
 * reading: then no transaction that wrote anything has ended since, so every
 * catalog query would answer the same. A snapshot is handed over once (what
 * it read outside the catalog, the `neon` extension's default version, is
 * never older than one `/configure`); an apply that finds none, or a stale
 * one, reads its own.
 */

import type pg from "pg";
import { type ClusterSnapshot, snapshotCluster } from "./catalog.ts";

/** What a plan does with the session's cluster snapshot: leave it for the next plan, or take it. */
export type Handover = "offer" | "accept";

interface Offered {
  /** `pg_current_snapshot()` as text, read before the cluster snapshot. */
  visibility: string;
  timelineId: string | null;
  cluster: ClusterSnapshot;
}

const offered = new WeakMap<pg.Client, Offered>();

async function visibility(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ visibility: string }>(
    "SELECT pg_catalog.pg_current_snapshot()::text AS visibility",
  );
  return rows[0].visibility;
}

/**
 * The cluster snapshot of `client` (see `snapshotCluster`). Without
 * `handover` it is read as always. With `"offer"` it is read and left on
 * `client` for the next plan; with `"accept"` the one left there is taken
 * when it was read for the same timeline and nothing has committed since,
 * else it is read.
 */
export async function readClusterSnapshot(
  client: pg.Client,
  { timelineId = null }: { timelineId?: string | null },
  handover?: Handover,
): Promise<ClusterSnapshot> {
  if (handover === undefined) return await snapshotCluster(client, { timelineId });
  const now = await visibility(client);
  const left = offered.get(client);
  offered.delete(client);
  if (
    handover === "accept" && left !== undefined && left.visibility === now &&
    left.timelineId === timelineId
  ) {
    return left.cluster;
  }
  const cluster = await snapshotCluster(client, { timelineId });
  if (handover === "offer") offered.set(client, { visibility: now, timelineId, cluster });
  return cluster;
}
