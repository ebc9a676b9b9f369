/**
 * @module
 * Runs a spec-apply plan, stage after stage: global steps on the session on
 * the system database, in plan order, except that consecutive steps of one
 * phase in lanes (`PlanStep.lane`: e.g. one `CREATE DATABASE` and its grant)
 * also use up to {@linkcode MAX_LANE_SESSIONS} − 1 more sessions there when
 * there are many; per-database steps on one session per database (opened
 * only when it has steps), at most `concurrency` databases at a time. Each
 * statement is
 * autocommitted. After a failure no statement starts; the first failure in
 * plan order among those that ran is thrown as a {@linkcode SpecApplyError}.
 */

import type pg from "pg";
import pLimit from "p-limit";
import { errorMessage, type Log } from "../log.ts";
import type { PlanStep, SpecPhase } from "./spec_plan/mod.ts";

/** What the executor needs of a session: sending one statement (a `pg.Client` is one). */
export interface StatementSession {
  query(sql: string): Promise<unknown>;
}

/** Runs `fn` on a new session on `database`, closed afterwards. */
export type InDatabase<S extends StatementSession = pg.Client> = <T>(
  database: string,
  fn: (client: S) => Promise<T>,
) => Promise<T>;

/**
 * Sessions on the system database running lanes of global steps at the same
 * time, the main one included (and never more than the apply's concurrency):
 * `CREATE DATABASE` is mostly waiting for its WAL to be copied and
 * acknowledged, so a few at a time overlap well even on two cores.
 */
export const MAX_LANE_SESSIONS = 3;

/**
 * Lanes that make opening one more session worth it: a session costs a few
 * `CREATE ROLE`s to open, so ten roles or ten databases run on the main
 * session alone, as before.
 */
export const LANES_PER_EXTRA_SESSION = 16;

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

/** Where {@linkcode executePlan} runs the steps. */
export interface ExecuteOptions<S extends StatementSession = pg.Client> {
  /** The session on the system database: global steps run on it. */
  client: S;
  /** The database `client` is on, where more sessions for lanes are opened. */
  systemDatabase: string;
  /** Opens a session on a database (per-database steps, lanes). */
  inDatabase: InDatabase<S>;
  /** Sessions besides `client` at a time (at least 1 is assumed). */
  concurrency: number;
  log: Log;
}

/**
 * Runs `steps` stage after stage and returns how many completed. Throws
 * {@linkcode SpecApplyError} for the first failing step in plan order; the
 * steps that completed stay applied.
 */
export async function executePlan<S extends StatementSession>(
  steps: readonly PlanStep[],
  options: ExecuteOptions<S>,
): Promise<number> {
  const counter = { run: 0 };
  const limit = Math.max(1, Math.floor(options.concurrency));
  for (const block of blocks(steps)) {
    if (block.kind === "per-database") {
      await runPerDatabase(block.steps, limit, options, counter);
    } else if (block.kind === "lanes") {
      await runLanes(block.steps, Math.min(limit, MAX_LANE_SESSIONS), options, counter);
    } else {
      for (const step of block.steps) await runStep(options.client, step, counter);
    }
  }
  return counter.run;
}

interface Block {
  kind: "global" | "lanes" | "per-database";
  steps: PlanStep[];
}

function kindOf(step: PlanStep): Block["kind"] {
  if (step.database !== undefined) return "per-database";
  return step.lane === undefined ? "global" : "lanes";
}

/**
 * Splits the plan, keeping order, into runs of per-database steps of one
 * stage, runs of laned global steps of one phase, and the global steps between.
 */
function blocks(steps: readonly PlanStep[]): Block[] {
  const result: Block[] = [];
  for (const step of steps) {
    const kind = kindOf(step);
    const last = result.at(-1);
    const first = last?.steps[0];
    const joins = last !== undefined && first !== undefined && last.kind === kind &&
      first.stage === step.stage && (kind !== "lanes" || first.phase === step.phase);
    if (joins) last.steps.push(step);
    else result.push({ kind, steps: [step] });
  }
  return result;
}

async function runStep(
  client: StatementSession,
  step: PlanStep,
  counter: { run: number },
): Promise<void> {
  try {
    await client.query(step.sql);
  } catch (error) {
    throw new SpecApplyError(step, error);
  }
  counter.run++;
}

/**
 * Runs laned global steps on `client` and up to `width` − 1 more sessions on
 * the system database (one per {@linkcode LANES_PER_EXTRA_SESSION} lanes), each session taking the next lane in plan order and
 * running its steps in order. After a failure no statement starts; of the
 * failures, the earliest in plan order is thrown. A session that cannot be
 * opened leaves its share to the others.
 */
async function runLanes<S extends StatementSession>(
  steps: PlanStep[],
  width: number,
  { client, systemDatabase, inDatabase, log }: ExecuteOptions<S>,
  counter: { run: number },
): Promise<void> {
  const lanes = new Map<string, number[]>();
  steps.forEach((step, index) => {
    const lane = lanes.get(step.lane as string) ?? [];
    lane.push(index);
    lanes.set(step.lane as string, lane);
  });
  const queue = [...lanes.values()];
  let next = 0;
  const failures = new Map<number, unknown>();
  const work = async (session: StatementSession) => {
    while (failures.size === 0 && next < queue.length) {
      for (const index of queue[next++]) {
        if (failures.size > 0) return;
        try {
          await runStep(session, steps[index], counter);
        } catch (error) {
          failures.set(index, error);
          return;
        }
      }
    }
  };
  const helpers = Array.from(
    { length: Math.min(width - 1, Math.floor(queue.length / LANES_PER_EXTRA_SESSION)) },
    () =>
      inDatabase(systemDatabase, work).catch((error) => {
        log.debug(`an extra apply session was not opened: ${errorMessage(error)}`);
      }),
  );
  await Promise.all([work(client), ...helpers]);
  if (failures.size > 0) throw failures.get(Math.min(...failures.keys()));
}

/**
 * Runs per-database steps grouped by database (first-appearance order), each
 * group on its own session, `limit` groups at a time. After a failure no
 * statement starts; the first failure in database order is thrown. In the pre-drop
 * stage "does not exist" errors are logged and ignored (the database is gone).
 */
async function runPerDatabase<S extends StatementSession>(
  steps: PlanStep[],
  limit: number,
  { inDatabase, log }: ExecuteOptions<S>,
  counter: { run: number },
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
            for (const step of group) {
              if (failed) return;
              await runStep(client, step, counter);
            }
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
