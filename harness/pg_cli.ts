/**
 * @module
 * `deno task pg [--pg N] [--source debian|npm]`: finds the PostgreSQL install
 * the harness would use for major N (making the npm package's library links
 * on first use) and prints it as JSON (`major`, `source`, `binDir`, `pgbin`,
 * `sharedir`, `pkglibdir`). Exits 1 with the reason when there is none.
 */

import { parseArgs } from "node:util";
import { defaultPgMajor, locatePostgres, parsePgMajor, type PgSource } from "./pg_locate.ts";

try {
  const { values } = parseArgs({
    args: Deno.args,
    options: { pg: { type: "string" }, source: { type: "string" } },
  });
  const source = values.source;
  if (source !== undefined && source !== "debian" && source !== "npm") {
    throw new Error(`--source must be "debian" or "npm", not ${JSON.stringify(source)}`);
  }
  const major = values.pg === undefined ? defaultPgMajor() : parsePgMajor(values.pg);
  const location = await locatePostgres(major, { source: source as PgSource | undefined });
  console.log(JSON.stringify(location, null, 2));
} catch (error) {
  console.error(`pg: ${error instanceof Error ? error.message : String(error)}`);
  Deno.exit(1);
}
