/**
 * @module
 * The catalog operations the HTTP API offers on a compute: reading roles and
 * databases, dumping a database's schema, the slowest statements, and, on the
 * internal port, installing an extension and granting schema privileges.
 * Each checks the compute's status where the reference does (`running` only,
 * else {@linkcode InvalidStatusError}) and words its errors as the reference's
 * responses do.
 */

import type {
  CatalogObjects,
  ExtensionInstallRequest,
  ExtensionInstallResponse,
  SetRoleGrantsRequest,
  SetRoleGrantsResponse,
} from "../api/catalog.ts";
import { causeChain } from "../cause_chain.ts";
import { errorMessage, getLogger } from "../log.ts";
import { listCatalogObjects, topStatements } from "../postgres/catalog_queries.ts";
import { installExtension as installPgExtension } from "../postgres/extensions.ts";
import { grantSchemaPrivileges } from "../postgres/grants.ts";
import { dumpSchema, SchemaDumpError } from "../postgres/pg_dump.ts";
import type { ComputeNode } from "./node.ts";
import { InvalidStatusError } from "./state.ts";

const log = getLogger("compute");

/** Throws {@linkcode InvalidStatusError} unless the compute is `running`. */
export function requireRunning(node: ComputeNode): void {
  const status = node.state.status;
  if (status !== "running") throw new InvalidStatusError(status);
}

/** `/database_schema` for a database that does not exist (HTTP 404). */
export class DatabaseNotFoundError extends Error {
  override name = "DatabaseNotFoundError";
  constructor(readonly database: string) {
    super("database does not exist");
  }
}

/** `/extensions` failed; the message keeps only the outermost reason, as Neon's does. */
export class ExtensionInstallError extends Error {
  override name = "ExtensionInstallError";
  constructor(cause: unknown) {
    super(`failed to install extension: ${errorMessage(cause)}`, { cause });
  }
}

/** `/grants` failed; the message keeps only the outermost reason, as Neon's does. */
export class RoleGrantsError extends Error {
  override name = "RoleGrantsError";
  constructor(cause: unknown) {
    super(`failed to grant role privileges to the schema: ${errorMessage(cause)}`, { cause });
  }
}

/** `/dbs_and_roles`: every role and database; any status (Postgres must answer). */
export function dbsAndRoles(node: ComputeNode): Promise<CatalogObjects> {
  return listCatalogObjects(node.settings.connstr);
}

/**
 * `/database_schema`: the streamed `pg_dump --schema-only` of `database`; any
 * status. Throws {@linkcode DatabaseNotFoundError}, or an error whose message
 * is `failed to execute pg_dump` (spawn failure, no output; followed by the
 * reason when the install has no pg_dump or it is not granted) or `unexpected
 * I/O error` (the connection string lacks host, port or user).
 */
export async function databaseSchema(
  node: ComputeNode,
  database: string,
): Promise<ReadableStream<Uint8Array>> {
  const { pgbin, connstr } = node.settings;
  try {
    return await dumpSchema({ pgbin, connstr, database });
  } catch (error) {
    if (!(error instanceof SchemaDumpError)) throw error;
    if (error.kind === "database_does_not_exist") throw new DatabaseNotFoundError(database);
    log.warn("schema dump failed", { database, error: causeChain(error) });
    throw new Error(schemaDumpMessage(error), { cause: error });
  }
}

/** Neon's words for a failed dump; when pg_dump cannot be used at all, also why. */
function schemaDumpMessage(error: SchemaDumpError): string {
  switch (error.kind) {
    case "unavailable":
      return `failed to execute pg_dump: ${error.message}`;
    case "unexpected":
      return "unexpected I/O error";
    default:
      return "failed to execute pg_dump";
  }
}

/**
 * `/insights` (`running` only): the JSON text of `ComputeInsights`, built from
 * the rows' own JSON so 64-bit values keep every digit. Unlike Neon, this is
 * the object itself, not a JSON string holding it.
 */
export async function insightsJson(node: ComputeNode): Promise<string> {
  requireRunning(node);
  const rows = await topStatements(node.settings.connstr);
  return `{"pg_stat_statements":[${rows.join(",")}]}`;
}

/**
 * `/extensions` (`running` only): installs or updates the extension; resolves
 * with the requested name and the installed version, or throws
 * {@linkcode ExtensionInstallError}.
 */
export async function installExtension(
  node: ComputeNode,
  request: ExtensionInstallRequest,
): Promise<ExtensionInstallResponse> {
  requireRunning(node);
  try {
    const version = await installPgExtension(node.settings.connstr, request);
    return { extension: request.extension, version };
  } catch (error) {
    log.warn("extension install failed", { error: causeChain(error) });
    throw new ExtensionInstallError(error);
  }
}

/**
 * `/grants` (`running` only): grants the privileges the role lacks; resolves
 * with the request echoed (keys in the reference order), or throws
 * {@linkcode RoleGrantsError}.
 */
export async function setRoleGrants(
  node: ComputeNode,
  request: SetRoleGrantsRequest,
): Promise<SetRoleGrantsResponse> {
  requireRunning(node);
  try {
    await grantSchemaPrivileges(node.settings.connstr, request);
  } catch (error) {
    log.warn("granting schema privileges failed", { error: causeChain(error) });
    throw new RoleGrantsError(error);
  }
  const { database, schema, privileges, role } = request;
  return { database, schema, privileges, role };
}
