/**
 * @module
 * `deno task bench [--quick] [--enforce] [--render] [--only NAME[,NAME]] [--out-dir DIR]`:
 * runs the benchmarks of {@linkcode BENCHMARKS} one after the other, each in
 * its own scratch directory, prints each result table and the targets, and
 * writes `benchmarks.json`, `benchmarks.md` and the phase charts to `docs/`
 * (or `--out-dir`). Exits 1 when a benchmark threw (after writing what
 * finished), 2 with `--enforce` when a target was missed, 0 otherwise: a
 * timing never fails CI unless someone asks for it.
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { defaultPgbin, REPO_ROOT } from "../../harness/cluster.ts";
import { stopDescendants } from "./_descendants.ts";
import { describeMachine } from "./_machine.ts";
import {
  type BenchFailure,
  type BenchReport,
  chartFileName,
  formatNumber,
  renderMarkdown,
  renderPhasesSvg,
  renderResultTable,
  renderTargets,
} from "./_render.ts";
import type { Benchmark, BenchResult } from "./_types.ts";

/** Every benchmark, in the order they run; adding one is one line. */
export const BENCHMARKS: { name: string; load: () => Promise<{ benchmark: Benchmark }> }[] = [
  { name: "cold_start", load: () => import("./cold_start.ts") },
  { name: "pooled_start", load: () => import("./pooled_start.ts") },
  { name: "reconfigure", load: () => import("./reconfigure.ts") },
  { name: "spec_apply", load: () => import("./spec_apply.ts") },
  { name: "http", load: () => import("./http.ts") },
  { name: "memory", load: () => import("./memory.ts") },
  { name: "failover", load: () => import("./failover.ts") },
];

/** Repetitions of each measurement, full run and `--quick`. */
const REPETITIONS = { full: 5, quick: 2 };

/** What the command line asks for. */
export interface BenchArgs {
  quick: boolean;
  enforce: boolean;
  only: string[] | undefined;
  outDir: string;
  /** `--render`: measure nothing; write `benchmarks.md` again from `benchmarks.json` (and the history). */
  render: boolean;
}

/** Parses the command line; throws on an unknown flag or benchmark name. */
export function parseBenchArgs(args: string[]): BenchArgs {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      quick: { type: "boolean", default: false },
      enforce: { type: "boolean", default: false },
      render: { type: "boolean", default: false },
      only: { type: "string" },
      "out-dir": { type: "string", default: join(REPO_ROOT, "docs") },
    },
  });
  const only = values.only?.split(",").map((name) => name.trim()).filter(Boolean);
  const unknown = only?.filter((name) => !BENCHMARKS.some((entry) => entry.name === name)) ?? [];
  if (unknown.length > 0) {
    throw new Error(
      `unknown benchmark ${unknown.join(", ")}; known: ${BENCHMARKS.map((b) => b.name).join(", ")}`,
    );
  }
  return {
    quick: values.quick,
    enforce: values.enforce,
    only,
    outDir: values["out-dir"],
    render: values.render,
  };
}

