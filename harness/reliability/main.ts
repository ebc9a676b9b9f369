/**
 * @module
 * `deno task reliability-report [--chaos-runs N] [--seed S] [--out FILE]`: runs
 * the long version of every reliability test family and the chaos loop, one
 * after the other, each writing its counts into a fresh directory, then
 * writes `docs/reliability.md` from them. Exits non-zero if any run failed or
 * any failure count is nonzero.
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { REPO_ROOT } from "../_compute.ts";
import type { FamilyRecord } from "./record.ts";
import { allClear, renderReliabilityReport, type RunOutcome, totalsByFamily } from "./render.ts";

/** The test files of the reliability families, run with `RELIABILITY_LONG=1`. */
export const RELIABILITY_TESTS = [
  "tests/integration/validation_test.ts",
  "tests/integration/failed_apply_test.ts",
  "tests/integration/bad_input_test.ts",
  "tests/integration/bad_input_names_test.ts",
  "tests/integration/bad_input_cli_test.ts",
  "tests/integration/fuzz_test.ts",
  "tests/integration/faults_storage_test.ts",
  "tests/integration/faults_control_plane_test.ts",
  "tests/integration/faults_process_test.ts",
  "tests/integration/faults_configure_test.ts",
  "tests/integration/faults_disk_full_test.ts",
  "tests/integration/chaos_test.ts",
  "tests/integration/load_test.ts",
  "tests/integration/least_privilege_test.ts",
  "tests/integration/secrets_in_logs_test.ts",
  "tests/integration/tls_test.ts",
] as const;

async function run(command: string[], env: Record<string, string>): Promise<RunOutcome> {
  const started = performance.now();
  console.log(`$ ${command.join(" ")}`);
  const child = new Deno.Command(command[0], {
    args: command.slice(1),
    cwd: REPO_ROOT,
    env,
    stdin: "null",
  }).spawn();
  const { code } = await child.status;
  return {
    command: command.join(" "),
    exitCode: code,
    seconds: (performance.now() - started) / 1000,
  };
}

async function readRecords(dir: string): Promise<FamilyRecord[]> {
  const records: FamilyRecord[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".json")) continue;
    records.push(JSON.parse(await Deno.readTextFile(join(dir, entry.name))));
  }
  return records.sort((a, b) => a.family.localeCompare(b.family) || a.test.localeCompare(b.test));
}

async function describeMachine(): Promise<string> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "unknown CPU";
  const memory = Deno.systemMemoryInfo();
  const gib = (memory.total / 2 ** 30).toFixed(0);
  return `${Deno.build.os} ${Deno.osRelease()}, ${navigator.hardwareConcurrency} × ${model}, ` +
    `${gib} GiB, Deno ${Deno.version.deno}`;
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      "chaos-runs": { type: "string", default: "5" },
      seed: { type: "string", default: "1" },
      out: { type: "string", default: join(REPO_ROOT, "docs", "reliability.md") },
    },
  });
  const recordsDir = await Deno.makeTempDir({ prefix: "reliability-records-" });
  try {
    const env = { RELIABILITY_OUT: recordsDir, RELIABILITY_LONG: "1" };
    const runs: RunOutcome[] = [];
    for (const file of RELIABILITY_TESTS) {
      runs.push(await run([Deno.execPath(), "test", "-P=test", file], env));
    }
    runs.push(
      await run([
        Deno.execPath(),
        "run",
        "-P=harness",
        "harness/chaos/main.ts",
        "--runs",
        values["chaos-runs"],
        "--seed",
        values.seed,
      ], env),
    );
    const records = await readRecords(recordsDir);
    const page = renderReliabilityReport(records, {
      generatedAt: new Date(),
      machine: await describeMachine(),
      runs,
    });
    await Deno.writeTextFile(values.out, page);
    // The page is checked by `deno fmt --check` like every other file of the repository.
    await run([Deno.execPath(), "fmt", "-q", values.out], {});
    console.log(`wrote ${values.out}`);
    return allClear(totalsByFamily(records), runs) ? 0 : 1;
  } finally {
    await Deno.remove(recordsDir, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
