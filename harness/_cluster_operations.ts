/**
 * @module
 * What a running cluster can be asked to do, as the tests, the admin API and
 * `deno task failover` ask it: stop, kill and start pageservers, safekeepers
 * and computes; add a Static or Replica compute; migrate a tenant to another
 * pageserver as Neon's storage controller does; create a timeline from the
 * PGDATA fast_import published. Each operation refuses with a
 * {@linkcode HarnessNotFoundError}, {@linkcode HarnessConflictError} or
 * {@linkcode HarnessBadRequestError}; operations on one component (or one
 * tenant) run one after the other.
 */

import { formatLsn, parseLsn } from "../src/api/lsn.ts";
import { isHexId } from "../src/api/ids.ts";
import { ImportedImageError } from "./base_image.ts";
import { publishedPgdata } from "./_published_pgdata.ts";
import type { ComputeHandle, ComputeOptions, ConfigFile } from "./_compute.ts";
import { specPageserver } from "./_compute.ts";
import { type SpecMode, withPageserver } from "./_compute_spec.ts";
import { HarnessBadRequestError, HarnessConflictError, HarnessNotFoundError } from "./_errors.ts";
import { signalQuietly } from "./_processes.ts";
import type { Pageserver } from "./pageserver.ts";
import type { Safekeeper } from "./safekeeper.ts";
import type { TimelineStore } from "./timeline_store.ts";

/** What can be done to a pageserver, a safekeeper or a compute. */
export type ComponentAction = "stop" | "start" | "kill";

/** A pageserver's or safekeeper's state after an action. */
export interface ComponentState {
  id: number;
  running: boolean;
}

/** The kind of compute {@linkcode ClusterOperations.addCompute} adds. */
export type NewComputeMode = { mode: "Static"; lsn: string } | { mode: "Replica" };

/** Where a new compute runs; both or neither (then the first compute's timeline). */
export interface TimelineChoice {
  tenantId?: string;
  timelineId?: string;
}

/** What {@linkcode ClusterOperations.migrateTenant} did. */
export interface MigrationResult {
  tenant_id: string;
  /** The pageserver the tenant is attached to now. */
  to: number;
  /** Every pageserver holding the tenant as a secondary now. */
  secondary: number[];
  /** The computes whose config now names `to`. */
  computes: string[];
  /** The computes that were sent the new config with `POST /configure` (and answered 200). */
  notified: string[];
}

/** What {@linkcode ClusterOperations.importTimeline} created. */
export interface ImportedTimeline {
  tenant_id: string;
  timeline_id: string;
  /** Where the timeline's WAL begins: the end of the imported image's shutdown checkpoint. */
  initial_lsn: string;
}

/** The cluster operations; `cluster.ts` puts them on the `Cluster`. */
export interface ClusterOperations {
  /** `stop` (graceful), `kill` (every connection dropped) or `start` (same ports) a pageserver. */
  pageserverAction(id: number, action: ComponentAction): Promise<ComponentState>;
  /** The same for a safekeeper: its WAL survives `stop` and `kill`. */
  safekeeperAction(id: number, action: ComponentAction): Promise<ComponentState>;
  /**
   * `stop`: `POST /terminate` (fast) with the admin token, then the manager's
   * exit; `kill`: SIGKILL to the postmaster and the manager at once. Both
   * resolve with the exit code. `start`: a new manager for the compute in the
   * same directory, on the same ports, with `config.json` as it is; resolves
   * with the new handle once it is `running` (`empty` for a compute without a
   * spec).
   */
  computeAction(id: string, action: "start"): Promise<ComputeHandle>;
  computeAction(id: string, action: "stop" | "kill"): Promise<number>;
  computeAction(id: string, action: ComponentAction): Promise<ComputeHandle | number>;
  /**
   * A new compute `compute-N` (the next free N), Static at an LSN or a
   * Replica, on the timeline given (default the first compute's) and the
   * pageserver its tenant is attached to; resolves once it is `running`.
   */
  addCompute(mode: NewComputeMode, timeline?: TimelineChoice): Promise<ComputeHandle>;
  /**
   * Attaches the tenant on pageserver `toPageserverId`, turns every other
   * attached location into a secondary, points every compute of the tenant
   * at the new pageserver (control plane and `config.json`), and with
   * `notify` (default true) sends each running compute `POST /configure`.
   */
  migrateTenant(
    tenantId: string,
    toPageserverId: number,
    options?: { notify?: boolean },
  ): Promise<MigrationResult>;
  /**
   * Creates timeline `timelineId` of `tenantId` from what fast_import
   * published in `importDir` (absolute): `status/pgdata` must say
   * `{"done": true}`, and `pgdata/` becomes the first base image. A compute
   * started on it (`startCompute`, `addCompute`) sees the imported data.
   * Nothing is left in the store when it fails.
   */
  importTimeline(
    tenantId: string,
    timelineId: string,
    importDir: string,
  ): Promise<ImportedTimeline>;
}

