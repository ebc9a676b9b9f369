/**
 * @module
 * The test bodies of the bad-input corpus: the HTTP files against one
 * running compute (a step per file, every case's failures listed at once,
 * then the check that a valid `/configure` still works) and the command-line
 * file, each reporting its counts to the reliability record.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { isExecutable, locatePostgresOnce } from "../../harness/pg_locate.ts";
import { emptyRecord, recordFamily } from "../../harness/reliability/record.ts";
import {
  type BadInputCase,
  type CliExpect,
  type CliRequestSpec,
  isCliCase,
  loadCorpus,
} from "./bad_input.ts";
import { createCliSandbox } from "./bad_input_cli.ts";
import { cliMismatch } from "./bad_input_expect.ts";
import {
  emptyCounts,
  type FailureCounts,
  recover,
  runCorpusCase,
  startRun,
  usableProblems,
} from "./bad_input_runner.ts";
import { startBadInputTarget } from "./bad_input_target.ts";

/** Whether the default install has the `pg_dump` that `/database_schema` runs (npm's has none). */
const HAS_PG_DUMP = isExecutable(join((await locatePostgresOnce()).binDir, "pg_dump"));

/**
 * Whether `item` gets as far as running pg_dump: a `/database_schema` request
 * expected to stream (200) or to find no such database (404, which pg_dump
 * reports). Without pg_dump these are ignored, as a step that says so.
 */
function runsPgDump(item: BadInputCase): boolean {
  const expected = (item.expect as { status?: number }).status;
  return item.entry === "external GET /database_schema" && (expected === 200 || expected === 404);
}

/** The reliability family of the corpus. */
export const CORPUS_FAMILY = "bad-input corpus";

async function record(test: string, counts: FailureCounts): Promise<void> {
  await recordFamily({ ...emptyRecord(CORPUS_FAMILY, test, "inputs"), ...counts });
}

/**
 * Runs the HTTP cases of `files` against one compute, one step per file, in
 * order; a step fails listing every case that went wrong. Records the counts
 * under `test` whatever happens.
 */
export async function runHttpCorpus(
  t: Deno.TestContext,
  files: readonly string[],
  test: string,
): Promise<void> {
  const corpus = (await loadCorpus(files)).filter((loaded) => !isCliCase(loaded.case));
  assert.ok(corpus.length > 0, `no HTTP cases in ${files.join(", ")}`);
  const counts = emptyCounts();
  try {
    await using target = await startBadInputTarget();
    const state = await startRun(target);
    for (const file of files) {
      const cases = corpus.filter((loaded) => loaded.file === file).map((loaded) => loaded.case);
      const withoutPgDump = HAS_PG_DUMP ? [] : cases.filter(runsPgDump);
      await t.step(file, async () => {
        const failures: string[] = [];
        for (const item of cases.filter((item) => !withoutPgDump.includes(item))) {
          const { problems } = await runCorpusCase(target, state, counts, item);
          failures.push(...problems.map((problem) => `${item.name}: ${problem}`));
          await recover(target, state, counts);
        }
        assert.deepEqual(failures, [], `${file}: ${failures.length} failures`);
      });
      if (withoutPgDump.length > 0) {
        await t.step({
          name: `${file}: ${withoutPgDump.length} /database_schema cases need pg_dump, which ` +
            "this install lacks",
          ignore: true,
          fn: () => {},
        });
      }
    }
    await t.step("a valid /configure still works afterwards", async () => {
      assert.deepEqual(await usableProblems(target, state, counts), []);
    });
  } finally {
    await record(test, counts);
  }
}

/** Runs every command-line case; records the counts under `test`. */
export async function runCliCorpus(test: string): Promise<void> {
  const corpus = (await loadCorpus(["cli.json"])).filter((loaded) => isCliCase(loaded.case));
  assert.ok(corpus.length > 0, "no command-line cases");
  const counts = emptyCounts();
  const failures: string[] = [];
  try {
    await using sandbox = await createCliSandbox();
    for (const { case: item } of corpus) {
      counts.tried++;
      const { outcome, vars } = await sandbox.run(item.request as CliRequestSpec);
      // An uncaught exception is a crash, whatever the exit code says.
      if (/\berror: Uncaught\b/.test(outcome.stderr)) counts.crashes++;
      const mismatch = cliMismatch(item.expect as CliExpect, outcome, vars);
      if (mismatch !== undefined) {
        counts.unexpectedStatus++;
        failures.push(`${item.name}: ${mismatch}`);
      }
    }
  } finally {
    await record(test, counts);
  }
  assert.deepEqual(failures, [], `${failures.length} command lines answered otherwise`);
}
