/**
 * @module
 * The options of spec roles and databases: clauses that compute_ctl writes
 * after `CREATE ROLE`/`ALTER ROLE` and `CREATE DATABASE` (`NOSUPERUSER`,
 * `CONNECTION LIMIT 5`, `TEMPLATE template0`), unquoted unless their vartype is
 * `string`. Only the clauses PostgreSQL takes in that place, with a value of
 * the shape it expects, pass; so nothing but a clause can be written there,
 * and a clause Postgres would refuse as redundant or conflicting (twice the
 * same one, or one compute_ctl already writes) is refused first. Pure.
 */

import { textProblem } from "./spec_names.ts";

/** The option fields the rules read (a spec's `GenericOption`). */
export interface ClauseOption {
  name: string;
  value?: string | null;
  vartype: string;
}

/** A broken rule: the option's index, the field to blame, and why. */
export interface OptionProblem {
  index: number;
  field: "name" | "value";
  message: string;
}

/** How a clause's value must look. */
type ValueRule =
  | { kind: "none" }
  | { kind: "integer"; min: number }
  | { kind: "string" }
  | { kind: "any" };

/** A clause: the rule for its value and the key shared with the clauses it conflicts with. */
interface Clause {
  key: string;
  value: ValueRule;
}

const INT32_MAX = 2_147_483_647;
const NO_VALUE: ValueRule = { kind: "none" };
const CONNECTION_LIMIT: ValueRule = { kind: "integer", min: -1 };

/** The attributes compute_ctl itself gives every role that `local_proxy_config.jwks` does not name. */
const GRANTED_ROLE_ATTRIBUTES = ["INHERIT", "CREATEROLE", "CREATEDB", "BYPASSRLS", "REPLICATION"];

const ROLE_CLAUSES: ReadonlyMap<string, Clause> = new Map([
  ...["SUPERUSER", ...GRANTED_ROLE_ATTRIBUTES].flatMap((key): [string, Clause][] => [
    [key, { key, value: NO_VALUE }],
    [`NO${key}`, { key, value: NO_VALUE }],
  ]),
  ["CONNECTION LIMIT", { key: "CONNECTION LIMIT", value: CONNECTION_LIMIT }],
  ["VALID UNTIL", { key: "VALID UNTIL", value: { kind: "string" } }],
]);

/** `CREATE DATABASE` options of PostgreSQL 14 to 17, but `OWNER` (the spec's `owner` field). */
const DATABASE_CLAUSES: ReadonlyMap<string, Clause> = new Map([
  ["CONNECTION LIMIT", { key: "CONNECTION_LIMIT", value: CONNECTION_LIMIT }],
  ["CONNECTION_LIMIT", { key: "CONNECTION_LIMIT", value: CONNECTION_LIMIT }],
  ["OID", { key: "OID", value: { kind: "integer", min: 1 } }],
  ...[
    "ALLOW_CONNECTIONS",
    "BUILTIN_LOCALE",
    "COLLATION_VERSION",
    "ENCODING",
    "ICU_LOCALE",
    "ICU_RULES",
    "IS_TEMPLATE",
    "LC_COLLATE",
    "LC_CTYPE",
    "LOCALE",
    "LOCALE_PROVIDER",
    "STRATEGY",
    "TABLESPACE",
    "TEMPLATE",
  ].map((key): [string, Clause] => [key, { key, value: { kind: "any" } }]),
]);

/** Why options are refused, word for word as the 422 answers give them after the path. */
export const OPTION_RULES = {
  roleOption: "is not a role option compute_ctl can apply (SUPERUSER, CREATEDB, CREATEROLE, " +
    "INHERIT, REPLICATION, BYPASSRLS, their NO forms, CONNECTION LIMIT or VALID UNTIL)",
  databaseOption: "is not a database option compute_ctl can apply (one of CREATE DATABASE's " +
    "options but OWNER)",
  owner: "is set by the database's owner field",
  noValue: "takes no value",
  needsValue: "needs a value",
  string: 'needs vartype "string"',
  integer: (min: number) =>
    `must be an integer from ${min} to ${INT32_MAX}, with a vartype other than "string"`,
  bare: 'must be an integer or a plain identifier unless its vartype is "string"',
  repeated: "repeats or contradicts an earlier option",
  granted: `conflicts with ${GRANTED_ROLE_ATTRIBUTES.join(" ")}, which compute_ctl gives ` +
    "every role that local_proxy_config.jwks does not name",
} as const;

const BARE_SQL_VALUE = /^(?:[-+]?\d+|[A-Za-z_][A-Za-z0-9_$]*)$/;

function valueProblem(option: ClauseOption, rule: ValueRule): string | undefined {
  const { value } = option;
  if (rule.kind === "none") return value == null ? undefined : OPTION_RULES.noValue;
  if (value == null) return OPTION_RULES.needsValue;
  const quoted = option.vartype === "string";
  switch (rule.kind) {
    case "integer": {
      const n = /^[-+]?\d{1,10}$/.test(value) ? Number(value) : NaN;
      return !quoted && n >= rule.min && n <= INT32_MAX
        ? undefined
        : OPTION_RULES.integer(rule.min);
    }
    case "string":
      return quoted ? textProblem(value) : OPTION_RULES.string;
    case "any":
      if (quoted) return textProblem(value);
      return BARE_SQL_VALUE.test(value) ? undefined : OPTION_RULES.bare;
  }
}

function clauseProblems(
  options: readonly ClauseOption[],
  clauses: ReadonlyMap<string, Clause>,
  unknown: (name: string) => string,
  refused: (clause: Clause) => string | undefined,
): OptionProblem[] {
  const problems: OptionProblem[] = [];
  const seen = new Set<string>();
  options.forEach((option, index) => {
    const clause = clauses.get(option.name.toUpperCase());
    const nameProblem = clause === undefined
      ? unknown(option.name)
      : seen.has(clause.key)
      ? OPTION_RULES.repeated
      : refused(clause);
    if (nameProblem !== undefined) {
      problems.push({ index, field: "name", message: nameProblem });
    }
    if (clause === undefined) return;
    seen.add(clause.key);
    const problem = valueProblem(option, clause.value);
    if (problem !== undefined) problems.push({ index, field: "value", message: problem });
  });
  return problems;
}

/**
 * What is wrong with a role's options. `jwksRole`: the role is named in
 * `local_proxy_config.jwks`, so compute_ctl creates it without the attributes
 * it gives other roles, and those may be set.
 */
export function roleOptionProblems(
  options: readonly ClauseOption[],
  { jwksRole }: { jwksRole: boolean },
): OptionProblem[] {
  return clauseProblems(
    options,
    ROLE_CLAUSES,
    (name) => textProblem(name) ?? OPTION_RULES.roleOption,
    (clause) =>
      !jwksRole && GRANTED_ROLE_ATTRIBUTES.includes(clause.key) ? OPTION_RULES.granted : undefined,
  );
}

/** What is wrong with a database's options. */
export function databaseOptionProblems(options: readonly ClauseOption[]): OptionProblem[] {
  return clauseProblems(
    options,
    DATABASE_CLAUSES,
    (name) =>
      textProblem(name) ??
        (name.toUpperCase() === "OWNER" ? OPTION_RULES.owner : OPTION_RULES.databaseOption),
    () => undefined,
  );
}
