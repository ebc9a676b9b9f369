/**
 * @module
 * The cluster a failover run breaks, and one whole run on it: 2 pageservers,
 * 3 safekeepers and one primary whose emulated Neon extension probes its
 * pageserver; the workloads start on the primary, the scenario runs, the
 * workloads stop, and (unless a step failed or the run was cut short) the
 * primary is started again from the storage and checked. `deno task failover`
 * and `deno task chaos` both run scenarios this way.
 */

import { type Cluster, startCluster } from "../cluster.ts";
import { adminClient } from "./admin_client.ts";
import { finalCheck } from "./final_check.ts";
import type { FinalCheck } from "./report.ts";
import { type RunResult, runScenario } from "./runner.ts";
import { FAILOVER_CLUSTER, type Step } from "./scenario.ts";
import { startWorkloads, type Workloads } from "./workload.ts";

/** The id of the compute a failover run starts as its primary. */
export const FAILOVER_PRIMARY = "primary";

/** Starts a failover cluster with its root under `tmpDir` (default `/tmp`). */
export function startFailoverCluster(tmpDir = "/tmp"): Promise<Cluster> {
  return startCluster({
    ...FAILOVER_CLUSTER,
    tmpDir,
    computes: [{ id: FAILOVER_PRIMARY, neonExtension: { intervalMs: 200, backoffMs: 200 } }],
  });
}

/** Options of {@linkcode runWithWorkloads}. */
export interface WorkloadRunOptions {
  /** One line per event, as it happens. */
  log?: (line: string) => void;
  /** Once aborted, no further step starts and no final check runs. */
  signal?: AbortSignal;
}

/** What {@linkcode runWithWorkloads} saw. */
export interface WorkloadRun {
  run: RunResult;
  /** null when no final check ran (a failed step, a cut-short run) or it failed. */
  final: FinalCheck | null;
  /** Whether the final check was due: every step ran and none failed. */
  finalDue: boolean;
  workloads: Workloads;
}

/**
 * Runs `steps` on `cluster` (fresh from {@linkcode startFailoverCluster}) under
 * both workloads, then the final check on a primary started from the storage.
 */
export async function runWithWorkloads(
  cluster: Cluster,
  steps: readonly Step[],
  options: WorkloadRunOptions = {},
): Promise<WorkloadRun> {
  const log = options.log ?? (() => {});
  const admin = adminClient(cluster.controlPlane.url);
  const workloads = await startWorkloads({ url: cluster.compute(FAILOVER_PRIMARY).postgresUrl });
  let run: RunResult;
  try {
    run = await runScenario(steps, {
      admin,
      workloads,
      primary: FAILOVER_PRIMARY,
      log,
      signal: options.signal,
    });
  } finally {
    await workloads.stop();
  }
  const { reports } = run;
  const failed = reports.some((report) => report.outcome === "failed");
  const lost = reports.some((report) => report.verified === false);
  const finalDue = !failed && (reports.length === steps.length || lost);
  let final: FinalCheck | null = null;
  if (finalDue) {
    log("final check: stop the primary, start it again from the storage, read everything");
    final = await finalCheck(admin, workloads, run.primary).catch((error) => {
      log(`final check failed: ${(error as Error).message}`);
      return null;
    });
  }
  return { run, final, finalDue, workloads };
}
