/**
 * @module
 * Applies a compute spec to the running Postgres: snapshot the catalog, plan
 * ({@linkcode planSpecApply}), execute. The snapshot connects to a spec
 * database only when what the last successful apply left there may have
 * changed (see `settled_databases.ts`). Global statements run in order on one
 * session on the system database; per-database statements run on one session
 * per database (opened only when it has statements), at most `concurrency`
 * databases at a time. The first failure stops the apply.
 */

import type pg from "pg";
import pLimit from "p-limit";
import { type ComputeSpec, findOption, specTimelineId } from "../api/spec.ts";
import { errorMessage, getLogger, type Log } from "../log.ts";
import { type ClusterSnapshot, readDatabaseDetails, snapshotCluster } from "./catalog.ts";
import { unknownSettingNames } from "./conf_check.ts";
import { withClient } from "./connect.ts";
import {
  planDetailReads,
  PROCESS_SETTLED,
  settledAfter,
  type SettledDatabases,
  type SettledStore,
} from "./settled_databases.ts";
import {
  planSpecApply,
  type PlanStep,
  type SpecApplyPlan,
  type SpecPhase,
  SpecPlanError,
} from "./spec_plan/mod.ts";
import { checkSpecValues } from "./spec_values_check.ts";
import { quoteIdent } from "./sql_quote.ts";

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
}

/** What {@linkcode applySpec} did. */
export interface ApplySpecResult {
  plan: SpecApplyPlan;
  /** Statements that completed (0 for a dry run or an already-applied spec). */
  statementsRun: number;
}

/** A statement of the plan failed; names the phase, the database and what the statement was for. */
export class SpecApplyError extends Error {
  readonly phase: SpecPhase;
  readonly database?: string;
  readonly purpose: string;
  readonly sql: string;

  constructor(step: PlanStep, cause: unknown) {
    const where = step.database === undefined
      ? ""
      : ` in database ${JSON.stringify(step.database)}`;
    super(`${step.phase}${where} failed to ${step.purpose}: ${errorMessage(cause)}`, { cause });
    this.name = "SpecApplyError";
    this.phase = step.phase;
    this.database = step.database;
    this.purpose = step.purpose;
    this.sql = step.sql;
  }
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
  }: ApplySpecOptions,
): Promise<ApplySpecResult> {
  const limit = Math.max(1, Math.floor(concurrency));
  if (spec.skip_pg_catalog_updates) {
    const note = "skip_pg_catalog_updates is set: no catalog changes planned";
    log.info(note);
    return { plan: { steps: [], notes: [note] }, statementsRun: 0 };
  }
  const inDatabase = databaseSessions(connstr);
  return await withClient(connstr, { applicationName: APPLY_APPLICATION_NAME }, async (client) => {
    const { plan, cluster } = await planOnSession(client, inDatabase, spec, {
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
    const counter = { run: 0 };
    const execute = async () => {
      for (const block of blocks(plan.steps)) {
        if (block.perDatabase) {
          await runPerDatabase(block.steps, limit, inDatabase, counter, log);
        } else {
          for (const step of block.steps) await runStep(client, step, counter);
        }
      }
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
    log.info(`spec applied: ${counter.run} statements in ${elapsedMs} ms`);
    return { plan, statementsRun: counter.run };
  });
}

type InDatabase = <T>(database: string, fn: (client: pg.Client) => Promise<T>) => Promise<T>;

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
  { privilegedRoleName, concurrency, timelineId, settled, details = true, log }:
    PlanOnSessionOptions,
): Promise<{ plan: SpecApplyPlan; cluster: ClusterSnapshot }> {
  const timeline = timelineId ?? specTimelineId(spec);
  const cluster = await snapshotCluster(client, {
    timelineId: spec.drop_subscriptions_before_start ? timeline : undefined,
  });
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
  options: Pick<ApplySpecOptions, "privilegedRoleName" | "concurrency"> & { catalog: boolean },
): Promise<void> {
  await withClient(connstr, { applicationName: APPLY_APPLICATION_NAME }, async (client) => {
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
    });
  });
}

interface Block {
  perDatabase: boolean;
  steps: PlanStep[];
}

/** Splits the plan into runs of global steps and runs of per-database steps, keeping order. */
function blocks(steps: PlanStep[]): Block[] {
  const result: Block[] = [];
  for (const step of steps) {
    const perDatabase = step.database !== undefined;
    const last = result.at(-1);
    if (last && last.perDatabase === perDatabase && last.steps[0].stage === step.stage) {
      last.steps.push(step);
    } else {
      result.push({ perDatabase, steps: [step] });
    }
  }
  return result;
}

async function runStep(client: pg.Client, step: PlanStep, counter: { run: number }): Promise<void> {
  try {
    await client.query(step.sql);
  } catch (error) {
    throw new SpecApplyError(step, error);
  }
  counter.run++;
}

/**
 * Runs per-database steps grouped by database (first-appearance order), each
 * group on its own session, `limit` groups at a time. After a failure no new
 * group starts; the first failure in database order is thrown. In the pre-drop
 * stage "does not exist" errors are logged and ignored (the database is gone).
 */
async function runPerDatabase(
  steps: PlanStep[],
  limit: number,
  inDatabase: InDatabase,
  counter: { run: number },
  log: Log,
): Promise<void> {
  const groups = new Map<string, PlanStep[]>();
  for (const step of steps) {
    const database = step.database as string;
    const group = groups.get(database) ?? [];
    group.push(step);
    groups.set(database, group);
  }
  const run = pLimit(limit);
  let failed = false;
  const results = await Promise.allSettled(
    [...groups].map(([database, group]) =>
      run(async () => {
        if (failed) return;
        try {
          await inDatabase(database, async (client) => {
            for (const step of group) await runStep(client, step, counter);
          });
        } catch (cause) {
          const error = cause instanceof SpecApplyError
            ? cause
            : new SpecApplyError({ ...group[0], purpose: "connect" }, cause);
          const reason = error.cause instanceof Error ? error.cause.message : "";
          if (group[0].stage === "pre-drop" && reason.includes("does not exist")) {
            log.warn(`ignored: ${error.message}`);
            return;
          }
          failed = true;
          throw error;
        }
      })
    ),
  );
  const failure = results.find((result) => result.status === "rejected");
  if (failure) throw (failure as PromiseRejectedResult).reason;
}
