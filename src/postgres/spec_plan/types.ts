/**
 * @module
 * The planner's vocabulary: stages, Neon's phase names, steps, the plan, its
 * options and its error. Types only (and the error class), so the executor and
 * the tests can name them without loading the phases.
 */

import type { DatabaseDetails } from "../catalog.ts";

/** When a step runs: the executor runs global stages on one session, per-database stages per database. */
export type PlanStage = "pre-drop" | "global" | "per-database" | "final";

/** The phases, named as in Neon's `apply_spec_sql`. */
export type SpecPhase =
  | "DropLogicalSubscriptions"
  | "CreatePrivilegedRole"
  | "DropInvalidDatabases"
  | "RenameRoles"
  | "CreateAndAlterRoles"
  | "RenameAndDeleteDatabases"
  | "CreateAndAlterDatabases"
  | "CreateSchemaNeon"
  | "DeleteDBRoleReferences"
  | "ChangeSchemaPerms"
  | "HandleOtherExtensions"
  | "HandleNeonExtension"
  | "CreateAvailabilityCheck"
  | "DropRoles"
  | "FinalizeDropLogicalSubscriptions"
  | "CreatePgauditExtension"
  | "CreatePgauditlogtofileExtension"
  | "DisablePostgresDBPgAudit";

/** One statement (or one `DO` block) to send with the simple query protocol. */
export interface PlanStep {
  stage: PlanStage;
  phase: SpecPhase;
  /** The database to run it in; absent for global statements (system database session). */
  database?: string;
  /** What the statement is for, in words, for logs and error messages. */
  purpose: string;
  sql: string;
  /**
   * Global steps only: steps of one phase in different lanes do not depend on
   * each other, so consecutive steps that all have a lane may run at the same
   * time on several sessions (those of one lane in order). A step without a
   * lane runs alone, after everything before it.
   */
  lane?: string;
}

/** The ordered statements, plus notes about work skipped on purpose. */
export interface SpecApplyPlan {
  steps: PlanStep[];
  notes: string[];
  /**
   * The details each spec database inspected before planning will have once
   * every step has run (absent for databases not inspected, or where a role's
   * references are dropped, whose outcome the planner cannot foresee).
   */
  settled?: ReadonlyMap<string, DatabaseDetails>;
}

/** Options for `planSpecApply`. */
export interface PlanOptions {
  /** `--privileged-role-name` (validated `^[a-z_]+$` by the CLI). */
  privilegedRoleName: string;
  /** The database of `--connstr` (normally `postgres`). */
  systemDatabase: string;
  /** Roles created without privileges; default: every `local_proxy_config.jwks[].role_names`. */
  jwksRoles?: Iterable<string>;
  /** Timeline recorded after dropping subscriptions; default: the spec's. */
  timelineId?: string | null;
}

/** Thrown for a spec the planner cannot turn into SQL. */
export class SpecPlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SpecPlanError";
  }
}
