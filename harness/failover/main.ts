/**
 * @module
 * `deno task failover [--scenario FILE] [--dir DIR]`: a narrated, reproducible
 * failover run on a fresh cluster (control plane, 2 pageservers, 3 safekeepers,
 * one primary with its emulated Neon extension) under an insert workload and a
 * bank-transfer workload. Each step goes through the harness admin API; the
 * report says what happened, how long until commits flowed again, and whether
 * every acknowledged row and the bank total survived, last of all on a compute
 * started afresh from the storage. Exits 0 only if nothing acknowledged was
 * lost; 2 for a bad scenario file.
 */

import { parseArgs } from "node:util";
import { startCluster } from "../cluster.ts";
import { adminClient } from "./admin_client.ts";
import { renderReport, verdict } from "./report.ts";
import { runScenario } from "./runner.ts";
import {
  checkAgainstCluster,
  DEFAULT_SCENARIO,
  parseScenario,
  ScenarioError,
  type Step,
} from "./scenario.ts";
import { finalCheck } from "./final_check.ts";
import { startWorkloads } from "./workload.ts";

const PAGESERVERS = 2;
const SAFEKEEPERS = 3;

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { scenario: { type: "string" }, dir: { type: "string" }, help: { type: "boolean" } },
  });
  if (values.help) {
    console.log("usage: deno task failover [--scenario FILE] [--dir DIR]");
    return 0;
  }
  let steps: readonly Step[] = DEFAULT_SCENARIO;
  try {
    if (values.scenario) {
      steps = parseScenario(await Deno.readTextFile(values.scenario), values.scenario);
    }
    checkAgainstCluster(
      steps,
      { pageservers: PAGESERVERS, safekeepers: SAFEKEEPERS },
      values.scenario ?? "the built-in scenario",
    );
  } catch (error) {
    if (!(error instanceof ScenarioError || error instanceof Deno.errors.NotFound)) throw error;
    console.error(`failover: ${(error as Error).message}`);
    return 2;
  }

  const log = (line: string) => console.log(`[${new Date().toISOString()}] ${line}`);
  log(`starting a cluster: ${PAGESERVERS} pageservers, ${SAFEKEEPERS} safekeepers, one primary`);
  await using cluster = await startCluster({
    pageservers: PAGESERVERS,
    safekeepers: SAFEKEEPERS,
    tmpDir: values.dir ?? "/tmp",
    computes: [{ id: "primary", neonExtension: { intervalMs: 200, backoffMs: 200 } }],
  });
  const admin = adminClient(cluster.controlPlane.url);
  log(`admin API: ${cluster.controlPlane.url}/harness/state`);
  const workloads = await startWorkloads({ url: cluster.compute("primary").postgresUrl });
  let run;
  let final = null;
  try {
    run = await runScenario(steps, { admin, workloads, primary: "primary", log });
  } finally {
    await workloads.stop();
  }
  const { reports } = run;
  if (reports.every((report) => report.outcome !== "failed")) {
    log("final check: stop the primary, start it again from the storage, read everything");
    final = await finalCheck(admin, workloads, run.primary).catch((error) => {
      log(`final check failed: ${(error as Error).message}`);
      return null;
    });
  }
  console.log(`\n${renderReport(reports, final)}`);
  return verdict(reports, final) ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
