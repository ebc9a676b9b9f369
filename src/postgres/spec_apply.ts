/**
 * @module
 * Applies a compute spec to the running Postgres: snapshot the catalog, plan
 * ({@linkcode planSpecApply}), execute. The snapshot connects to a spec
 * database only when what the last successful apply left there may have
 * changed (see `settled_databases.ts`). The plan runs with
 * {@linkcode executePlan}: global statements on the system database (a few
 * sessions for the roles and databases of one phase), per-database
 * statements on one session per database, at most `concurrency` databases at
 * a time. The first failure stops the apply.
 */

import type pg from "pg";
import { type ComputeSpec, findOption, specTimelineId } from "../api/spec.ts";
import { getLogger, type Log } from "../log.ts";
import { type ClusterSnapshot, readDatabaseDetails } from "./catalog.ts";
import { type Handover, readClusterSnapshot } from "./cluster_handover.ts";
import { unknownSettingNames } from "./conf_check.ts";
import { withClient } from "./connect.ts";
import type { SystemSession } from "./maintenance_session.ts";
import { executePlan, type InDatabase } from "./spec_execute.ts";
import {
  planDetailReads,
  PROCESS_SETTLED,
  settledAfter,
  type SettledDatabases,
  type SettledStore,
} from "./settled_databases.ts";
import { planSpecApply, type SpecApplyPlan, SpecPlanError } from "./spec_plan/mod.ts";
import { checkSpecValues } from "./spec_values_check.ts";
import { quoteIdent } from "./sql_quote.ts";

export { SpecApplyError } from "./spec_execute.ts";

/** `application_name` of the sessions that apply the spec, as in Neon. */
export const APPLY_APPLICATION_NAME = "compute_ctl:apply_config";

/** Options for {@linkcode applySpec}. */
export interface ApplySpecOptions {
  privilegedRoleName: string;
  /** Parallel per-database sessions: {@linkcode concurrencyForStartup} or {@linkcode concurrencyForReconfigure}. */
  concurrency: number;
  /** Plan only: return the plan, run nothing. */
  dryRun?: boolean;
  /** Where to log notes and progress; defaults to the `spec_apply` module logger. */
  log?: Log;
  /** Timeline for `drop_subscriptions_before_start`; default: the spec's. */
  timelineId?: string | null;
  /**
   * Runs the plan: gets it before any statement runs and must call `execute`
   * once (e.g. with the size limit lifted only when the plan has steps).
   * Default: just `execute`.
   */
  aroundExecute?: (plan: SpecApplyPlan, execute: () => Promise<void>) => Promise<void>;
  /** What earlier applies left in the databases; default: this process's record. */
  settled?: SettledStore;
  /**
   * Where the cluster-wide part runs (snapshot, plan, global statements), e.g.
   * the compute's maintenance session; default: a session opened for this
   * apply alone ({@linkcode applySession}).
   */
  systemSession?: SystemSession;
}

/** What {@linkcode applySpec} did. */
export interface ApplySpecResult {
  plan: SpecApplyPlan;
  /** Statements that completed (0 for a dry run or an already-applied spec). */
  statementsRun: number;
}

/**
 * Per-database concurrency for the first start, from `max_connections` (the
 * `cluster.settings` entry, else a `max_connections = N` line of
 * `cluster.postgresql_conf`): N < 10 → N (at least 1), 10–29 → 10, 30–299 → N/3,
 * ≥ 300 → 100; unknown → 10.
 */
export function concurrencyForStartup(spec: ComputeSpec): number {
  let text = findOption(spec.cluster.settings, "max_connections");
  if (text === undefined) {
    for (const line of (spec.cluster.postgresql_conf ?? "").split("\n")) {
      const [key, ...rest] = line.split("=");
      if (rest.length > 0 && key.trim() === "max_connections") {
        text = rest.join("=").trim();
        break;
      }
    }
  }
  const maxConnections = text !== undefined && /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (Number.isNaN(maxConnections)) return 10;
  if (maxConnections < 10) return Math.max(1, maxConnections);
  if (maxConnections < 30) return 10;
  if (maxConnections < 300) return Math.floor(maxConnections / 3);
  return 100;
}

/** Per-database concurrency for a reconfigure: `reconfigure_concurrency`, at least 1. */
export function concurrencyForReconfigure(spec: ComputeSpec): number {
  return Math.max(1, spec.reconfigure_concurrency);
}

/**
 * Brings the Postgres at `connstr` to `spec` and reports the plan and how many
 * statements ran. Throws {@linkcode SpecApplyError} at the first failing
 * statement (earlier statements stay applied; each is autocommitted).
 */