/** What the operations need from the cluster. */
export interface OperationsContext {
  store: TimelineStore;
  pageservers: readonly Pageserver[];
  safekeepers: readonly Safekeeper[];
  /** The cluster's live list of computes (a relaunch replaces its entry). */
  computes: readonly ComputeHandle[];
  startCompute(options: ComputeOptions): Promise<ComputeHandle>;
  /** A new manager for `previous`, replacing it in `computes`, once it is up. */
  relaunchCompute(previous: ComputeHandle): Promise<ComputeHandle>;
  /** Whether the handle's manager process has exited. */
  hasExited(handle: ComputeHandle): boolean;
}

/** How long a compute may take to exit after `/terminate` answered before it gets SIGTERM. */
const TERMINATE_EXIT_MS = 30_000;

/** Returns the operations of the cluster described by `ctx`. */
export function clusterOperations(ctx: OperationsContext): ClusterOperations {
  const serialized = keyedQueue();
  const reservedIds = new Set<string>();

  const findCompute = (id: string) => {
    const found = ctx.computes.find((compute) => compute.id === id);
    if (!found) throw new HarnessNotFoundError(`no compute ${JSON.stringify(id)}`);
    return found;
  };

  const computeAction = async (id: string, action: ComponentAction) => {
    findCompute(id);
    return await serialized(`compute:${id}`, async (): Promise<ComputeHandle | number> => {
      const compute = findCompute(id);
      const exited = ctx.hasExited(compute);
      if (action === "start") {
        if (!exited) throw new HarnessConflictError(`compute ${id}: its manager is running`);
        await compute.stop();
        await removeSocketLock(compute);
        return ctx.relaunchCompute(compute);
      }
      if (exited) throw new HarnessConflictError(`compute ${id}: its manager has exited`);
      return action === "stop" ? terminateCompute(compute) : killCompute(compute);
    });
  };

  const addCompute = async (request: NewComputeMode, timeline: TimelineChoice = {}) => {
    const mode = specMode(request);
    const { tenantId, timelineId } = chooseTimeline(ctx, timeline);
    if (!ctx.store.hasTimeline(tenantId, timelineId)) {
      throw new HarnessNotFoundError(`no timeline ${tenantId}/${timelineId}`);
    }
    const attached = ctx.pageservers.findIndex((ps) => ps.tenantState(tenantId) === "attached");
    const id = nextComputeId([...ctx.computes.map((compute) => compute.id), ...reservedIds]);
    reservedIds.add(id);
    try {
      return await ctx.startCompute({
        id,
        tenantId,
        timelineId,
        mode,
        pageserver: Math.max(attached, 0),
      });
    } finally {
      reservedIds.delete(id);
    }
  };

  const migrateTenant = async (
    tenantId: string,
    toPageserverId: number,
    { notify = true } = {},
  ) => {
    const tenant = tenantId.toLowerCase();
    const target = findById("pageserver", ctx.pageservers, toPageserverId);
    const known = ctx.computes.some((compute) => compute.tenantId === tenant) ||
      ctx.pageservers.some((ps) => ps.tenantState(tenant) !== null);
    if (!known) throw new HarnessNotFoundError(`no tenant ${tenantId}`);
    return await serialized(`tenant:${tenant}`, async (): Promise<MigrationResult> => {
      if (!target.running) {
        throw new HarnessConflictError(`pageserver ${toPageserverId} is not running`);
      }
      if (target.tenantState(tenant) === "attached") {
        throw new HarnessConflictError(
          `tenant ${tenant} is already attached to pageserver ${toPageserverId}`,
        );
      }
      target.attach(tenant);
      for (const ps of ctx.pageservers) {
        if (ps !== target && ps.tenantState(tenant) === "attached") ps.setSecondary(tenant);
      }
      const updated = await repointComputes(ctx, tenant, target);
      const running = notify ? updated.filter(({ compute }) => !ctx.hasExited(compute)) : [];
      await Promise.all(running.map(({ compute, config }) => notifyCompute(compute, config)));
      return {
        tenant_id: tenant,
        to: toPageserverId,
        secondary: ctx.pageservers.filter((ps) => ps.tenantState(tenant) === "secondary")
          .map((ps) => ps.id),
        computes: updated.map(({ compute }) => compute.id),
        notified: running.map(({ compute }) => compute.id),
      };
    });
  };

  const importTimeline = async (tenantId: string, timelineId: string, importDir: string) => {
    const tenant = checkedId("tenant", tenantId);
    const timeline = checkedId("timeline", timelineId);
    return await serialized(
      `timeline:${tenant}/${timeline}`,
      async (): Promise<ImportedTimeline> => {
        if (ctx.store.hasTimeline(tenant, timeline)) {
          throw new HarnessConflictError(`timeline ${tenant}/${timeline} already exists`);
        }
        const pgdata = await publishedPgdata(importDir);
        try {
          await ctx.store.importTimeline(tenant, timeline, pgdata);
        } catch (error) {
          if (error instanceof ImportedImageError) throw new HarnessBadRequestError(error.message);
          throw error;
        }
        return {
          tenant_id: tenant,
          timeline_id: timeline,
          initial_lsn: formatLsn(ctx.store.initialLsn(tenant, timeline)),
        };
      },
    );
  };

  return {
    pageserverAction: (id, action) =>
      componentAction("pageserver", ctx.pageservers, id, action, serialized),
    safekeeperAction: (id, action) =>
      componentAction("safekeeper", ctx.safekeepers, id, action, serialized),
    computeAction: computeAction as ClusterOperations["computeAction"],
    addCompute,
    migrateTenant,
    importTimeline,
  };
}

