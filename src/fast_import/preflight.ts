/**
 * @module
 * Before anything is created: fast_import connects to the source (and, for
 * `dump-restore`, the destination) with `psql` and reads its catalog. An
 * unreachable server or a wrong password fails here with the server's own
 * words; a source newer than pg_dump is refused; and a destination that
 * already has any of the source's schemas or relations is refused, because
 * pg_restore would fail on those objects but go on and mix the source's rows
 * into the existing tables. Neon's fast_import has no such step (its pg_dump
 * and pg_restore find out). The table count and size are the dump's totals.
 */

import { z } from "zod";
import { runCaptured } from "./_child.ts";
import { psqlArgs } from "./command_lines.ts";

/** What the preflight reads from a database. */
export interface DatabaseCatalog {
  serverVersionNum: number;
  /** Schemas that are not Postgres's own or an extension's. */
  schemas: string[];
  /** `[schema, name]` of every table, view, materialized view, sequence and foreign table. */
  relations: [string, string][];
  /** Plain tables (what pg_dump dumps data of). */
  tables: number;
  /** Their size on disk (`pg_table_size`): heap, TOAST, free space and visibility maps. */
  tableBytes: number;
}

/** The database cannot be used as the source or destination. */
export class PreflightError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PreflightError";
  }
}

/** One statement answering the catalog as a single JSON value. */
export const CATALOG_QUERY = `
WITH user_namespaces AS (
  SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_(toast|temp_)'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
      WHERE d.classid = 'pg_catalog.pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
), user_relations AS (
  SELECT ns.nspname, c.relname, c.relkind, c.oid FROM pg_catalog.pg_class c
  JOIN user_namespaces ns ON ns.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
)
SELECT pg_catalog.json_build_object(
  'server_version_num', pg_catalog.current_setting('server_version_num')::int,
  'schemas', (SELECT coalesce(pg_catalog.json_agg(nspname ORDER BY nspname), '[]')
    FROM user_namespaces),
  'relations', (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(nspname, relname)
    ORDER BY nspname, relname), '[]') FROM user_relations),
  'tables', (SELECT count(*) FROM user_relations WHERE relkind = 'r'),
  'table_bytes', (SELECT coalesce(sum(pg_catalog.pg_table_size(oid)), 0)
    FROM user_relations WHERE relkind = 'r')
)`;

const catalogSchema = z.object({
  server_version_num: z.number().int(),
  schemas: z.array(z.string()),
  relations: z.array(z.tuple([z.string(), z.string()])),
  tables: z.number().int(),
  table_bytes: z.number(),
});

/** The catalog from the JSON {@linkcode CATALOG_QUERY} printed. */
export function parseCatalog(text: string): DatabaseCatalog {
  const parsed = catalogSchema.parse(JSON.parse(text));
  return {
    serverVersionNum: parsed.server_version_num,
    schemas: parsed.schemas,
    relations: parsed.relations,
    tables: parsed.tables,
    tableBytes: parsed.table_bytes,
  };
}

/**
 * What the destination already has of the source: schemas other than `public`
 * (which every database has, and pg_dump does not create) and relations, as
 * `schema sales` and `sales.orders`.
 */
export function findConflicts(source: DatabaseCatalog, destination: DatabaseCatalog): string[] {
  const schemas = new Set(destination.schemas);
  const relations = new Set(destination.relations.map(([schema, name]) => `${schema}.${name}`));
  return [
    ...source.schemas.filter((name) => name !== "public" && schemas.has(name))
      .map((name) => `schema ${name}`),
    ...source.relations.map(([schema, name]) => `${schema}.${name}`)
      .filter((name) => relations.has(name)),
  ];
}

/** The refusal for a destination that has `conflicts`. */
export function conflictMessage(conflicts: readonly string[]): string {
  const shown = conflicts.slice(0, 5).join(", ");
  const more = conflicts.length > 5 ? `, and ${conflicts.length - 5} more` : "";
  return `the destination already has ${conflicts.length} of the source's schemas and ` +
    `relations (${shown}${more}): pg_restore would fail on them and add the source's rows to ` +
    `the existing tables; restore into a database that has none of them`;
}

/** The refusal for a source newer than pg_dump, or null. */
export function sourceVersionProblem(serverVersionNum: number, pgDumpMajor: number): string | null {
  const major = Math.floor(serverVersionNum / 10000);
  if (major <= pgDumpMajor) return null;
  return `the source runs PostgreSQL ${major}, which pg_dump ${pgDumpMajor} cannot dump: ` +
    `use a --pg-bin-dir of PostgreSQL ${major} or later`;
}

/** How long psql waits for a server to answer (unless the connection string says otherwise). */
const CONNECT_TIMEOUT_SECONDS = "10";

/**
 * Connects to `connstr` with the `psql` at `psql` and reads its catalog;
 * throws {@linkcode PreflightError} naming the `role` (`source`,
 * `destination`) and psql's own message when it cannot connect or read.
 */
export async function inspectDatabase(
  { psql, env, connstr, role }: {
    psql: string;
    env: Record<string, string>;
    connstr: string;
    role: "source" | "destination";
  },
): Promise<DatabaseCatalog> {
  const output = await runCaptured(psql, psqlArgs(connstr, CATALOG_QUERY), {
    ...env,
    PGCONNECT_TIMEOUT: CONNECT_TIMEOUT_SECONDS,
  });
  const message = output.stderr.replace(/^psql: error: /, "").replace(/\s*\n\s*/g, " ").trim();
  if (output.code === 2) {
    throw new PreflightError(`cannot connect to the ${role} database: ${message}`);
  }
  if (output.code !== 0) {
    throw new PreflightError(`cannot read the catalog of the ${role} database: ${message}`);
  }
  try {
    return parseCatalog(output.stdout.trim());
  } catch (error) {
    throw new PreflightError(
      `cannot read the catalog of the ${role} database: ${(error as Error).message}`,
    );
  }
}
