/**
 * @module
 * The rules a spec's names and settings must follow so that PostgreSQL takes
 * them as they are: role and database names (no NUL, 1 to 63 bytes, none of
 * the names Postgres reserves for roles), setting names and values as
 * `postgresql.conf` can hold them, and text that travels to Postgres (no NUL).
 * Each rule answers the reason a value breaks it, or undefined; the spec schema
 * turns reasons into 422 issues and the HTTP layer into 400 answers. Names are
 * refused rather than truncated as Postgres would, so that applying the same
 * spec twice finds what the first apply created. Pure.
 */

import { z } from "zod";
import { CONF_DIRECTIVES, isBareConfValue } from "./conf_syntax.ts";

/** The part of a spec option (`name`/`value`/`vartype`) the value rules read. */
export interface OptionValue {
  value?: string | null;
  vartype: string;
}

/** PostgreSQL's `NAMEDATALEN - 1`: the longest name, in bytes, it keeps whole. */
export const MAX_NAME_BYTES = 63;

/** The reasons, word for word as the 422 and 400 answers give them after the field's path. */
export const NAME_RULES = {
  nul: "contains a NUL byte",
  surrogate: "is not valid Unicode (it has a lone surrogate, which UTF-8 cannot hold)",
  empty: "is empty",
  tooLong: `is longer than ${MAX_NAME_BYTES} bytes (PostgreSQL's limit for names)`,
  reservedRole: 'is reserved in PostgreSQL ("public", "none" and names starting with "pg_")',
  settingName: "is not a valid setting name",
  directive: "is a postgresql.conf directive, not a setting",
  noValue: "has no value",
  lineBreak: "contains a line break, which postgresql.conf cannot hold",
  bareValue: 'is not a single postgresql.conf value: give it vartype "string" to have it quoted',
} as const;

const encoder = new TextEncoder();

/**
 * Why `text` cannot reach Postgres as it is (a NUL byte; a lone surrogate,
 * which would arrive as U+FFFD, another text), or undefined.
 */
export function textProblem(text: string): string | undefined {
  if (text.includes("\0")) return NAME_RULES.nul;
  if (!text.isWellFormed()) return NAME_RULES.surrogate;
  return undefined;
}

/** Why `name` cannot name a database or role as it is, or undefined. */
export function nameProblem(name: string): string | undefined {
  const text = textProblem(name);
  if (text !== undefined) return text;
  if (name === "") return NAME_RULES.empty;
  if (encoder.encode(name).length > MAX_NAME_BYTES) return NAME_RULES.tooLong;
  return undefined;
}

/** {@link nameProblem}, plus the names `CREATE ROLE` refuses: `public`, `none`, `pg_…`. */
export function roleNameProblem(name: string): string | undefined {
  const problem = nameProblem(name);
  if (problem !== undefined) return problem;
  if (name === "public" || name === "none" || name.startsWith("pg_")) {
    return NAME_RULES.reservedRole;
  }
  return undefined;
}

/**
 * A setting name `postgresql.conf` accepts: an identifier, or `prefix.name`
 * for a custom setting (ASCII letters, digits and `_`, not starting with a digit).
 */
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$/;

/** Why `name` cannot be a setting in `postgresql.conf`, or undefined. */
export function settingNameProblem(name: string): string | undefined {
  if (name.includes("\0")) return NAME_RULES.nul;
  if (!SETTING_NAME.test(name)) return NAME_RULES.settingName;
  if (CONF_DIRECTIVES.has(name.toLowerCase())) return NAME_RULES.directive;
  return undefined;
}

/**
 * Why a string bound for `postgresql.conf` inside quotes cannot be written
 * there: a NUL byte, or a line break (a quoted value ends at the line's end).
 */
export function confStringProblem(text: string): string | undefined {
  if (text.includes("\0")) return NAME_RULES.nul;
  if (text.includes("\n")) return NAME_RULES.lineBreak;
  return undefined;
}

/**
 * Why a `cluster.settings` value cannot be written as a `postgresql.conf`
 * line: none at all (a bare name is a syntax error), a quoted (`string`) one
 * that {@link confStringProblem} refuses, or an unquoted one that is not a
 * single value token (`12MB`, `on`, `0.5` are; `12 MB` or `a#b` are not).
 */
export function settingValueProblem(option: OptionValue): string | undefined {
  const value = option.value;
  if (value == null) return NAME_RULES.noValue;
  if (option.vartype === "string") return confStringProblem(value);
  if (value.includes("\0")) return NAME_RULES.nul;
  return isBareConfValue(value) ? undefined : NAME_RULES.bareValue;
}

/** zod: a string that `problem` accepts; the reason it gives is the issue's message. */
export function checkedString(problem: (text: string) => string | undefined) {
  return z.string().superRefine((text, ctx) => {
    const message = problem(text);
    if (message !== undefined) ctx.addIssue({ code: "custom", message });
  });
}
