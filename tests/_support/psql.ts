/**
 * @module
 * Where a `psql` is, if this machine has one: on `PATH`, else in Debian's
 * PostgreSQL installs (newest major first). PostgreSQL from npm ships none, so
 * tests that use psql to show libpq's behaviour check the same thing with
 * node-postgres when it is missing, and say so.
 */

import { join } from "node:path";
import { isExecutable } from "../../harness/pg_locate.ts";

/** The first `psql` found, or undefined. */
export function findPsql(): string | undefined {
  const path = Deno.env.get("PATH") ?? "";
  for (const dir of path.split(":").filter((dir) => dir !== "")) {
    if (isExecutable(join(dir, "psql"))) return join(dir, "psql");
  }
  for (const major of [17, 16, 15, 14]) {
    const psql = `/usr/lib/postgresql/${major}/bin/psql`;
    if (isExecutable(psql)) return psql;
  }
  return undefined;
}

/** {@linkcode findPsql}, once per process; logs when there is none. */
export const PSQL: string | undefined = findPsql();
if (PSQL === undefined) {
  console.log("no psql on this machine: libpq checks run through node-postgres instead");
}
