/**
 * @module
 * Runs a failover scenario against a running cluster, through its admin API,
 * while the workloads commit: each step does its damage, waits for what it
 * expects (the compute healed, commits flowing again, or commits blocked), and
 * is timed from its start to the first commit after it. After every step the
 * primary is checked: every acknowledged row present, the bank total intact.
 * While no primary runs, nothing is expected of commits, and nothing is checked.
 */

import { formatLsn, type Lsn } from "../../src/api/lsn.ts";
import { timelineStatus } from "../../src/storage/safekeepers.ts";
import type { AdminClient, ClusterState, ComputeEntry } from "./admin_client.ts";
import type { Step } from "./scenario.ts";
import { promotedSpec } from "../_compute_spec.ts";
import { verify, withClient, type Workloads } from "./workload.ts";

/** One line of the report. */
export interface StepReport {
  index: number;
  step: string;
  outcome: string;
  /** From the step's start to the first commit after it is done; null when none was expected. */
  recoveryMs: number | null;
  rowsAcknowledged: number;
  transfersAcknowledged: number;
  /** null: the primary was down, nothing to check. */
  verified: boolean | null;
  /** What the check after the step found, when there was one. */
  verification?: { missingRows: number; bankSum: number };
  problem?: string;
}

/** What a run needs. */
export interface RunContext {
  admin: AdminClient;
  workloads: Workloads;
  /** The primary compute's id at the start. */
  primary: string;
  /** How long to wait for any one expectation; default 60 s. */
  timeoutMs?: number;
  /** One line per event, as it happens. */
  log?: (line: string) => void;
  /** Looked at before each step: once aborted, the remaining steps are not run. */
  signal?: AbortSignal;
}

/** How a run ended: a report line per step, and which compute is the primary now. */
export interface RunResult {
  reports: StepReport[];
  primary: { id: string; up: boolean };
}

/** Runs `steps` in order (stopping at the first failure or loss). */
export async function runScenario(steps: readonly Step[], ctx: RunContext): Promise<RunResult> {
  const timeoutMs = ctx.timeoutMs ?? 60_000;
  const log = ctx.log ?? (() => {});
  const run = { primary: ctx.primary, primaryUp: true, replica: null as string | null };
  const reports: StepReport[] = [];
  const result = (): RunResult => ({ reports, primary: { id: run.primary, up: run.primaryUp } });
  for (const [position, step] of steps.entries()) {
    if (ctx.signal?.aborted) break;
    const index = position + 1;
    const startedAt = performance.now();
    const base = { index, step: describe(step) };
    log(`step ${index}: ${base.step}`);
    let outcome: string;
    let expectCommits: boolean;
    try {
      ({ outcome, expectCommits } = await execute(step, ctx, run, timeoutMs));
    } catch (error) {
      reports.push({
        ...base,
        outcome: "failed",
        recoveryMs: null,
        rowsAcknowledged: ctx.workloads.acknowledgedRows.size,
        transfersAcknowledged: ctx.workloads.acknowledgedTransfers,
        verified: null,
        problem: (error as Error).message,
      });
      log(`step ${index} failed: ${(error as Error).message}`);
      return result();
    }
    let recoveryMs: number | null = null;
    if (expectCommits) {
      const at = await within(ctx.workloads.nextCommit(), timeoutMs, "a commit after the step");
      recoveryMs = Math.round(at - startedAt);
    }
    let verified: boolean | null = null;
    let verification: StepReport["verification"];
    let problem: string | undefined;
    if (run.primaryUp) {
      const state = await ctx.admin.state();
      const result = await verify(computeOf(state, run.primary).postgres, ctx.workloads);
      verified = result.ok;
      verification = { missingRows: result.missingRows.length, bankSum: result.bankSum };
      if (!result.ok) {
        problem = `missing rows ${result.missingRows.slice(0, 10).join(", ")}` +
          `${result.missingRows.length > 10 ? " …" : ""}; bank ${result.bankSum} of ` +
          `${ctx.workloads.bankTotal}`;
      }
    }
    reports.push({
      ...base,
      outcome,
      recoveryMs,
      rowsAcknowledged: ctx.workloads.acknowledgedRows.size,
      transfersAcknowledged: ctx.workloads.acknowledgedTransfers,
      verified,
      verification,
      problem,
    });
    log(
      `step ${index}: ${outcome}${
        recoveryMs === null ? "" : ` (commits again after ${recoveryMs} ms)`
      }`,
    );
    if (verified === false) return result();
  }
  return result();
}

