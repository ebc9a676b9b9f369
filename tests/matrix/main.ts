/**
 * `deno task test-matrix [--pg 14,15,16,17]`: the core lifecycle integration
 * tests once per PostgreSQL major, one major after another (each run sets
 * `DEFAULT_PG_VERSION`, which picks the harness's install: Debian's when
 * present, else npm's). The files of one major run in parallel (`--parallel`:
 * a worker per core), which halves the wall time: most of it is spent waiting
 * on Postgres and the network. Prints each major's Deno summary and its time, then
 * one line per major; exits 1 if any major failed.
 */

import { parseArgs } from "node:util";
import { parsePgMajor, type PgMajor, SUPPORTED_PG_MAJORS } from "../../harness/pg_locate.ts";

/** The scenarios every major must pass: start, configure, storage moves, stop, apply, migrate. */
export const MATRIX_TESTS = [
  "tests/integration/pg_major_test.ts",
  "tests/integration/lifecycle_test.ts",
  "tests/integration/configure_test.ts",
  "tests/integration/change_pageserver_test.ts",
  "tests/integration/refresh_test.ts",
  "tests/integration/terminate_test.ts",
  "tests/integration/spec_apply_test.ts",
  "tests/integration/migrations_test.ts",
] as const;

interface MajorResult {
  major: PgMajor;
  passed: boolean;
  summary: string;
  seconds: number;
}

/** Runs the matrix's tests on `major`; `check` type-checks them first (once per matrix is enough). */
async function runMajor(major: PgMajor, check: boolean): Promise<MajorResult> {
  console.log(`\n=== PostgreSQL ${major} ===`);
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-P=test", "--parallel", ...(check ? [] : ["--no-check"]), ...MATRIX_TESTS],
    env: { DEFAULT_PG_VERSION: String(major), NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let tail = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    Deno.stdout.writeSync(chunk);
    tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
  }
  const summary = /^(ok|FAILED) \| .*$/m.exec(tail)?.[0] ?? "";
  const status = await child.status;
  const seconds = (performance.now() - started) / 1000;
  return { major, passed: status.success, summary: summary || `exit ${status.code}`, seconds };
}

function majorsFrom(text: string | undefined): PgMajor[] {
  if (text === undefined) return [...SUPPORTED_PG_MAJORS];
  return text.split(",").map(parsePgMajor);
}

if (import.meta.main) {
  let majors: PgMajor[];
  try {
    const { values } = parseArgs({ args: Deno.args, options: { pg: { type: "string" } } });
    majors = majorsFrom(values.pg);
  } catch (error) {
    console.error(`test-matrix: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(2);
  }
  const started = performance.now();
  const results: MajorResult[] = [];
  for (const major of majors) results.push(await runMajor(major, results.length === 0));
  console.log("\n=== matrix ===");
  for (const result of results) {
    const verdict = result.passed ? "PASS" : "FAIL";
    console.log(
      `PostgreSQL ${result.major}: ${verdict} (${result.summary}) in ${
        result.seconds.toFixed(0)
      } s`,
    );
  }
  const total = (performance.now() - started) / 1000;
  const failed = results.filter((result) => !result.passed).length;
  console.log(
    `matrix: ${results.length - failed} of ${results.length} majors passed in ${
      total.toFixed(0)
    } s`,
  );
  Deno.exit(failed === 0 ? 0 : 1);
}
