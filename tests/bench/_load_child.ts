/**
 * @module
 * The load generator's process: runs one {@linkcode runLoadHere} with the
 * options given as JSON in the first argument and prints the result as JSON;
 * a failed load prints why on stderr and exits 1.
 */

import { type LoadOptions, runLoadHere } from "./_load.ts";

if (import.meta.main) {
  try {
    const result = await runLoadHere(JSON.parse(Deno.args[0]) as LoadOptions);
    console.log(JSON.stringify(result));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    Deno.exit(1);
  }
}
