/**
 * @module
 * The state the phases share while planning: the projected catalog (roles and
 * databases as they will be after the statements planned so far) and the plan
 * being built, plus the small helpers every phase uses.
 */

import type { ComputeSpec, DeltaOp } from "../../api/spec.ts";
import type { CatalogSnapshot, DatabaseDetails, DatabaseState } from "../catalog.ts";
import { quoteIdent } from "../sql_quote.ts";
import {
  type PlanOptions,
  type PlanStage,
  type PlanStep,
  type SpecPhase,
  SpecPlanError,
} from "./types.ts";

/** A role as it is (or will be) after the statements planned so far. */
export interface RoleContext {
  /** The stored verifier as it is (or will be) after the statements planned so far. */
  password: string | null;
  /** Created by this plan: owns nothing yet, so needs no per-database cleanup. */
  createdNow: boolean;
}

/** A database as it is (or will be) after the statements planned so far. */
export interface DatabaseContext extends Omit<DatabaseState, "name"> {
  /** `undefined` when the snapshot did not look inside (e.g. created by this plan). */
  details?: DatabaseDetails;
}

/** The projected catalog that phases read and update while planning, and the plan so far. */
export interface Planner {
  readonly snapshot: CatalogSnapshot;
  readonly spec: ComputeSpec;
  readonly options: PlanOptions;
  readonly qPriv: string;
  readonly ops: readonly DeltaOp[];
  readonly roles: Map<string, RoleContext>;
  readonly databases: Map<string, DatabaseContext>;
  readonly steps: PlanStep[];
  readonly notes: string[];
  /** Details of inspected spec databases as the plan will leave them (see `SpecApplyPlan.settled`). */
  readonly settled: Map<string, DatabaseDetails>;
}

/** Appends one step to the plan (in `lane`, see `PlanStep.lane`). */
export type AddStep = (phase: SpecPhase, purpose: string, sql: string, lane?: string) => void;

/** A planner whose projected catalog is the snapshot and whose plan is empty. */
export function newPlanner(
  snapshot: CatalogSnapshot,
  spec: ComputeSpec,
  options: PlanOptions,
): Planner {
  const p: Planner = {
    snapshot,
    spec,
    options,
    qPriv: quoteIdent(options.privilegedRoleName),
    ops: spec.delta_operations ?? [],
    roles: new Map(),
    databases: new Map(),
    steps: [],
    notes: [],
    settled: new Map(),
  };
  for (const [name, role] of snapshot.roles) {
    p.roles.set(name, { password: role.password, createdNow: false });
  }
  for (const [name, db] of snapshot.databases) {
    const { name: _, ...state } = db;
    p.databases.set(name, { ...state, details: snapshot.details.get(name) });
  }
  return p;
}

/** Returns a function appending steps of one stage (and database) to the plan. */
export function adder(p: Planner, stage: PlanStage, database?: string): AddStep {
  return (phase, purpose, sql, lane) => {
    const step: PlanStep = database === undefined
      ? { stage, phase, purpose, sql }
      : { stage, phase, database, purpose, sql };
    if (lane !== undefined) step.lane = lane;
    p.steps.push(step);
  };
}

/** The delta operations of one kind, in spec order. */
export function opsOf(p: Planner, action: string): DeltaOp[] {
  return p.ops.filter((op) => op.action === action);
}

/** The `new_name` of a rename; throws {@link SpecPlanError} when it is missing or empty. */
export function requireNewName(op: DeltaOp): string {
  if (op.new_name == null || op.new_name === "") {
    throw new SpecPlanError(`${op.action} of ${quoteIdent(op.name)} has no new_name`);
  }
  return op.new_name;
}

/** Where `op` is in the spec, for error messages: `delta_operations[2]`. */
export function deltaPath(p: Planner, op: DeltaOp): string {
  return `delta_operations[${p.ops.indexOf(op)}]`;
}

/**
 * Refuses delta operations that Postgres cannot carry out on the roles and
 * database compute_ctl itself works with: dropping or renaming the role it
 * connects as or the privileged role, or the database it connects to.
 */
export function checkDeltaTargets(p: Planner): void {
  const ownRoles = new Set([p.snapshot.currentUser, p.options.privilegedRoleName]);
  for (const op of p.ops) {
    const isRoleOp = op.action === "delete_role" || op.action === "rename_role";
    const isDbOp = op.action === "delete_db" || op.action === "rename_db";
    if (isRoleOp && ownRoles.has(op.name)) {
      throw new SpecPlanError(
        `${deltaPath(p, op)}.name: role ${quoteIdent(op.name)} is one compute_ctl works as; ` +
          "it cannot be dropped or renamed",
      );
    }
    if (isDbOp && op.name === p.options.systemDatabase) {
      throw new SpecPlanError(
        `${deltaPath(p, op)}.name: database ${quoteIdent(op.name)} is the one compute_ctl ` +
          "connects to; it cannot be dropped or renamed",
      );
    }
  }
}

/** Joins SQL fragments with single spaces, leaving out empty ones. */
export function joinSql(...parts: string[]): string {
  return parts.map((part) => part.trim()).filter((part) => part !== "").join(" ");
}
