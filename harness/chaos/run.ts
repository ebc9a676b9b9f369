/**
 * @module
 * One chaos run: the scenario generated from a seed, run on a fresh failover
 * cluster under the insert and bank-transfer workloads, every acknowledged row
 * and the bank total checked on the primary after every step and once more on
 * a primary started from the storage alone; and the counts a reliability
 * record needs. `deno task chaos` and the chaos test both run through here.
 */

import { emptyRecord, type FamilyRecord } from "../reliability/record.ts";
import { runWithWorkloads, startFailoverCluster } from "../failover/failover_cluster.ts";
import { type FinalCheck, renderReport, verdict } from "../failover/report.ts";
import type { StepReport } from "../failover/runner.ts";
import { FAILOVER_CLUSTER, type Step } from "../failover/scenario.ts";
import { generateScenario } from "./generator.ts";
import { replayScenario } from "./model.ts";

/** Options of {@linkcode runChaos}. */
export interface ChaosRunOptions {
  seed: number;
  /** Random steps before the healing ones. */
  steps: number;
  /** Parent of the cluster's temporary root; default `/tmp`. */
  tmpDir?: string;
  /** Once aborted, no further step starts (the run is cut short, not failed). */
  signal?: AbortSignal;
  /** One line per event, as it happens. */
  log?: (line: string) => void;
  /** Called with the generated scenario before anything starts. */
  onScenario?: (scenario: readonly Step[]) => void;
}

/** What one chaos run did and found. */
export interface ChaosRun {
  seed: number;
  /** The generated scenario, healing steps included. */
  scenario: Step[];
  reports: StepReport[];
  /** The check on a primary started from the storage; null when none ran or it failed. */
  final: FinalCheck | null;
  /** Checks of every acknowledged row and the bank total: after steps, plus the final one. */
  checks: number;
  /** The most acknowledged rows any check found missing. */
  rowsLost: number;
  /** Some check found the bank total changed. */
  bankBroken: boolean;
  /** Steps that could not do what they expected (a timeout, an error answer). */
  failedSteps: number;
  /** A final check was due but did not complete. */
  finalCheckFailed: boolean;
  /** Stopped by the signal before its last step. */
  cutShort: boolean;
  /** Nothing lost, nothing failed. */
  ok: boolean;
  /** The failover report of the run (a table, then the verdict, or why it was cut short). */
  report: string;
}

/** Generates the scenario for `options.seed` and runs it on a fresh cluster. */
export async function runChaos(options: ChaosRunOptions): Promise<ChaosRun> {
  const scenario = generateScenario({ seed: options.seed, steps: options.steps });
  replayScenario(scenario, FAILOVER_CLUSTER, `seed ${options.seed}`);
  options.onScenario?.(scenario);
  await using cluster = await startFailoverCluster(options.tmpDir);
  const { run, final, finalDue, workloads } = await runWithWorkloads(cluster, scenario, {
    log: options.log,
    signal: options.signal,
  });
  const { reports } = run;
  const verifications = reports.flatMap((report) => report.verification ?? []);
  const found = [
    ...verifications.map(({ missingRows, bankSum }) => ({ missingRows, bankSum })),
    ...(final ? [{ missingRows: final.missing, bankSum: final.bankSum }] : []),
  ];
  const rowsLost = Math.max(0, ...found.map((check) => check.missingRows));
  const bankBroken = found.some((check) => check.bankSum !== workloads.bankTotal);
  const failedSteps = reports.filter((report) => report.outcome === "failed").length;
  const finalCheckFailed = finalDue && final === null;
  const cutShort = !finalDue && failedSteps === 0;
  return {
    seed: options.seed,
    scenario,
    reports,
    final,
    checks: found.length,
    rowsLost,
    bankBroken,
    failedSteps,
    finalCheckFailed,
    cutShort,
    ok: rowsLost === 0 && !bankBroken && failedSteps === 0 && !finalCheckFailed &&
      (cutShort || verdict(reports, final)),
    report: cutShort
      ? renderReport(reports, final).replace(
        /FAIL$/,
        `CUT SHORT at the time limit after ${reports.length} of ${scenario.length} steps; ` +
          "nothing acknowledged was lost so far",
      )
      : renderReport(reports, final),
  };
}

/**
 * The `chaos` family's record of `runs` (unit `chaos steps`): steps run, rows
 * lost (a changed bank total counts as one more: an acknowledged transfer is
 * missing), and as unexpected answers the steps that failed and the final
 * checks that did not complete.
 */
export function chaosRecord(runs: readonly ChaosRun[], test: string): FamilyRecord {
  const record = emptyRecord("chaos", test, "chaos steps");
  for (const run of runs) {
    record.tried += run.reports.length;
    record.rowsLost += run.rowsLost + (run.bankBroken ? 1 : 0);
    record.unexpectedStatus += run.failedSteps + (run.finalCheckFailed ? 1 : 0);
  }
  return record;
}

/** `steps` as a scenario file, one step a line (what `deno task failover --scenario` reads). */
export function scenarioJson(steps: readonly Step[]): string {
  return `[\n${steps.map((step) => `  ${JSON.stringify(step)}`).join(",\n")}\n]\n`;
}