interface RunState {
  primary: string;
  primaryUp: boolean;
  replica: string | null;
}

async function execute(
  step: Step,
  ctx: RunContext,
  run: RunState,
  timeoutMs: number,
): Promise<{ outcome: string; expectCommits: boolean }> {
  const { admin, workloads } = ctx;
  switch (step.step) {
    case "run": {
      const target = workloads.acknowledgedRows.size + workloads.acknowledgedTransfers +
        step.commits;
      while (workloads.acknowledgedRows.size + workloads.acknowledgedTransfers < target) {
        await within(workloads.nextCommit(), timeoutMs, `${step.commits} commits`);
      }
      return { outcome: `${step.commits} more commits`, expectCommits: true };
    }
    case "migrate": {
      const state = await admin.state();
      const compute = computeOf(state, run.primary);
      await admin.migrate(compute.tenant_id, step.to, step.notify);
      await waitForPageserver(compute, pageserverUrl(state, step.to), timeoutMs);
      return {
        outcome: `tenant on pageserver ${step.to}; the compute ${
          step.notify ? "was told" : "healed itself"
        }`,
        expectCommits: true,
      };
    }
    case "pageserver":
      await admin.pageserver(step.id, step.action);
      return {
        outcome: `pageserver ${step.id} ${pastTense(step.action)}`,
        expectCommits: run.primaryUp,
      };
    case "fail_pageserver": {
      const state = await admin.state();
      const compute = computeOf(state, run.primary);
      await admin.pageserver(step.id, "kill");
      const other = state.pageservers.find((ps) => ps.id !== step.id);
      if (!other) throw new Error("no other pageserver to move the tenant to");
      await admin.migrate(compute.tenant_id, other.id, false);
      await waitForPageserver(compute, other.libpq, timeoutMs);
      return {
        outcome: `pageserver ${step.id} killed; tenant moved to ${other.id}, the compute healed`,
        expectCommits: true,
      };
    }
    case "safekeeper": {
      await admin.safekeeper(step.id, step.action);
      if (step.expect === "blocked") {
        const compute = computeOf(await admin.state(), run.primary);
        await waitForSyncRepWait(compute.postgres, timeoutMs);
        return {
          outcome: `safekeeper ${step.id} ${pastTense(step.action)}; commits wait for a quorum`,
          expectCommits: false,
        };
      }
      return {
        outcome: `safekeeper ${step.id} ${pastTense(step.action)}`,
        expectCommits: run.primaryUp,
      };
    }
    case "compute": {
      const answer = await admin.compute(run.primary, step.action);
      if (step.action === "start") {
        run.primaryUp = true;
        workloads.retarget((answer as unknown as ComputeEntry).postgres);
        return { outcome: `the primary (${run.primary}) started again`, expectCommits: true };
      }
      run.primaryUp = false;
      return {
        outcome: `the primary (${run.primary}) ${
          pastTense(step.action)
        }, exit code ${answer.exit_code}`,
        expectCommits: false,
      };
    }
    case "add_replica": {
      const replica = await admin.addCompute({ mode: "Replica" });
      run.replica = replica.id;
      return { outcome: `replica ${replica.id} running`, expectCommits: run.primaryUp };
    }
    case "promote_replica": {
      if (run.replica === null) throw new Error("no replica to promote (add_replica first)");
      if (run.primaryUp) throw new Error("the primary still runs: kill or stop it first");
      const state = await admin.state();
      const replica = computeOf(state, run.replica);
      const lsn = await agreedLsn(state, replica, timeoutMs);
      await promote(replica, state, lsn, timeoutMs);
      run.primary = replica.id;
      run.primaryUp = true;
      run.replica = null;
      workloads.retarget(replica.postgres);
      return {
        outcome: `replica ${replica.id} promoted at ${formatLsn(lsn)}`,
        expectCommits: true,
      };
    }
  }
}