/** A tenant or timeline id in lower case; a bad one is a bad request. */
function checkedId(kind: "tenant" | "timeline", id: string): string {
  if (!isHexId(id)) throw new HarnessBadRequestError(`invalid ${kind} id ${JSON.stringify(id)}`);
  return id.toLowerCase();
}

/** A pageserver or safekeeper: both stop, die and come back. */
interface Component {
  readonly id: number;
  readonly running: boolean;
  stop(): Promise<void>;
  kill(): Promise<void>;
  start(): Promise<void>;
}

async function componentAction(
  kind: "pageserver" | "safekeeper",
  components: readonly Component[],
  id: number,
  action: ComponentAction,
  serialized: KeyedQueue,
): Promise<ComponentState> {
  const component = findById(kind, components, id);
  return await serialized(`${kind}:${id}`, async () => {
    if (action === "start") {
      if (component.running) throw new HarnessConflictError(`${kind} ${id} is running`);
      await component.start();
    } else {
      if (!component.running) throw new HarnessConflictError(`${kind} ${id} is not running`);
      await (action === "stop" ? component.stop() : component.kill());
    }
    return { id, running: component.running };
  });
}

function findById<T extends { id: number }>(kind: string, list: readonly T[], id: number): T {
  const found = list.find((item) => item.id === id);
  if (!found) throw new HarnessNotFoundError(`no ${kind} ${id}`);
  return found;
}

/** `POST /terminate` (fast) with the admin token, then the exit; SIGTERM if either fails. */
async function terminateCompute(compute: ComputeHandle): Promise<number> {
  const answer = await compute.terminate("fast").catch(() => null);
  if (answer?.status === 200) await settledWithin(compute.exited, TERMINATE_EXIT_MS);
  return compute.stop();
}

/** SIGKILL to the postmaster and the manager at once, then whatever they left is reaped. */
async function killCompute(compute: ComputeHandle): Promise<number> {
  const [postmaster, manager] = await Promise.all([
    compute.postmasterPid(),
    compute.managerPid(),
  ]);
  if (postmaster !== undefined) signalQuietly(postmaster, "SIGKILL");
  signalQuietly(manager ?? compute.process.pid, "SIGKILL");
  return compute.stop();
}

/**
 * Removes the unix socket's lock file a killed postmaster leaves in the
 * compute's directory. Its pid can linger as an unreaped zombie for seconds,
 * and Postgres refuses a lock whose pid still exists; `stop()` has already
 * ended every process of the compute, so the lock is stale.
 */
