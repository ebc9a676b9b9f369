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
import { runWithWorkloads, startFailoverCluster } from "./failover_cluster.ts";
import { renderReport, verdict } from "./report.ts";
import {
  checkAgainstCluster,
  DEFAULT_SCENARIO,
  FAILOVER_CLUSTER,
  parseScenario,
  ScenarioError,
  type Step,
} from "./scenario.ts";

const { pageservers: PAGESERVERS, safekeepers: SAFEKEEPERS } = FAILOVER_CLUSTER;

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
    checkAgainstCluster(steps, FAILOVER_CLUSTER, values.scenario ?? "the built-in scenario");
  } catch (error) {
    if (!(error instanceof ScenarioError || error instanceof Deno.errors.NotFound)) throw error;
    console.error(`failover: ${(error as Error).message}`);
    return 2;
  }

  const log = (line: string) => console.log(`[${new Date().toISOString()}] ${line}`);
  log(`starting a cluster: ${PAGESERVERS} pageservers, ${SAFEKEEPERS} safekeepers, one primary`);
  await using cluster = await startFailoverCluster(values.dir);
  log(`admin API: ${cluster.controlPlane.url}/harness/state`);
  const { run: { reports }, final } = await runWithWorkloads(cluster, steps, { log });
  console.log(`\n${renderReport(reports, final)}`);
  return verdict(reports, final) ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