function describe(step: Step): string {
  switch (step.step) {
    case "run":
      return `run ${step.commits} commits`;
    case "migrate":
      return `migrate to pageserver ${step.to} (${step.notify ? "notify" : "refresh"})`;
    case "pageserver":
      return `${step.action} pageserver ${step.id}`;
    case "fail_pageserver":
      return `kill pageserver ${step.id}, storage controller moves the tenant`;
    case "safekeeper":
      return `${step.action} safekeeper ${step.id}, expect ${step.expect}`;
    case "compute":
      return `${step.action} the primary`;
    case "add_replica":
      return "add a replica";
    case "promote_replica":
      return "promote the replica";
  }
}

function pastTense(action: "stop" | "start" | "kill"): string {
  return action === "stop" ? "stopped" : action === "start" ? "started" : "killed";
}

function computeOf(state: ClusterState, id: string): ComputeEntry {
  const compute = state.computes.find((entry) => entry.id === id);
  if (!compute) throw new Error(`no compute ${id} in the cluster`);
  return compute;
}

function pageserverUrl(state: ClusterState, id: number): string {
  const pageserver = state.pageservers.find((ps) => ps.id === id);
  if (!pageserver) throw new Error(`no pageserver ${id}`);
  return pageserver.libpq;
}

/** Until Postgres's `neon.pageserver_connstring` names `libpqUrl`. */
async function waitForPageserver(compute: ComputeEntry, libpqUrl: string, timeoutMs: number) {
  await until(
    async () => {
      const value = await withClient(
        compute.postgres,
        async (client) =>
          (await client.query<{ v: string }>(
            "SELECT current_setting('neon.pageserver_connstring', true) AS v",
          ))
            .rows[0].v,
      ).catch(() => "");
      return value.split(",")[0] === libpqUrl;
    },
    timeoutMs,
    `the compute to use ${libpqUrl}`,
  );
}

/** Until some backend of the primary waits for synchronous replication. */
async function waitForSyncRepWait(url: string, timeoutMs: number) {
  await until(
    () =>
      withClient(url, async (client) =>
        (await client.query(
          "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
        )).rows.length > 0),
    timeoutMs,
    "a commit waiting for the safekeeper quorum",
  );
}

/** The LSN a quorum of safekeepers agrees on once the primary is gone. */
async function agreedLsn(state: ClusterState, compute: ComputeEntry, timeoutMs: number) {
  let agreed: Lsn | null = null;
  await until(
    async () => {
      const answers = await Promise.all(state.safekeepers.map((sk) =>
        timelineStatus(sk.address, {
          tenantId: compute.tenant_id,
          timelineId: compute.timeline_id,
          timeoutMs: 1_000,
        }).catch(() => null)
      ));
      const known = answers.filter((answer) =>
        answer !== null && answer.flushLsn === answer.commitLsn
      );
      const counts = new Map<Lsn, number>();
      for (const answer of known) {
        counts.set(
          answer!.flushLsn,
          (counts.get(answer!.flushLsn) ?? 0) + 1,
        );
      }
      for (const [lsn, count] of counts) {
        if (count >= Math.floor(state.safekeepers.length / 2) + 1) agreed = lsn;
      }
      return agreed !== null;
    },
    timeoutMs,
    "the safekeepers to agree where WAL ends",
  );
  return agreed!;
}

/**
 * `POST /promote` with the replica's spec as a primary's. Like a control plane,
 * it first has the replica prewarm its cache and waits for that to end: Neon
 * refuses to promote a compute whose prewarm has not run (on vanilla Postgres
 * the prewarm fails, which promotion accepts).
 */
async function promote(replica: ComputeEntry, state: ClusterState, lsn: Lsn, timeoutMs: number) {
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${replica.external_http}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${replica.tokens.compute}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  await (await call("POST", "/lfc/prewarm")).body?.cancel();
  await until(
    async () => {
      const { status } = await (await call("GET", "/lfc/prewarm")).json();
      return ["completed", "failed", "skipped"].includes(status);
    },
    timeoutMs,
    "the replica's prewarm to end",
  );
  const config = JSON.parse(await Deno.readTextFile(replica.config_path));
  const spec = promotedSpec(config.spec, state.safekeepers.map((sk) => sk.address));
  const response = await call("POST", "/promote", { spec, wal_flush_lsn: formatLsn(lsn) });
  const text = await response.text();
  if (!response.ok) throw new Error(`/promote answered ${response.status}: ${text}`);
  // A later restart of this compute must come back as the primary it now is.
  await Deno.writeTextFile(
    replica.config_path,
    JSON.stringify({ ...config, spec }, null, 2) + "\n",
  );
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() >= deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
