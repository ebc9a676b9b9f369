/**
 * @module
 * `deno task chaos [--runs N] [--seed S] [--steps M] [--max-seconds T] [--dir DIR]`:
 * the chaos loop. Run `r` (from 0) generates a failover scenario from seed
 * `S + r` (M random steps the cluster can take, then the steps that heal it),
 * prints the seed and the scenario as JSON, and runs it on a fresh failover
 * cluster under the insert and bank-transfer workloads, checking every
 * acknowledged row and the bank total after every step. It stops at the first
 * run that loses or fails something, after N runs, or once T seconds have
 * passed (no step starts after that). With `RELIABILITY_OUT` set it records the
 * `chaos` family. Exits 0 only if every run lost nothing and failed nothing;
 * 2 for bad arguments.
 */

import { parseArgs } from "node:util";
import { recordFamily } from "../reliability/record.ts";
import { chaosRecord, type ChaosRun, runChaos, scenarioJson } from "./run.ts";

const USAGE =
  "usage: deno task chaos [--runs N] [--seed S] [--steps M] [--max-seconds T] [--dir DIR]";

/** The command line, checked. */
interface ChaosArgs {
  runs: number;
  seed: number;
  steps: number;
  maxSeconds: number;
  dir: string | undefined;
}

function parseChaosArgs(args: string[]): ChaosArgs | "help" {
  const { values } = parseArgs({
    args,
    options: {
      runs: { type: "string", default: "1" },
      seed: { type: "string" },
      steps: { type: "string", default: "12" },
      "max-seconds": { type: "string", default: "900" },
      dir: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) return "help";
  const count = (name: string, text: string, min: number) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) {
      throw new RangeError(`--${name}: expected an integer of at least ${min}, got ${text}`);
    }
    return value;
  };
  return {
    runs: count("runs", values.runs, 1),
    // No seed given: one from the clock, printed so the run can be replayed.
    seed: values.seed === undefined ? Date.now() % 2 ** 32 : count("seed", values.seed, 0),
    steps: count("steps", values.steps, 1),
    maxSeconds: count("max-seconds", values["max-seconds"], 1),
    dir: values.dir,
  };
}

async function main(argv: string[]): Promise<number> {
  let args: ChaosArgs | "help";
  try {
    args = parseChaosArgs(argv);
  } catch (error) {
    console.error(`chaos: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args === "help") {
    console.log(USAGE);
    return 0;
  }
  const log = (line: string) => console.log(`[${new Date().toISOString()}] ${line}`);
  const deadline = AbortSignal.timeout(args.maxSeconds * 1000);
  console.log(
    `chaos: seed ${args.seed}, ${args.runs} run(s) of ${args.steps} steps, ` +
      `at most ${args.maxSeconds} s`,
  );
  const runs: ChaosRun[] = [];
  let broken = false;
  for (let index = 0; index < args.runs && !deadline.aborted; index++) {
    const seed = (args.seed + index) % 2 ** 32;
    log(
      `run ${index + 1}/${args.runs}: seed ${seed} ` +
        `(alone: deno task chaos --seed ${seed} --steps ${args.steps})`,
    );
    let run: ChaosRun;
    try {
      run = await runChaos({
        seed,
        steps: args.steps,
        tmpDir: args.dir,
        signal: deadline,
        log,
        onScenario: (scenario) =>
          console.log(
            `scenario of seed ${seed} (save it and run deno task failover --scenario FILE):\n` +
              scenarioJson(scenario),
          ),
      });
    } catch (error) {
      // E.g. the primary a step left running refused the check's connection.
      log(`run ${index + 1} broke off: ${(error as Error).stack ?? error}`);
      broken = true;
      break;
    }
    runs.push(run);
    console.log(`\n${run.report}\n`);
    if (!run.ok) break;
  }
  const record = chaosRecord(runs, "deno task chaos");
  if (broken) record.unexpectedStatus += 1;
  await recordFamily(record);
  const ok = !broken && runs.length > 0 && runs.every((run) => run.ok);
  console.log(
    `chaos: ${runs.length} run(s), ${record.tried} steps, ` +
      `${runs.reduce((sum, run) => sum + run.checks, 0)} checks of every acknowledged row ` +
      `and the bank total; ${record.rowsLost} lost, ${record.unexpectedStatus} failed ` +
      `(seed ${args.seed})\n${ok ? "PASS: nothing acknowledged was lost" : "FAIL"}`,
  );
  return ok ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