async function removeSocketLock(compute: ComputeHandle): Promise<void> {
  for (const name of [`.s.PGSQL.${compute.pgPort}.lock`, `.s.PGSQL.${compute.pgPort}`]) {
    await Deno.remove(`${compute.dir}/${name}`).catch(() => {});
  }
}

/** Points every compute of `tenant` that has a spec at `target`; returns them with their config. */
async function repointComputes(
  ctx: OperationsContext,
  tenant: string,
  target: Pageserver,
): Promise<{ compute: ComputeHandle; config: ConfigFile }[]> {
  const updated: { compute: ComputeHandle; config: ConfigFile }[] = [];
  for (const compute of ctx.computes.filter((compute) => compute.tenantId === tenant)) {
    if ((await compute.readConfig()).spec === null) continue;
    const config = await compute.updateConfig((config) => ({
      ...config,
      spec: withPageserver(config.spec!, specPageserver(target)),
    }));
    updated.push({ compute, config });
  }
  return updated;
}

/** How long a notification is retried while the compute answers 412 (busy reconfiguring). */
const NOTIFY_RETRY_MS = 30_000;

/**
 * Neon's notification path: `POST /configure` with the new config, which must
 * answer 200. A 412 means the compute is busy (a refresh its probe started is
 * pending): retried, as the storage controller retries notifications.
 */
async function notifyCompute(compute: ComputeHandle, config: ConfigFile): Promise<void> {
  const deadline = Date.now() + NOTIFY_RETRY_MS;
  let answer = await compute.configure(config);
  for (let delayMs = 100; answer.status === 412 && Date.now() < deadline; delayMs *= 1.5) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(delayMs, 2_000)));
    answer = await compute.configure(config);
  }
  if (answer.status !== 200) {
    throw new Error(
      `compute ${compute.id} answered /configure with ${answer.status}: ${answer.text}`,
    );
  }
}

/** The spec's `mode` for a new compute; a Static LSN that does not parse is a bad request. */
export function specMode(request: NewComputeMode): SpecMode {
  switch (request.mode) {
    case "Replica":
      return "Replica";
    case "Static": {
      try {
        return { Static: formatLsn(parseLsn(request.lsn)) };
      } catch {
        throw new HarnessBadRequestError(`invalid LSN ${JSON.stringify(request.lsn)}`);
      }
    }
    default:
      throw new HarnessBadRequestError(
        `unknown mode ${JSON.stringify((request as { mode: unknown }).mode)}: Static or Replica`,
      );
  }
}

function chooseTimeline(
  ctx: OperationsContext,
  { tenantId, timelineId }: TimelineChoice,
): { tenantId: string; timelineId: string } {
  if (tenantId !== undefined && timelineId !== undefined) {
    return { tenantId: tenantId.toLowerCase(), timelineId: timelineId.toLowerCase() };
  }
  if (tenantId !== undefined || timelineId !== undefined) {
    throw new HarnessBadRequestError("give both tenant_id and timeline_id, or neither");
  }
  const first = ctx.computes[0];
  if (!first) {
    throw new HarnessBadRequestError(
      "the cluster has no compute to take the timeline from: give tenant_id and timeline_id",
    );
  }
  return { tenantId: first.tenantId, timelineId: first.timelineId };
}

/** `compute-N` for the smallest N ≥ 1 no id in `taken` uses. */
export function nextComputeId(taken: readonly string[]): string {
  const used = new Set(taken);
  for (let n = 1;; n++) {
    if (!used.has(`compute-${n}`)) return `compute-${n}`;
  }
}

type KeyedQueue = <T>(key: string, task: () => Promise<T>) => Promise<T>;

/** Runs tasks of the same key one after the other (a failure does not block the next). */
function keyedQueue(): KeyedQueue {
  const tails = new Map<string, Promise<unknown>>();
  return <T>(key: string, task: () => Promise<T>) => {
    const run = (tails.get(key) ?? Promise.resolve()).catch(() => {}).then(task);
    tails.set(key, run);
    return run;
  };
}

/** Resolves when `promise` settles or after `timeoutMs`, whichever is first. */
async function settledWithin(promise: Promise<unknown>, timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs));
  try {
    await Promise.race([promise.catch(() => {}), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
