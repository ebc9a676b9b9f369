/**
 * @module
 * Reading query parameters the way the reference's `serde_urlencoded` does:
 * a field is missing or given once, a repeated one is an error, and each
 * refusal is a 400 worded as the reference's (see `rejections.ts`). A
 * parameter that names a database must also be a name PostgreSQL can hold.
 */

import { nameProblem } from "../api/spec_names.ts";
import { HttpError } from "./errors.ts";
import { queryRejection, type RejectionStyle } from "./rejections.ts";

/** Whether `url` has a query string at all (`/x?` has an empty one). */
export function hasQueryString(url: string): boolean {
  return url.includes("?");
}

/**
 * The value of parameter `name` in `url`, decoded; undefined when it is absent.
 * Throws a 400 (`duplicate field \`name\``) when it is given more than once.
 */
export function optionalQueryParam(
  url: string,
  name: string,
  style: RejectionStyle,
): string | undefined {
  const values = new URL(url).searchParams.getAll(name);
  if (values.length > 1) throw queryRejection(`duplicate field \`${name}\``, style);
  return values[0];
}

/**
 * The value of parameter `name` in `url`, decoded. Throws a 400 when it is
 * absent (`missing field \`name\``) or repeated (`duplicate field \`name\``).
 */
export function requiredQueryParam(url: string, name: string, style: RejectionStyle): string {
  const value = optionalQueryParam(url, name, style);
  if (value === undefined) throw queryRejection(`missing field \`${name}\``, style);
  return value;
}

/**
 * A parameter that names a database: {@link requiredQueryParam}, then a 400
 * `{"error": "<name>: <reason>"}` when the value cannot be a database's name
 * (a NUL byte, empty, longer than 63 bytes: see `spec_names.ts`).
 */
export function databaseQueryParam(url: string, name: string): string {
  const value = requiredQueryParam(url, name, "json");
  const problem = nameProblem(value);
  if (problem !== undefined) throw new HttpError(400, `${name}: ${problem}`);
  return value;
}
