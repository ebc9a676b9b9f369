/**
 * @module
 * Values in a spec that only the server can judge, checked on it before the
 * compute's status changes: a role's `VALID UNTIL` (a time Postgres can read),
 * a database's `ENCODING` (a name Postgres knows), and the value of every
 * setting a session may set (`user` and `superuser` context), tried with
 * `set_config` in a transaction that is rolled back. A refusal names the field
 * and carries Postgres's own words. Nothing is changed. Settings only the
 * postmaster or a reload takes are left to the check of the written
 * `postgresql.conf` (`conf_check.ts`).
 */

import type pg from "pg";
import type { ComputeSpec } from "../api/spec.ts";
import { errorMessage } from "../log.ts";
import { SpecPlanError } from "./spec_plan/mod.ts";

/** Settings a session may set whose check depends on objects the spec itself may create. */
const NOT_TRIED = new Set(["role", "session_authorization"]);

/**
 * Throws {@linkcode SpecPlanError} (`roles[0].options[1].value: invalid input
 * syntax for type timestamp with time zone: "soon"`) for the first value of
 * `spec` the server refuses.
 */
export async function checkSpecValues(client: pg.Client, spec: ComputeSpec): Promise<void> {
  for (const [i, role] of spec.cluster.roles.entries()) {
    for (const [j, option] of (role.options ?? []).entries()) {
      if (option.name.toUpperCase() !== "VALID UNTIL" || option.value == null) continue;
      await refusedAs(
        `roles[${i}].options[${j}].value`,
        () => client.query("SELECT $1::pg_catalog.timestamptz", [option.value]),
      );
    }
  }
  for (const [i, database] of spec.cluster.databases.entries()) {
    for (const [j, option] of (database.options ?? []).entries()) {
      if (option.name.toUpperCase() !== "ENCODING" || option.value == null) continue;
      if (/^\d+$/.test(option.value)) continue; // an encoding number, checked by CREATE DATABASE
      const { rows } = await client.query<{ known: boolean }>(
        "SELECT pg_catalog.pg_char_to_encoding($1) >= 0 AS known",
        [option.value],
      );
      if (!rows[0].known) {
        throw new SpecPlanError(
          `databases[${i}].options[${j}].value: ${option.value} is not a valid encoding name`,
        );
      }
    }
  }
  const settings = spec.cluster.settings ?? [];
  const settable = await sessionSettable(client, settings.map((setting) => setting.name));
  for (const [i, setting] of settings.entries()) {
    if (setting.value == null || !settable.has(setting.name.toLowerCase())) continue;
    await client.query("BEGIN");
    try {
      await refusedAs(
        `settings[${i}].value`,
        () =>
          client.query("SELECT pg_catalog.set_config($1, $2, true)", [setting.name, setting.value]),
      );
    } finally {
      await client.query("ROLLBACK");
    }
  }
}

/** The names among `names` (lower-cased) that a session may set and that are tried. */
async function sessionSettable(client: pg.Client, names: readonly string[]): Promise<Set<string>> {
  if (names.length === 0) return new Set();
  const { rows } = await client.query<{ name: string }>(
    "SELECT name FROM pg_catalog.pg_settings " +
      "WHERE name = ANY($1::text[]) AND context IN ('user', 'superuser')",
    [names.map((name) => name.toLowerCase())],
  );
  return new Set(rows.map((row) => row.name).filter((name) => !NOT_TRIED.has(name)));
}

async function refusedAs(field: string, query: () => Promise<unknown>): Promise<void> {
  try {
    await query();
  } catch (error) {
    throw new SpecPlanError(`${field}: ${errorMessage(error)}`);
  }
}
