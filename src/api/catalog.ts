/**
 * @module
 * The wire types of the catalog routes: what `/dbs_and_roles` and `/insights`
 * answer, and the bodies of the internal `/extensions` and `/grants` calls.
 * The OpenAPI document and the typed client use these same schemas. Names in
 * the bodies must be ones PostgreSQL can hold (see `spec_names.ts`): else 422.
 */

import { z } from "zod";
import { genericOptionSchema } from "./spec.ts";
import { checkedString, nameProblem, textProblem } from "./spec_names.ts";

/** A name sent to Postgres: no NUL byte, 1 to 63 bytes (else a 422 naming the field). */
const pgName = checkedString(nameProblem);

/** A role as `/dbs_and_roles` reports it: the raw `rolpassword` verifier, never any options. */
export const catalogRoleSchema = z.object({
  name: z.string(),
  encrypted_password: z.string().nullable(),
  options: z.array(genericOptionSchema).nullable(),
});
export type CatalogRole = z.infer<typeof catalogRoleSchema>;

/** A database as `/dbs_and_roles` reports it; keys in the reference's declaration order. */
export const catalogDatabaseSchema = z.object({
  name: z.string(),
  owner: z.string(),
  options: z.array(genericOptionSchema).nullable(),
  /** `NOT datallowconn`. */
  restrict_conn: z.boolean(),
  /** `datconnlimit = -2`: left behind by an interrupted `DROP DATABASE`. */
  invalid: z.boolean(),
});
export type CatalogDatabase = z.infer<typeof catalogDatabaseSchema>;

/** `GET /dbs_and_roles`: every role of `pg_authid` and every database of `pg_database`. */
export const catalogObjectsSchema = z.object({
  roles: z.array(catalogRoleSchema),
  databases: z.array(catalogDatabaseSchema),
});
export type CatalogObjects = z.infer<typeof catalogObjectsSchema>;

/**
 * `GET /insights`: up to 100 `pg_stat_statements` rows (each the row's
 * `row_to_json`), slowest first. Neon sends this object double-encoded, as a
 * JSON string; we send the object itself.
 */
export const computeInsightsSchema = z.object({
  pg_stat_statements: z.array(z.record(z.string(), z.unknown())),
});
export type ComputeInsights = z.infer<typeof computeInsightsSchema>;

/** `POST /extensions` body: install or update `extension` to `version` in `database`. */
export const extensionInstallRequestSchema = z.object({
  extension: pgName,
  database: pgName,
  version: checkedString(textProblem),
});
export type ExtensionInstallRequest = z.infer<typeof extensionInstallRequestSchema>;

/** `POST /extensions` 201 answer: the requested name and the version now installed. */
export const extensionInstallResponseSchema = z.object({
  extension: z.string(),
  version: z.string(),
});
export type ExtensionInstallResponse = z.infer<typeof extensionInstallResponseSchema>;

/** The privileges `/grants` accepts, spelled in upper case on the wire. */
export const PRIVILEGES = [
  "SELECT",
  "INSERT",
  "UPDATE",
  "DELETE",
  "TRUNCATE",
  "REFERENCES",
  "TRIGGER",
  "USAGE",
  "CREATE",
  "CONNECT",
  "TEMPORARY",
  "EXECUTE",
] as const;

export const privilegeSchema = z.enum(PRIVILEGES);
export type Privilege = z.infer<typeof privilegeSchema>;

/** `POST /grants` body: grant `privileges` on schema `schema` of `database` to `role`. */
export const setRoleGrantsRequestSchema = z.object({
  database: pgName,
  schema: pgName,
  privileges: z.array(privilegeSchema),
  role: pgName,
});
export type SetRoleGrantsRequest = z.infer<typeof setRoleGrantsRequestSchema>;

/** `POST /grants` 201 answer: the request echoed, keys in this order. */
export const setRoleGrantsResponseSchema = setRoleGrantsRequestSchema;
export type SetRoleGrantsResponse = z.infer<typeof setRoleGrantsResponseSchema>;
