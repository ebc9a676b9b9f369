/**
 * @module
 * Installing or updating one extension in one database on request (the
 * internal `POST /extensions`): nothing when the wanted version is installed,
 * `ALTER EXTENSION … UPDATE TO` when another one is, `CREATE EXTENSION … WITH
 * SCHEMA public VERSION` when none is. Name and version are both quoted as
 * identifiers, as Neon does (neon-03 §3.10).
 */

import type { ExtensionInstallRequest } from "../api/catalog.ts";
import { quoteIdent } from "./sql_quote.ts";
import { queryOrExplain, withClient } from "./connect.ts";

/** The installed version of an extension, read before deciding what to run. */
export const INSTALLED_VERSION_SQL =
  "SELECT extversion FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) $1";

/**
 * The statement that brings `extension` to `version` given the `installed`
 * version (null when absent), or null when nothing needs to run.
 */
export function extensionInstallSql(
  extension: string,
  version: string,
  installed: string | null,
): string | null {
  if (installed === version) return null;
  if (installed !== null) {
    return `ALTER EXTENSION ${quoteIdent(extension)} UPDATE TO ${quoteIdent(version)}`;
  }
  return `CREATE EXTENSION IF NOT EXISTS ${quoteIdent(extension)} WITH SCHEMA public VERSION ${
    quoteIdent(version)
  }`;
}

/**
 * Connects to `request.database` and installs or updates the extension;
 * returns the version installed afterwards. Throws `Failed to connect to the
 * database` or `Failed to execute query: <sql>` (the driver error as `cause`).
 */
export async function installExtension(
  connstr: string,
  { extension, database, version }: ExtensionInstallRequest,
): Promise<string> {
  return await withClient(connstr, {
    applicationName: "compute_ctl:install_extension",
    database,
    connectError: "Failed to connect to the database",
    forwardDdl: true,
  }, async (client) => {
    const result = await queryOrExplain<{ extversion: string }>(
      client,
      INSTALLED_VERSION_SQL,
      [extension],
    );
    const installed = result.rows[0]?.extversion ?? null;
    const sql = extensionInstallSql(extension, version, installed);
    if (sql !== null) await queryOrExplain(client, sql);
    return version;
  });
}
