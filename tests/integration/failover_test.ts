/**
 * The failover runner against a real cluster, through the real admin API, with
 * both workloads committing: a short scenario touching each kind of step runs,
 * every step verifies, and a compute restarted from the storage alone still
 * has every acknowledged row and the bank total. (`deno task failover` runs the
 * full built-in scenario in CI.)
 */

import assert from "node:assert/strict";
import { startCluster } from "../../harness/cluster.ts";
import { adminClient } from "../../harness/failover/admin_client.ts";
import { finalCheck } from "../../harness/failover/final_check.ts";
import { renderReport, verdict } from "../../harness/failover/report.ts";
import { runScenario } from "../../harness/failover/runner.ts";
import { parseScenario } from "../../harness/failover/scenario.ts";
import { startWorkloads } from "../../harness/failover/workload.ts";

Deno.test("a scenario file runs through the admin API and loses nothing", async () => {
  await using cluster = await startCluster({
    computes: [{ id: "primary", neonExtension: { intervalMs: 200, backoffMs: 200 } }],
  });
  const steps = parseScenario(JSON.stringify([
    { step: "run", commits: 10 },
    { step: "migrate", to: 2, notify: false },
    { step: "safekeeper", action: "kill", id: 1, expect: "commits" },
    { step: "safekeeper", action: "stop", id: 3, expect: "blocked" },
    { step: "safekeeper", action: "start", id: 1 },
    { step: "compute", action: "kill" },
    { step: "compute", action: "start" },
    { step: "safekeeper", action: "start", id: 3 },
    { step: "run", commits: 10 },
  ]));
  const admin = adminClient(cluster.controlPlane.url);
  const workloads = await startWorkloads({ url: cluster.compute("primary").postgresUrl });
  let run;
  try {
    run = await runScenario(steps, { admin, workloads, primary: "primary" });
  } finally {
    await workloads.stop();
  }
  const final = await finalCheck(admin, workloads, run.primary);
  const report = renderReport(run.reports, final);
  assert.equal(run.reports.length, steps.length, report);
  assert.ok(verdict(run.reports, final), report);
  assert.equal(final.missing, 0);
  assert.ok(final.rows > 0 && workloads.acknowledgedTransfers > 0);
  // The compute healed onto pageserver 2 by itself, and commits stopped while two safekeepers were down.
  assert.match(run.reports[1].outcome, /pageserver 2; the compute healed itself/);
  assert.equal(run.reports[3].recoveryMs, null);
  assert.match(report, /PASS: nothing acknowledged was lost$/);
});
