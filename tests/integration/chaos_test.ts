/**
 * The chaos loop on a real cluster: the scenario a fixed seed generates runs
 * through the admin API under the insert and bank workloads, and after every
 * step that leaves a primary running, every acknowledged row is there and the
 * bank total holds; a primary started from the storage alone agrees at the
 * end. The short version runs one scenario of a few steps (safekeeper and
 * pageserver deaths, the primary killed, started and stopped); the long one
 * (`RELIABILITY_LONG=1`) several long ones. Records the `chaos` family.
 */

import assert from "node:assert/strict";
import { afterStep, initialModel, replayScenario } from "../../harness/chaos/model.ts";
import { chaosRecord, type ChaosRun, runChaos, scenarioJson } from "../../harness/chaos/run.ts";
import { FAILOVER_CLUSTER, type Step } from "../../harness/failover/scenario.ts";
import { recordFamily, scaled } from "../../harness/reliability/record.ts";

/** Its 6-step scenario kills a safekeeper, the tenant's pageserver and the primary. */
const SEED = 2;
const STEPS = scaled(6, 40);
const RUNS = scaled(1, 3);
const BANK_TOTAL = 10 * 1000;

Deno.test("seeded chaos: after every step every acknowledged row is there and the bank holds", async () => {
  const runs: ChaosRun[] = [];
  let brokenOff = 0;
  try {
    for (let index = 0; index < RUNS; index++) {
      const run = await runChaos({ seed: SEED + index, steps: STEPS });
      runs.push(run);
      console.log(`seed ${run.seed}:\n${scenarioJson(run.scenario)}\n${run.report}`);
    }
  } catch (error) {
    brokenOff = 1;
    throw error;
  } finally {
    const record = chaosRecord(runs, "seeded chaos runs");
    record.unexpectedStatus += brokenOff;
    await recordFamily(record);
  }
  for (const run of runs) assertRun(run);
});

/** Every step ran, was checked whenever a primary ran after it, and nothing was lost. */
function assertRun(run: ChaosRun): void {
  const context = `seed ${run.seed}, scenario:\n${scenarioJson(run.scenario)}\n${run.report}`;
  replayScenario(run.scenario, FAILOVER_CLUSTER);
  assert.equal(run.reports.length, run.scenario.length, context);
  const primaryUpAfter = primaryAfterEachStep(run.scenario);
  for (const [position, report] of run.reports.entries()) {
    const where = `step ${report.index} (${report.step}) of ${context}`;
    assert.notEqual(report.outcome, "failed", where);
    if (!primaryUpAfter[position]) {
      assert.equal(report.verification, undefined, where);
      continue;
    }
    assert.equal(report.verified, true, where);
    assert.deepEqual(report.verification, { missingRows: 0, bankSum: BANK_TOTAL }, where);
  }
  assert.ok(run.final !== null, `no final check: ${context}`);
  assert.equal(run.final.missing, 0, context);
  assert.equal(run.final.bankSum, BANK_TOTAL, context);
  const last = run.reports.at(-1)!;
  assert.ok(run.final.rows >= last.rowsAcknowledged && last.rowsAcknowledged > 0, context);
  assert.ok(last.transfersAcknowledged > 0, context);
  assert.equal(run.checks, primaryUpAfter.filter(Boolean).length + 1, context);
  assert.deepEqual(
    [run.rowsLost, run.bankBroken, run.failedSteps, run.finalCheckFailed, run.cutShort, run.ok],
    [0, false, 0, false, false, true],
    context,
  );
}

/** Whether a primary runs after each step of `scenario` (when the runner checks). */
function primaryAfterEachStep(scenario: readonly Step[]): boolean[] {
  let model = initialModel(FAILOVER_CLUSTER);
  return scenario.map((step) => (model = afterStep(model, step)).primaryUp);
}
