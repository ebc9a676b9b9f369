/**
 * @module
 * Quoting for the SQL and postgresql.conf text compute_ctl generates, with the
 * exact output of Neon's `pg_helpers`: identifiers, literals, conf values,
 * dollar quotes, and the rendering of spec options as conf lines and as
 * CREATE/ALTER ROLE and CREATE DATABASE clauses. Pure functions.
 */

import type { Database, GenericOption, Role } from "../api/spec.ts";

/**
 * Quotes an identifier (role, database, schema name): always wrapped in double
 * quotes, inner `"` doubled. Not idempotent: quoting twice quotes the quotes.
 */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Doubles `'` and then `\`, the escaping shared by literals and conf values. */
function escapeQuotesAndBackslashes(text: string): string {
  return text.replaceAll("'", "''").replaceAll("\\", "\\\\");
}

/**
 * Quotes a SQL string literal like Postgres' `quote_literal`: `'…'` with `'`
 * doubled, or `E'…'` (backslashes doubled too) when the text has a backslash.
 */
export function quoteLiteral(text: string): string {
  const escaped = escapeQuotesAndBackslashes(text);
  return escaped.includes("\\") ? `E'${escaped}'` : `'${escaped}'`;
}

/** Quotes a postgresql.conf value: always `'…'`, with `'` → `''` and `\` → `\\`. */
export function quoteConfValue(text: string): string {
  return `'${escapeQuotesAndBackslashes(text)}'`;
}

/** A dollar-quoted literal and a longer tag that is safe for the enclosing `DO` block. */
export interface DollarQuoted {
  /** `$tag$text$tag$`, where `tag` (one or more `x`) does not occur in the text. */
  quoted: string;
  /** `tag` plus one more `x`: use as `DO $outerTag$ … $outerTag$` around `quoted`. */
  outerTag: string;
}

/**
 * Dollar-quotes `text` for use inside a PL/pgSQL `DO` block: the tag is the
 * shortest run of `x` that does not occur in `text`, and the outer tag is one
 * `x` longer, so the name can terminate neither quote.
 */
export function dollarQuote(text: string): DollarQuoted {
  let tag = "x";
  while (text.includes(tag)) tag += "x";
  return { quoted: `$${tag}$${text}$${tag}$`, outerTag: `${tag}x` };
}

/**
 * Renders an option as a postgresql.conf line: `name = 'value'` (escaped) for
 * vartype `string`, `name = value` (raw) for any other vartype, and the bare
 * name when there is no value. Names are never escaped.
 */
export function optionAsConfLine(option: GenericOption): string {
  if (option.value == null) return option.name;
  const value = option.vartype === "string" ? quoteConfValue(option.value) : option.value;
  return `${option.name} = ${value}`;
}

/**
 * Renders `cluster.settings` as postgresql.conf lines, each ending in a newline.
 * `null`/absent gives `""`; an empty list gives a single `"\n"`, as in Neon.
 */
export function settingsBlock(settings: readonly GenericOption[] | null | undefined): string {
  if (settings == null) return "";
  return `${settings.map(optionAsConfLine).join("\n")}\n`;
}

/**
 * Renders an option as a SQL clause: `NAME 'value'` (a literal) for vartype
 * `string`, `NAME value` (raw, e.g. `TEMPLATE template0`) otherwise, and the bare
 * name (e.g. `NOSUPERUSER`) when there is no value.
 */
export function optionAsSql(option: GenericOption): string {
  if (option.value == null) return option.name;
  const value = option.vartype === "string" ? quoteLiteral(option.value) : option.value;
  return `${option.name} ${value}`;
}

/** Renders options as SQL clauses joined by single spaces; `null`/absent gives `""`. */
export function optionsAsSql(options: readonly GenericOption[] | null | undefined): string {
  return options == null ? "" : options.map(optionAsSql).join(" ");
}

/**
 * The clauses after `CREATE ROLE q(name)` / `ALTER ROLE q(name)`: the role's
 * options, ` LOGIN`, then ` PASSWORD 'SCRAM-SHA-256…'` for a SCRAM verifier,
 * ` PASSWORD 'md5<hex>'` for any other password (an md5 digest without its
 * prefix), or ` PASSWORD NULL`. Without options the text starts with a space.
 *
 * Unlike Neon, the password goes through {@linkcode quoteLiteral}; a real md5
 * digest or SCRAM verifier has no quote or backslash, so the SQL is identical.
 */
export function roleOptionsSql(role: Role): string {
  const password = role.encrypted_password;
  let passwordSql: string;
  if (password == null) passwordSql = "NULL";
  else if (password.startsWith("SCRAM-SHA-256")) passwordSql = quoteLiteral(password);
  else passwordSql = quoteLiteral(`md5${password}`);
  return `${optionsAsSql(role.options)} LOGIN PASSWORD ${passwordSql}`;
}

/** The clauses after `CREATE DATABASE q(name)`: the options, then ` OWNER q(owner)`. */
export function databaseOptionsSql(database: Database): string {
  return `${optionsAsSql(database.options)} OWNER ${quoteIdent(database.owner)}`;
}
