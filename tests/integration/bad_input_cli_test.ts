/**
 * The command-line cases of the bad-input corpus (`fixtures/bad_input/cli.json`):
 * the manager started as the harness starts it (as `postgres`, `-P=compute`)
 * with bad flags or a bad `--config` file exits with the expected code and
 * error lines, and never with an uncaught exception.
 */

import { runCliCorpus } from "../_support/bad_input_suite.ts";

Deno.test("bad-input corpus: bad command lines and config files", async () => {
  await runCliCorpus("command lines");
});
