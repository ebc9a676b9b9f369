/**
 * @module
 * The last word of a failover run: the primary is stopped (if it still runs)
 * and started again, so everything it reads comes from the emulated storage
 * alone; then every acknowledged row and the bank total are checked there.
 */

import type { AdminClient, ComputeEntry } from "./admin_client.ts";
import type { FinalCheck } from "./report.ts";
import { verify, type Workloads } from "./workload.ts";

/** Restarts the primary `primary` from the storage and verifies the workloads' data on it. */
export async function finalCheck(
  admin: AdminClient,
  workloads: Workloads,
  primary: { id: string; up: boolean },
): Promise<FinalCheck> {
  if (primary.up) await admin.compute(primary.id, "stop");
  const restarted = await admin.compute(primary.id, "start") as unknown as ComputeEntry;
  const result = await verify(restarted.postgres, workloads);
  return {
    rows: workloads.acknowledgedRows.size,
    missing: result.missingRows.length,
    bankSum: result.bankSum,
    bankTotal: workloads.bankTotal,
  };
}
