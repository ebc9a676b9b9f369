/**
 * @module
 * The process the spec-apply benchmark runs our apply in, as the manager runs
 * it: apart from the harness (whose safekeepers share the measuring process's
 * event loop), like `psql` is. Given {@linkcode ApplyRunOptions} as JSON in the
 * first argument, it applies the spec once on the fresh state (the first
 * apply, startup concurrency) and once more (the re-apply, reconfigure
 * concurrency, with what the first apply left on record, as one manager
 * process would), timing each inside the process so Deno's own start is not
 * counted, and prints {@linkcode ApplyRunResult} as JSON.
 */

import {
  applySpec,
  concurrencyForReconfigure,
  concurrencyForStartup,
} from "../../src/postgres/spec_apply.ts";
import { parseComputeSpecJson } from "../../src/api/parsed_spec.ts";
import type { SettledStore } from "../../src/postgres/settled_databases.ts";

/** What the child is asked to do. */
export interface ApplyRunOptions {
  connstr: string;
  /** A file holding the spec JSON. */
  specPath: string;
  privilegedRoleName: string;
}

/** What the child measured. */
export interface ApplyRunResult {
  firstMs: number;
  firstStatements: number;
  reapplyMs: number;
  reapplyStatements: number;
}

/** Both applies of `options` in this process. */
export async function runApplyHere(options: ApplyRunOptions): Promise<ApplyRunResult> {
  const spec = parseComputeSpecJson(JSON.parse(await Deno.readTextFile(options.specPath)));
  const settled: SettledStore = new Map();
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  const apply = async (concurrency: number) => {
    const started = performance.now();
    const { statementsRun } = await applySpec(options.connstr, spec, {
      privilegedRoleName: options.privilegedRoleName,
      concurrency,
      log: quiet,
      settled,
    });
    return { ms: performance.now() - started, statements: statementsRun };
  };
  const first = await apply(concurrencyForStartup(spec));
  const again = await apply(concurrencyForReconfigure(spec));
  return {
    firstMs: first.ms,
    firstStatements: first.statements,
    reapplyMs: again.ms,
    reapplyStatements: again.statements,
  };
}

if (import.meta.main) {
  try {
    const result = await runApplyHere(JSON.parse(Deno.args[0]) as ApplyRunOptions);
    console.log(JSON.stringify(result));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    Deno.exit(1);
  }
}
