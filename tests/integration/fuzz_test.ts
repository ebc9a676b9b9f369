/**
 * Fuzzing a running compute with fast-check: random specs (edits of the valid
 * `/configure` body: wrong types, missing fields, hostile role, database and
 * setting names and values) and random HTTP requests to both servers
 * (methods, paths with traversal and encoded slashes, query strings,
 * credentials, content types, bodies). After each, the corpus invariants
 * hold: the manager is alive and `running`, the catalog changed only if the
 * request was accepted (and then as the spec says), nothing was served
 * without valid credentials, and no 5xx came back but the documented ones.
 * Runs and time are bounded (`scaled`); the seed is `FUZZ_SEED` or a fixed
 * default, printed on failure; a failure is shrunk and saved in
 * `fixtures/bad_input/fuzz_found/` for the corpus tests to replay.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { emptyRecord, recordFamily, scaled } from "../../harness/reliability/record.ts";
import { fuzzedRequest, fuzzedSpec, type FuzzInput } from "../_support/bad_input_arbitraries.ts";
import {
  type FuzzContext,
  fuzzProperty,
  fuzzSeed,
  saveFoundCase,
} from "../_support/bad_input_fuzz.ts";
import { emptyCounts, startRun, usableProblems } from "../_support/bad_input_runner.ts";
import { startBadInputTarget } from "../_support/bad_input_target.ts";

const FAMILY = "fuzzing";

/** Runs one property against a fresh compute; records and asserts its outcome. */
async function fuzz(
  test: string,
  arbitrary: fc.Arbitrary<FuzzInput>,
  { numRuns, timeLimitMs }: { numRuns: number; timeLimitMs: number },
): Promise<void> {
  const seed = fuzzSeed();
  const counts = emptyCounts();
  const failures: string[] = [];
  try {
    await using target = await startBadInputTarget();
    const context: FuzzContext = {
      target,
      state: await startRun(target),
      counts,
      answers: new Map(),
    };
    const details = await fc.check<[FuzzInput]>(fuzzProperty(arbitrary, context), {
      numRuns,
      seed,
      plugins: [fc.interruptAfterTimeLimit(timeLimitMs)],
    });
    await context.inFlight;
    // fast-check's shrunk counterexample; else (the time limit cut its report short) the
    // smallest failing input shrinking had reached.
    const found = details.failed && details.counterexample !== null
      ? { input: details.counterexample[0], why: errorText(details.errorInstance) }
      : context.lastFailure;
    if (found !== undefined) {
      const saved = await saveFoundCase(found.input, found.why);
      failures.push(
        `seed ${seed} (FUZZ_SEED=${seed} to replay), ${details.numShrinks} shrinks: ${found.why}\n` +
          `input: ${JSON.stringify(found.input.request)}\nsaved as ${saved}`,
      );
    } else if (details.failed) {
      failures.push(`seed ${seed}: fast-check failed: ${errorText(details.errorInstance)}`);
    }
    failures.push(...await usableProblems(target, context.state, counts));
    if (failures.length > 0) {
      // The harness polls /status all the time: those lines say nothing.
      const log = (await target.compute.readLog()).split("\n")
        .filter((line) => !/method=GET path=\/status status=200/.test(line));
      failures.push(`end of compute.log (without /status polls):\n${log.slice(-40).join("\n")}`);
    }
    const answers = [...context.answers].sort().map(([status, n]) => `${status}×${n}`);
    console.log(`${test}: ${details.numRuns} runs, seed ${seed}, answers ${answers.join(" ")}`);
  } finally {
    await recordFamily({ ...emptyRecord(FAMILY, test, "inputs"), ...counts });
  }
  assert.deepEqual(failures, []);
  assert.ok(counts.tried > 0, "nothing was tried");
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

Deno.test("fuzzing: random specs against a running compute", async () => {
  await fuzz("random specs", fuzzedSpec, {
    numRuns: scaled(100, 3000),
    timeLimitMs: scaled(15_000, 900_000),
  });
});

Deno.test("fuzzing: random HTTP requests against a running compute", async () => {
  await fuzz("random HTTP requests", fuzzedRequest, {
    numRuns: scaled(250, 5000),
    timeLimitMs: scaled(15_000, 900_000),
  });
});
