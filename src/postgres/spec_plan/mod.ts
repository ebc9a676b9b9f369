/**
 * @module
 * The spec-apply planner: a pure function from (catalog snapshot, spec) to the
 * ordered SQL that brings Postgres to the spec, phase by phase in the order of
 * Neon's `apply_spec_sql`. It plans only what would change something, so a spec
 * that is already applied plans no statement at all, and the plan can be
 * printed for a dry run ({@linkcode formatPlan}).
 *
 * One file per group of phases: `roles.ts`, `databases.ts`, `per_database.ts`,
 * `final.ts`; the PL/pgSQL blocks they send are in `plpgsql.ts`, the shared
 * planning state in `_planner.ts`, the public types in `types.ts`.
 *
 * Deliberate differences from the Rust compute_ctl: an md5 password equal to
 * the stored `md5<hex>` is not re-set; `rename_role` renames when the old role
 * exists (the intended behaviour, not the inverted check); idempotent `DO`
 * blocks are left out when the snapshot shows they would change nothing; the
 * `neon` extension is skipped with a note when the server does not have it.
 */

import type { ComputeSpec } from "../../api/spec.ts";
import type { CatalogSnapshot } from "../catalog.ts";
import { quoteIdent } from "../sql_quote.ts";
import { checkDeltaTargets, newPlanner } from "./_planner.ts";
import { planDatabases, planPreDrop } from "./databases.ts";
import { planAudit, planFinal } from "./final.ts";
import { planPerDatabase } from "./per_database.ts";
import { planRoles } from "./roles.ts";
import type { PlanOptions, SpecApplyPlan } from "./types.ts";

export {
  type PlanOptions,
  type PlanStage,
  type PlanStep,
  type SpecApplyPlan,
  type SpecPhase,
  SpecPlanError,
} from "./types.ts";

/**
 * Existing databases whose details the planner needs from the snapshot: every
 * spec database and every `rename_db` source (which may become one).
 */
export function databasesToInspect(spec: ComputeSpec): string[] {
  const names = spec.cluster.databases.map((db) => db.name);
  for (const op of spec.delta_operations ?? []) if (op.action === "rename_db") names.push(op.name);
  return [...new Set(names)];
}

/** Renders a plan as commented SQL, one statement per block, for a dry run. */
export function formatPlan(plan: SpecApplyPlan): string {
  const lines = plan.notes.map((note) => `-- note: ${note}`);
  for (const step of plan.steps) {
    const where = step.database === undefined ? "" : ` in database ${quoteIdent(step.database)}`;
    lines.push(`-- ${step.phase}${where}: ${step.purpose}`, `${step.sql};`);
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

/**
 * Plans the SQL that brings the catalog in `snapshot` to `spec`. Phases and their
 * order follow Neon (pre-drop subscription cleanup, global phases, per-database
 * phases for every spec database plus the system database, final phases); a
 * later phase sees the state earlier phases will have produced. Pure; throws
 * `SpecPlanError` for a plan Postgres would refuse: a rename without a new
 * name or onto an existing one, a database owner that no role will be, or a
 * delta operation on compute_ctl's own roles or database.
 */
export function planSpecApply(
  snapshot: CatalogSnapshot,
  spec: ComputeSpec,
  options: PlanOptions,
): SpecApplyPlan {
  if (spec.skip_pg_catalog_updates) {
    return { steps: [], notes: ["skip_pg_catalog_updates is set: no catalog changes planned"] };
  }
  const p = newPlanner(snapshot, spec, options);
  checkDeltaTargets(p);
  const dropSubscriptions = spec.drop_subscriptions_before_start &&
    !snapshot.system.dropSubscriptionsDone;
  planPreDrop(p);
  planRoles(p);
  planDatabases(p);
  planPerDatabase(p, dropSubscriptions);
  planFinal(p, dropSubscriptions);
  planAudit(p);
  return { steps: p.steps, notes: p.notes, settled: p.settled };
}
