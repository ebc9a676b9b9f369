/**
 * @module
 * Which extensions are installed where: connect to every connectable, valid
 * database (at most 500), read `pg_extension`, and count the databases per
 * (name, version, owned by the bootstrap superuser) combination. The numbers
 * feed `compute_installed_extensions` and the `[NEON_EXT_STAT]` log line.
 */

import { withClient } from "./connect.ts";

/** At most this many databases are scanned, to bound the load. */
export const MAX_DATABASES = 500;

/** The OID of the bootstrap superuser (`cloud_admin` on a compute). */
const BOOTSTRAP_SUPERUSER_OID = 10;

const APPLICATION_NAME = "compute_ctl:get_installed_extensions";

// datconnlimit = -2 marks a database left invalid by an interrupted DROP DATABASE.
const LIST_DATABASES_SQL = `SELECT datname FROM pg_catalog.pg_database
  WHERE datallowconn AND datconnlimit <> -2 LIMIT ${MAX_DATABASES}`;
const LIST_EXTENSIONS_SQL =
  "SELECT extname, extversion, extowner::integer AS extowner FROM pg_catalog.pg_extension";

/** One (extension, version, owner kind) combination and how many databases have it. */
export interface InstalledExtension {
  extname: string;
  version: string;
  n_databases: number;
  /** `"1"` when the bootstrap superuser owns it, else `"0"`. */
  owned_by_superuser: "0" | "1";
}

/** The reference's `InstalledExtensions` body, as logged after `[NEON_EXT_STAT]`. */
export interface InstalledExtensions {
  extensions: InstalledExtension[];
}

/** One row of `pg_extension` as the scan reads it. */
export interface ExtensionRow {
  extname: string;
  extversion: string;
  extowner: number;
}

/**
 * Counts, per (name, version, owned-by-superuser), the databases whose rows
 * contain it; `perDatabase` holds one array of rows per database. Pure.
 */
export function aggregateExtensions(perDatabase: readonly ExtensionRow[][]): InstalledExtensions {
  const byKey = new Map<string, InstalledExtension>();
  for (const rows of perDatabase) {
    for (const row of rows) {
      const owned = row.extowner === BOOTSTRAP_SUPERUSER_OID ? "1" : "0";
      const key = JSON.stringify([row.extname, row.extversion, owned]);
      const entry = byKey.get(key);
      if (entry) entry.n_databases += 1;
      else {
        byKey.set(key, {
          extname: row.extname,
          version: row.extversion,
          n_databases: 1,
          owned_by_superuser: owned,
        });
      }
    }
  }
  return { extensions: [...byKey.values()] };
}

/**
 * Scans the databases of the Postgres at `connstr` one after the other and
 * returns the aggregate. Any connection or query failure fails the whole scan.
 */
export async function getInstalledExtensions(connstr: string): Promise<InstalledExtensions> {
  const databases = await withClient(connstr, { applicationName: APPLICATION_NAME }, async (c) => {
    const result = await c.query<{ datname: string }>(LIST_DATABASES_SQL);
    return result.rows.map((row) => row.datname);
  });
  const perDatabase: ExtensionRow[][] = [];
  for (const database of databases) {
    perDatabase.push(
      await withClient(connstr, { applicationName: APPLICATION_NAME, database }, async (c) => {
        return (await c.query<ExtensionRow>(LIST_EXTENSIONS_SQL)).rows;
      }),
    );
  }
  return aggregateExtensions(perDatabase);
}
