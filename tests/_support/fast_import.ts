/**
 * @module
 * What the fast_import tests share: a source database with something of
 * everything (several schemas, a few thousand rows, an index, a sequence, a
 * view, a function, an event trigger), a snapshot of a database to compare
 * with it (row count and checksum of every table, the view's and the
 * function's answers, the sequence's state, the indexes), temporary
 * directories the `postgres` OS user owns, and fast_import's command line
 * for the default major's install. fast_import runs `pg_dump`, `pg_restore`
 * and `psql`, which PostgreSQL from npm does not ship: on such an install its
 * tests are ignored, and {@linkcode FAST_IMPORT_MISSING} says why.
 */

import pg from "pg";
import { pgFileOwner } from "../../harness/_processes.ts";
import { type FastImportResult, runFastImport } from "../../harness/fast_import_runner.ts";
import { locatePostgresOnce } from "../../harness/pg_locate.ts";

const INSTALL = await locatePostgresOnce();

/** The default major's programs and libraries (what fast_import gets as its bin and lib dirs). */
export const PG_BIN_DIR = INSTALL.binDir;
export const PG_LIB_DIR = INSTALL.source === "debian"
  ? INSTALL.pkglibdir
  : INSTALL.binDir.replace(/bin$/, "lib");

/** Why fast_import cannot run on this install (the programs it lacks), or undefined. */
export const FAST_IMPORT_MISSING: string | undefined = (() => {
  const missing = ["pg_dump", "pg_restore", "psql"].filter((program) => {
    try {
      return !Deno.statSync(`${PG_BIN_DIR}/${program}`).isFile;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return undefined;
  const reason = `fast_import needs ${missing.join(", ")}, which ${PG_BIN_DIR} lacks ` +
    `(PostgreSQL ${INSTALL.major} from ${INSTALL.source}): its tests are ignored`;
  console.log(reason);
  return reason;
})();

/** A role of the source that logs in with a password (the others are trusted). */
export const SOURCE_ROLE = { name: "importer", password: "right-password" } as const;

/** Runs `sql` (one or more statements) on `url` in a fresh connection; returns the last rows. */
export async function sql(url: string, text: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    const result = await client.query(text);
    const last = Array.isArray(result) ? result.at(-1) : result;
    return last?.rows ?? [];
  } finally {
    await client.end();
  }
}

/** Fills the `postgres` database at `url` (a superuser connection) with the test data. */
export async function populateSource(url: string): Promise<void> {
  await sql(
    url,
    `
    CREATE ROLE ${SOURCE_ROLE.name} LOGIN PASSWORD '${SOURCE_ROLE.password}';
    CREATE SCHEMA sales;
    CREATE SCHEMA inventory;
    CREATE SCHEMA "odd schema";
    CREATE TABLE public.customers (id int PRIMARY KEY, name text NOT NULL, joined date);
    INSERT INTO public.customers
      SELECT g, 'customer ' || g, date '2020-01-01' + g FROM generate_series(1, 3000) g;
    CREATE SEQUENCE sales.invoice_seq START 1000;
    SELECT nextval('sales.invoice_seq') FROM generate_series(1, 42);
    CREATE TABLE sales.orders (
      id bigserial PRIMARY KEY,
      customer_id int REFERENCES public.customers (id),
      amount numeric(12, 2),
      invoice bigint DEFAULT nextval('sales.invoice_seq'),
      note text
    );
    INSERT INTO sales.orders (customer_id, amount, note)
      SELECT 1 + g % 3000, (g * 7 % 1000) / 3.0, repeat('n', g % 50) FROM generate_series(1, 4000) g;
    CREATE INDEX orders_amount_idx ON sales.orders (amount);
    CREATE VIEW sales.customer_totals AS
      SELECT customer_id, count(*) AS orders, sum(amount) AS total
      FROM sales.orders GROUP BY customer_id;
    CREATE TABLE inventory.items (sku text PRIMARY KEY, attrs jsonb, stock int);
    INSERT INTO inventory.items
      SELECT 'sku-' || g, jsonb_build_object('color', g % 7, 'size', g % 3), g % 100
      FROM generate_series(1, 1500) g;
    CREATE TABLE "odd schema"."odd table" ("odd column" int);
    INSERT INTO "odd schema"."odd table" SELECT generate_series(1, 10);
    CREATE FUNCTION sales.order_total(customer int) RETURNS numeric LANGUAGE sql STABLE
      AS 'SELECT coalesce(sum(amount), 0) FROM sales.orders WHERE customer_id = customer';
    CREATE FUNCTION public.log_drops() RETURNS event_trigger LANGUAGE plpgsql
      AS $$ BEGIN RAISE NOTICE 'dropped'; END $$;
    CREATE EVENT TRIGGER log_drops ON sql_drop EXECUTE FUNCTION public.log_drops();
    `,
  );
}

/** Everything the tests compare between the source and where it was imported to. */
export interface Snapshot {
  /** `schema.table` → `rows:md5` of all rows in a fixed order. */
  tables: Record<string, string>;
  view: unknown[];
  functionResult: unknown;
  sequence: unknown;
  indexes: string[];
}

/** A snapshot of the database at `url`. */
export async function snapshot(url: string): Promise<Snapshot> {
  const names = await sql(
    url,
    `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`,
  );
  const tables: Record<string, string> = {};
  for (const { name } of names) {
    const [row] = await sql(
      url,
      `SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))
         AS sum FROM ${name} t`,
    );
    tables[name as string] = row.sum as string;
  }
  return {
    tables,
    view: await sql(url, "SELECT * FROM sales.customer_totals ORDER BY customer_id LIMIT 20"),
    functionResult: (await sql(url, "SELECT sales.order_total(7) AS total"))[0].total,
    sequence: (await sql(url, "SELECT last_value, is_called FROM sales.invoice_seq"))[0],
    indexes: (await sql(
      url,
      `SELECT schemaname || '.' || indexname AS name FROM pg_indexes
       WHERE schemaname IN ('public', 'sales', 'inventory', 'odd schema') ORDER BY 1`,
    )).map((row) => row.name as string),
  };
}

/** How many event triggers the database at `url` has. */
export async function eventTriggerCount(url: string): Promise<number> {
  return Number((await sql(url, "SELECT count(*) AS n FROM pg_event_trigger"))[0].n);
}

/** A temporary directory the `postgres` OS user owns (fast_import runs as that user). */
export async function ownedTempDir(prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  const owner = await pgFileOwner();
  if (owner) await Deno.chown(dir, owner.uid, owner.gid);
  return dir;
}

/** fast_import's flags for `workdir` and the system's PostgreSQL 15, then `rest`. */
export function fastImportArgs(workdir: string, ...rest: string[]): string[] {
  return [
    "--working-directory",
    workdir,
    "--pg-bin-dir",
    PG_BIN_DIR,
    "--pg-lib-dir",
    PG_LIB_DIR,
    ...rest,
  ];
}

/** Runs fast_import as production does (`-P=fast_import`, the `postgres` OS user). */
export function fastImport(
  args: string[],
  options: { denoFlags?: string[] } = {},
): Promise<FastImportResult> {
  return runFastImport({ args, denoFlags: options.denoFlags });
}
