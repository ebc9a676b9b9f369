/**
 * The bad-input corpus (`fixtures/bad_input/`) against one running compute:
 * every `/configure` body, every other route of both servers, the routers
 * and the JWT check, plus whatever fuzzing saved in `fuzz_found/`. Each case
 * gets its exact answer, and after each the manager is alive, still
 * `running`, and its catalog is unchanged unless the input was valid (then it
 * is applied exactly); at the end a valid `/configure` still works.
 */

import { corpusFiles } from "../_support/bad_input.ts";
import { runHttpCorpus } from "../_support/bad_input_suite.ts";

/** The HTTP files this test runs; `names.json` has its own compute (`bad_input_names_test.ts`). */
const FILES = ["configure.json", "http_routes.json", "jwt.json"];

Deno.test("bad-input corpus: HTTP cases against a running compute", async (t) => {
  const found = (await corpusFiles()).filter((file) => file.startsWith("fuzz_found/"));
  await runHttpCorpus(t, [...FILES, ...found], "http routes, auth and fuzz finds");
});
