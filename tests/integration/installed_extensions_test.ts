/**
 * The installed-extensions scan against real Postgres: every connectable,
 * valid database is read; a database that forbids connections is skipped;
 * extensions are told apart by version and by whether the bootstrap
 * superuser owns them.
 */

import assert from "node:assert/strict";
import { getInstalledExtensions } from "../../src/postgres/installed_extensions.ts";
import { startLocalPostgres } from "../_support/local_postgres.ts";
import { query } from "./_helpers.ts";

Deno.test("the scan counts databases per extension, version and owner kind", async () => {
  await using pg = await startLocalPostgres();
  const url = (database: string) => pg.connstr.replace(/\/postgres$/, `/${database}`);
  await query(pg.connstr, "CREATE ROLE bob");
  await query(pg.connstr, "CREATE DATABASE a");
  await query(pg.connstr, "CREATE DATABASE b OWNER bob");
  await query(pg.connstr, "CREATE DATABASE closed ALLOW_CONNECTIONS false");
  await query(url("a"), "CREATE EXTENSION pg_trgm");
  // pg_trgm is trusted: bob may create it in his database, and then owns it.
  await query(url("b"), "SET ROLE bob; CREATE EXTENSION pg_trgm");

  const { extensions } = await getInstalledExtensions(pg.connstr);
  const sorted = extensions.toSorted((x, y) =>
    `${x.extname}${x.owned_by_superuser}`.localeCompare(`${y.extname}${y.owned_by_superuser}`)
  );
  const [{ extversion }] = await query<{ extversion: string }>(
    url("a"),
    "SELECT extversion FROM pg_extension WHERE extname = 'pg_trgm'",
  );
  assert.deepEqual(sorted, [
    { extname: "pg_trgm", version: extversion, n_databases: 1, owned_by_superuser: "0" },
    { extname: "pg_trgm", version: extversion, n_databases: 1, owned_by_superuser: "1" },
    // postgres, template1, a, b: not template0 nor `closed` (no connections allowed).
    { extname: "plpgsql", version: "1.0", n_databases: 4, owned_by_superuser: "1" },
  ]);
});