/** Runs the selected benchmarks, writes the report and returns the exit code. */
export async function runBenchmarks(args: BenchArgs): Promise<number> {
  if (args.render) {
    const json = await Deno.readTextFile(join(args.outDir, "benchmarks.json"));
    await writeReport(JSON.parse(json) as BenchReport, args.outDir);
    console.log(`wrote ${join(args.outDir, "benchmarks.md")} from benchmarks.json`);
    return 0;
  }
  const selected = BENCHMARKS.filter((entry) => !args.only || args.only.includes(entry.name));
  const repetitions = args.quick ? REPETITIONS.quick : REPETITIONS.full;
  const results: BenchResult[] = [];
  const failures: BenchFailure[] = [];
  let workDir: string | undefined;
  const interrupted = async () => {
    console.error("[bench] interrupted: stopping what the running benchmark started");
    await stopDescendants();
    if (workDir) await Deno.remove(workDir, { recursive: true }).catch(() => {});
    Deno.exit(130);
  };
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const signal of signals) Deno.addSignalListener(signal, interrupted);
  for (const entry of selected) {
    // Processes a benchmark starts run as another user and may keep files here.
    workDir = await Deno.makeTempDir({ prefix: `bench-${entry.name}-` });
    await Deno.chmod(workDir, 0o711);
    const started = performance.now();
    try {
      const { benchmark } = await entry.load();
      const result = await benchmark({
        quick: args.quick,
        repetitions,
        workDir,
        log: (message) => console.error(`[bench] ${message}`),
      });
      results.push(result);
      const seconds = Math.round((performance.now() - started) / 100) / 10;
      console.log(`\n## ${result.name} (${seconds} s)\n\n${renderResultTable(result)}\n`);
    } catch (error) {
      const message = error instanceof Error ? error.stack ?? error.message : String(error);
      failures.push({ name: entry.name, error: message });
      console.error(`[bench] ${entry.name} failed: ${message}`);
    } finally {
      const leftBehind = await stopDescendants();
      if (leftBehind.length > 0) {
        console.error(
          `[bench] ${entry.name} left pids ${leftBehind.join(", ")} running; ended them`,
        );
      }
      await Deno.remove(workDir, { recursive: true }).catch(() => {});
      workDir = undefined;
    }
  }
  for (const signal of signals) Deno.removeSignalListener(signal, interrupted);

  const report: BenchReport = {
    generated: new Date().toISOString(),
    machine: await describeMachine(await defaultPgbin()),
    quick: args.quick,
    benchmarks: results,
    failures,
    targets: results.flatMap((result) => result.targets),
  };
  await writeReport(report, args.outDir);
  console.log(`\n## Targets\n\n${renderTargets(report.targets)}\n`);
  for (const t of report.targets) {
    const bound = `${t.kind === "max" ? "<=" : ">="} ${formatNumber(t.target)}`;
    console.log(
      `target ${t.name}: ${formatNumber(t.value)} ${t.unit} (${bound}) ${t.met ? "met" : "MISSED"}`,
    );
  }
  console.log(`\nwrote ${join(args.outDir, "benchmarks.json")} and benchmarks.md`);

  if (failures.length > 0) return 1;
  if (args.enforce && report.targets.some((t) => !t.met)) return 2;
  return 0;
}

/** Writes `benchmarks.json`, one SVG per benchmark with phases, and `benchmarks.md`. */
async function writeReport(report: BenchReport, outDir: string): Promise<void> {
  await Deno.mkdir(outDir, { recursive: true });
  await Deno.writeTextFile(
    join(outDir, "benchmarks.json"),
    JSON.stringify(report, (_key, value) => Number.isNaN(value) ? null : value, 2) + "\n",
  );
  const charts: Record<string, string> = {};
  for (const result of report.benchmarks) {
    if (!result.phases) continue;
    charts[result.name] = chartFileName(result.name);
    await Deno.writeTextFile(join(outDir, charts[result.name]), renderPhasesSvg(result.phases));
  }
  const history = await Deno.readTextFile(join(outDir, "benchmarks_history.md")).catch(
    (error) => {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    },
  );
  await Deno.writeTextFile(
    join(outDir, "benchmarks.md"),
    renderMarkdown(report, { charts, history }),
  );
  await formatWritten([
    join(outDir, "benchmarks.json"),
    join(outDir, "benchmarks.md"),
    ...Object.values(charts).map((chart) => join(outDir, chart)),
  ]);
}

/** `deno fmt` of the report files, so a regenerated report keeps `deno task check` clean. */
async function formatWritten(paths: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "-q", ...paths],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`deno fmt failed: ${new TextDecoder().decode(stderr)}`);
}

if (import.meta.main) {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(Deno.args);
  } catch (error) {
    console.error(`bench: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
  Deno.exit(await runBenchmarks(args));
}
