/**
 * @module
 * The load generator's process: runs {@linkcode runLoadHere} for each of the
 * load runs given as a JSON list in the first argument, one after the other,
 * and prints the list of results as JSON; a failed load prints why on stderr
 * and exits 1.
 */

import { type LoadOptions, runLoadHere } from "./_load.ts";

if (import.meta.main) {
  try {
    const results = [];
    for (const options of JSON.parse(Deno.args[0]) as LoadOptions[]) {
      results.push(await runLoadHere(options));
    }
    console.log(JSON.stringify(results));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    Deno.exit(1);
  }
}
