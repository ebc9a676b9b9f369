/**
 * @module
 * Asking the running Postgres what it thinks of a configuration before it
 * takes it: which setting names it does not know, and which lines of the
 * `postgresql.conf` now on disk it would refuse (`pg_file_settings`, which
 * reads the file afresh without applying it). A reconfiguration checks the
 * file it wrote before the reload, so a value Postgres refuses fails the
 * reconfiguration instead of being skipped at the reload and stopping the next
 * start.
 */

import type pg from "pg";
import { withClient } from "./connect.ts";

const APPLICATION_NAME = "compute_ctl:check_config";

/** What `pg_file_settings` reports for a change that needs a restart, and for a bad value. */
const NOT_APPLIED = "setting could not be applied";

/** A line of the configuration files that Postgres would refuse. */
export interface ConfFileError {
  file: string | null;
  line: number | null;
  name: string | null;
  value: string | null;
  error: string;
}

/**
 * The entries of the configuration files that Postgres would refuse at a
 * reload. A parameter that can only change at a restart is reported by
 * Postgres with the same text whether its new value is good or bad; those
 * are left out (the value takes effect at the next start, as in Neon).
 */
export async function confFileErrors(connstr: string): Promise<ConfFileError[]> {
  return await withClient(connstr, { applicationName: APPLICATION_NAME }, async (client) => {
    const result = await client.query<ConfFileError>(
      `SELECT f.sourcefile AS file, f.sourceline AS line, f.name, f.setting AS value, f.error
         FROM pg_catalog.pg_file_settings f
         LEFT JOIN pg_catalog.pg_settings s ON s.name = pg_catalog.lower(f.name)
        WHERE f.error IS NOT NULL
          AND NOT (f.error = $1 AND s.context = 'postmaster')
        ORDER BY f.seqno`,
      [NOT_APPLIED],
    );
    return result.rows;
  });
}

/** Renders a refused entry: `postgresql.conf line 40: setting could not be applied (work_mem = lots)`. */
export function describeConfFileError(entry: ConfFileError): string {
  const file = entry.file?.split("/").at(-1) ?? "postgresql.conf";
  const where = entry.line === null ? file : `${file} line ${entry.line}`;
  const what = entry.name === null ? "" : ` (${entry.name} = ${entry.value ?? ""})`;
  return `${where}: ${entry.error}${what}`;
}

/**
 * Of `names` (setting names without a `.`, which Postgres never takes as
 * custom settings), those the server at `client` does not have, in order.
 */
export async function unknownSettingNames(
  client: pg.Client,
  names: readonly string[],
): Promise<string[]> {
  const plain = [...new Set(names.filter((name) => !name.includes(".")))];
  if (plain.length === 0) return [];
  const result = await client.query<{ name: string }>(
    "SELECT pg_catalog.lower(n) AS name FROM pg_catalog.unnest($1::text[]) AS n " +
      "WHERE pg_catalog.lower(n) NOT IN (SELECT name FROM pg_catalog.pg_settings)",
    [plain],
  );
  const unknown = new Set(result.rows.map((row) => row.name));
  return plain.filter((name) => unknown.has(name.toLowerCase()));
}