export async function applySpec(
  connstr: string,
  spec: ComputeSpec,
  {
    privilegedRoleName,
    concurrency,
    dryRun = false,
    log = getLogger("spec_apply"),
    timelineId,
    aroundExecute = (_plan, execute) => execute(),
    settled = PROCESS_SETTLED,
    systemSession,
  }: ApplySpecOptions,
): Promise<ApplySpecResult> {
  const limit = Math.max(1, Math.floor(concurrency));
  if (spec.skip_pg_catalog_updates) {
    const note = "skip_pg_catalog_updates is set: no catalog changes planned";
    log.info(note);
    return { plan: { steps: [], notes: [note] }, statementsRun: 0 };
  }
  const inDatabase = databaseSessions(connstr);
  const session = systemSession ?? applySession(connstr);
  return await session(async (client) => {
    const { plan, cluster } = await planOnSession(client, inDatabase, spec, {
      // A kept session may hold the snapshot `/configure`'s check just read.
      handover: systemSession === undefined ? undefined : "accept",
      privilegedRoleName,
      concurrency: limit,
      timelineId,
      settled: settled.get(connstr),
      log,
    });
    for (const note of plan.notes) log.info(note);
    if (dryRun) {
      log.info(`dry run: ${plan.steps.length} statements planned, none run`);
      return { plan, statementsRun: 0 };
    }

    const started = performance.now();
    let statementsRun = 0;
    const execute = async () => {
      statementsRun = await executePlan(plan.steps, {
        client,
        systemDatabase: cluster.system.name,
        inDatabase,
        concurrency: limit,
        log,
      });
    };
    try {
      await aroundExecute(plan, execute);
    } catch (error) {
      settled.delete(connstr);
      throw error;
    }
    const left = settledAfter(cluster, plan, privilegedRoleName);
    if (left === null) settled.delete(connstr);
    else settled.set(connstr, left);
    const elapsedMs = Math.round(performance.now() - started);
    log.info(`spec applied: ${statementsRun} statements in ${elapsedMs} ms`);
    return { plan, statementsRun };
  });
}

/**
 * Runs each call on an apply session of the system database of the server at
 * `connstr`, opened for it and closed after it.
 */
export function applySession(connstr: string): SystemSession {
  return (fn) => withClient(connstr, { applicationName: APPLY_APPLICATION_NAME }, fn);
}

/** Opens one apply session on `database` of the server at `connstr` for each call. */
function databaseSessions(connstr: string): InDatabase {
  return (database, fn) =>
    withClient(connstr, { applicationName: APPLY_APPLICATION_NAME, database }, fn);
}

/** Options of {@linkcode planOnSession}. */
interface PlanOnSessionOptions {
  privilegedRoleName: string;
  concurrency: number;
  timelineId?: string | null;
  /** What the last apply left; absent: inspect every database the plan needs details of. */
  settled?: SettledDatabases;
  /** False: inspect no database (the plan is only checked, never run). */
  details?: boolean;
  /** Leave the cluster snapshot on a kept session for the next plan, or take the one left there. */
  handover?: Handover;
  log?: Log;
}

/**
 * Snapshots the catalog through `client` (and, for the databases whose
 * details are not known from `settled`, `inDatabase` sessions) and plans
 * `spec` on it. Returns the plan and the cluster-wide part of the snapshot.
 */
async function planOnSession(
  client: pg.Client,
  inDatabase: InDatabase,
  spec: ComputeSpec,
  { privilegedRoleName, concurrency, timelineId, settled, details = true, handover, log }:
    PlanOnSessionOptions,
): Promise<{ plan: SpecApplyPlan; cluster: ClusterSnapshot }> {
  const timeline = timelineId ?? specTimelineId(spec);
  const cluster = await readClusterSnapshot(client, {
    timelineId: spec.drop_subscriptions_before_start ? timeline : undefined,
  }, handover);
  const reads = details
    ? planDetailReads(cluster, spec, settled, privilegedRoleName)
    : { inspect: [], known: new Map() };
  const inspected = await readDatabaseDetails(client, cluster, reads.inspect, {
    privilegedRoleName,
    withDatabase: inDatabase,
    concurrency,
  });
  log?.debug(
    `database details: ${reads.inspect.length} inspected, ${reads.known.size} as last applied`,
  );
  const snapshot = { ...cluster, details: new Map([...reads.known, ...inspected]) };
  const plan = planSpecApply(snapshot, spec, {
    privilegedRoleName,
    systemDatabase: cluster.system.name,
    timelineId: timeline,
  });
  return { plan, cluster };
}

/**
 * Checks `spec` against the running Postgres without changing anything: every
 * setting name it has no `.` in must be one the server knows, the values only
 * the server can judge must pass ({@linkcode checkSpecValues}), and (unless
 * `catalog` is false: a standby, or `skip_pg_catalog_updates`) the catalog
 * apply must plan. Throws {@linkcode SpecPlanError} naming the field (e.g.
 * `databases[0].owner: role "x" is neither in the spec nor in the catalog`).
 */
export async function checkSpecAgainstPostgres(
  connstr: string,
  spec: ComputeSpec,
  options:
    & Pick<ApplySpecOptions, "privilegedRoleName" | "concurrency" | "systemSession">
    & { catalog: boolean },
): Promise<void> {
  const session = options.systemSession ?? applySession(connstr);
  await session(async (client) => {
    const settings = spec.cluster.settings ?? [];
    const unknown = new Set(await unknownSettingNames(client, settings.map((s) => s.name)));
    const index = settings.findIndex((setting) => unknown.has(setting.name));
    if (index >= 0) {
      throw new SpecPlanError(
        `settings[${index}].name: unrecognized configuration parameter ` +
          quoteIdent(settings[index].name),
      );
    }
    await checkSpecValues(client, spec);
    if (!options.catalog || spec.skip_pg_catalog_updates) return;
    // Database details change only which statements are planned, never whether it plans.
    await planOnSession(client, databaseSessions(connstr), spec, {
      privilegedRoleName: options.privilegedRoleName,
      concurrency: Math.max(1, Math.floor(options.concurrency)),
      details: false,
      handover: options.systemSession === undefined ? undefined : "offer",
    });
  });
}
