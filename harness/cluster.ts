/**
 * @module
 * A storage cluster in a box around real compute managers: one timeline store,
 * pageservers and safekeepers that serve it, the fake control plane, and
 * compute managers launched exactly as production launches them
 * (`deno run -P=compute src/main.ts …`, as the compute user), each in
 * its own directory with `config.json`, `compute.log` and `pgdata/`.
 * Pageservers, safekeepers and computes can be stopped, killed and started
 * again, computes added and tenants migrated (`_cluster_operations.ts`), from
 * a test or through the admin API the control plane serves under `/harness/`
 * (`admin_api.ts`). Disposing the cluster stops every process and removes its
 * temporary root, also when the test using it failed.
 *
 * ```ts
 * await using cluster = await startCluster({ computes: [{ id: "c1" }] });
 * const status = await cluster.compute("c1").status();
 * ```
 */

import { type ControlPlane, type JsonObject, startControlPlane } from "./control_plane.ts";
import { type Pageserver, startPageserver } from "./pageserver.ts";
import { type Safekeeper, startSafekeeper } from "./safekeeper.ts";
import { createTimelineStore, type TimelineStore } from "./timeline_store.ts";
import {
  type ComputeHandle,
  type ComputeOptions,
  launchCompute,
  type LaunchContext,
  REPO_ROOT,
  specPageserver,
} from "./_compute.ts";
import { ownedDir, writeJsonAtomically } from "./_fs.ts";
import { pageserverConnectionInfo } from "./_compute_spec.ts";
import { createJwtIssuer, type JwtIssuer } from "./jwt.ts";
import { type ClusterOperations, clusterOperations } from "./_cluster_operations.ts";
import { createAdminHandler } from "./admin_api.ts";
import { HarnessConflictError, HarnessNotFoundError } from "./_errors.ts";
import { locatePostgresOnce } from "./pg_locate.ts";
import { assertComputeUserCanRead, reapProcessesUsing } from "./_processes.ts";

export {
  md5Password,
  pageserverConnectionInfo,
  promotedSpec,
  SPEC_DATABASE,
  SPEC_ROLE,
  withPageserver,
} from "./_compute_spec.ts";
export { REPO_ROOT, specPageserver } from "./_compute.ts";
export type {
  ComputeHandle,
  ComputeOptions,
  ComputeTokens,
  ConfigFile,
  HttpResult,
  RequestOptions,
} from "./_compute.ts";
export { createJwtIssuer, type JwtIssuer } from "./jwt.ts";
export type { JsonObject } from "./control_plane.ts";
export type {
  ClusterOperations,
  ComponentAction,
  ComponentState,
  ImportedTimeline,
  MigrationResult,
  NewComputeMode,
  TimelineChoice,
} from "./_cluster_operations.ts";
export { HarnessBadRequestError, HarnessConflictError, HarnessNotFoundError } from "./_errors.ts";

/**
 * The `postgres` binary a cluster runs when its options name none: the
 * default major's install (see {@linkcode locatePostgresOnce}).
 */
export async function defaultPgbin(): Promise<string> {
  return (await locatePostgresOnce()).pgbin;
}

/** Options of {@linkcode startCluster}. */
export interface ClusterOptions {
  pageservers?: number;
  safekeepers?: number;
  computes?: ComputeOptions[];
  /** Default `--exit-delay-ms` of every compute (Neon lingers 30 s; tests need not). */
  exitDelayMs?: number;
  pgbin?: string;
  /** The store compacts a timeline by itself past this much new WAL; default 0 (only on demand). */
  compactionThresholdBytes?: number;
  /** Where safekeepers report notable events (streaming, truncation, errors); default nowhere. */
  safekeeperLog?: (line: string) => void;
  /** Parent of the temporary root; must be a place the `compute` permission set may write. */
  tmpDir?: string;
  /**
   * JWT auth on the external servers (default true). False launches every
   * manager with `INSTANCE_ID` set, the only switch compute_ctl has; the
   * handles still send their tokens.
   */
  auth?: boolean;
}

/** A running cluster; `await using` (or `close()`) stops everything and removes `root`. */
export interface Cluster extends AsyncDisposable, ClusterOperations {
  readonly root: string;
  readonly pgbin: string;
  readonly store: TimelineStore;
  readonly controlPlane: ControlPlane;
  readonly pageservers: readonly Pageserver[];
  readonly safekeepers: readonly Safekeeper[];
  readonly computes: readonly ComputeHandle[];
  /** The cluster's Ed25519 key: every compute trusts it unless its options give another. */
  readonly jwt: JwtIssuer;
  /** `<root>/jwt_private_key.pem`, the PKCS#8 PEM of {@linkcode jwt}'s private key. */
  readonly jwtPrivateKeyPath: string;
  /** The compute `id` (its current handle); throws {@linkcode HarnessNotFoundError} if none. */
  compute(id: string): ComputeHandle;
  /** Creates the timeline, attaches it everywhere, writes the config and launches the manager. */
  startCompute(options: ComputeOptions): Promise<ComputeHandle>;
  /** Stops a pageserver gracefully (e.g. "pageserver down"); `pageserver.start()` brings it back. */
  stopPageserver(pageserver: Pageserver): Promise<void>;
  /** Stops a safekeeper gracefully; it keeps its WAL and `safekeeper.start()` brings it back. */
  stopSafekeeper(safekeeper: Safekeeper): Promise<void>;
  /** `pageserver_connection_info` naming `pageserver` (unsharded). */
  pageserverConnectionInfo(pageserver: Pageserver): JsonObject;
  /** The `cluster.json` document (see {@linkcode writeClusterJson}). */
  clusterJson(): JsonObject;
  /** The entry of compute `id` in `cluster.json`'s `computes`. */
  computeJson(id: string): JsonObject;
  /** Writes `cluster.json` (pretty JSON) to `path`. */
  writeClusterJson(path: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a cluster: temp root, timeline store, `pageservers` pageservers
 * (default 2), `safekeepers` safekeepers (default 3), the control plane, then
 * each compute of `computes` in order, waiting for each as its options say.
 * On any failure everything started so far is stopped before the error is thrown.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const {
    pageservers: pageserverCount = 2,
    safekeepers: safekeeperCount = 3,
    computes: computeOptions = [],
    exitDelayMs = 100,
    pgbin = await defaultPgbin(),
    tmpDir = "/tmp",
    auth = true,
    safekeeperLog,
    compactionThresholdBytes,
  } = options;
  const managerRoot = await managerRootFor();

  const root = await Deno.makeTempDir({ dir: tmpDir, prefix: "compute-ctl-cluster-" });
  await Deno.chmod(root, 0o711);
  const cleanups: (() => Promise<void>)[] = [];
  const computes: ComputeHandle[] = [];
  let closing: Promise<void> | undefined;
  let detachAdminApi = () => {};

  const close = () =>
    closing ??= (async () => {
      detachAdminApi();
      const errors: unknown[] = [];
      const settle = async (fn: () => Promise<unknown>) => {
        try {
          await fn();
        } catch (error) {
          errors.push(error);
        }
      };
      await Promise.all(computes.map((compute) => settle(() => compute.stop())));
      for (const cleanup of cleanups.reverse()) await settle(cleanup);
      await settle(() => reapProcessesUsing(root));
      await settle(() => Deno.remove(root, { recursive: true }));
      if (errors.length > 0) throw new AggregateError(errors, "cluster cleanup failed");
    })();

  try {
    const denoDir = await ownedDir(`${root}/deno`);
    const jwt = await createJwtIssuer();
    const jwtPrivateKeyPath = `${root}/jwt_private_key.pem`;
    await Deno.writeTextFile(jwtPrivateKeyPath, jwt.privateKeyPem, { mode: 0o600 });
    const store = createTimelineStore({ dir: `${root}/store`, pgbin, compactionThresholdBytes });
    cleanups.push(() => store.close());
    const pageservers: Pageserver[] = [];
    for (let id = 1; id <= pageserverCount; id++) {
      const pageserver = startPageserver({ id, store });
      cleanups.push(() => pageserver.close());
      pageservers.push(pageserver);
    }
    const safekeepers: Safekeeper[] = [];
    for (let id = 1; id <= safekeeperCount; id++) {
      const safekeeper = await startSafekeeper({
        id,
        store,
        dir: `${root}/safekeepers/${id}`,
        log: safekeeperLog,
      });
      cleanups.push(() => safekeeper.close());
      safekeepers.push(safekeeper);
    }
    const stopPageserver = async (server: Pageserver) => {
      if (!pageservers.includes(server)) throw new Error("not a pageserver of this cluster");
      await server.stop();
    };
    const controlPlane = await startControlPlane();
    cleanups.push(() => controlPlane.close());

    const launchOptions = new Map<string, ComputeOptions>();
    const exited = new WeakSet<ComputeHandle>();
    const launchContext = (
      computeOptions: ComputeOptions,
      register: (handle: ComputeHandle) => void,
    ): LaunchContext => ({
      options: computeOptions,
      root,
      denoDir,
      managerRoot,
      pgbin,
      exitDelayMs,
      store,
      pageservers,
      safekeepers,
      controlPlane,
      jwt,
      auth,
      register: (handle) => {
        handle.exited.then(() => exited.add(handle));
        register(handle);
      },
    });

    const startCompute = async (computeOptions: ComputeOptions): Promise<ComputeHandle> => {
      if (computes.some((compute) => compute.id === computeOptions.id)) {
        throw new HarnessConflictError(
          `compute ${computeOptions.id} already exists in this cluster`,
        );
      }
      launchOptions.set(computeOptions.id, computeOptions);
      const waitFor = computeOptions.waitFor !== undefined
        ? computeOptions.waitFor
        : computeOptions.empty
        ? "empty"
        : "running";
      for (let attempt = 1;; attempt++) {
        const compute = await launchCompute(
          launchContext(computeOptions, (handle) => computes.push(handle)),
        );
        if (waitFor === null) return compute;
        try {
          await compute.waitForStatus(waitFor, computeOptions.startTimeoutMs ?? 60_000);
          return compute;
        } catch (error) {
          if (attempt >= PORT_RACE_ATTEMPTS || !(await lostPortRace(compute))) throw error;
          // Another process bound one of the ports we were given: start over with new ones.
          await compute.stop();
          computes.splice(computes.indexOf(compute), 1);
          await Deno.remove(compute.dir, { recursive: true });
        }
      }
    };

    /** A new manager for `previous`, in its place in `computes`, once it is up. */
    const relaunchCompute = async (previous: ComputeHandle): Promise<ComputeHandle> => {
      const computeOptions = launchOptions.get(previous.id) ?? { id: previous.id };
      const compute = await launchCompute({
        ...launchContext(computeOptions, (handle) => {
          const index = computes.indexOf(previous);
          if (index === -1) computes.push(handle);
          else computes[index] = handle;
        }),
        previous,
      });
      const { spec } = await compute.readConfig();
      await compute.waitForStatus(
        spec === null ? "empty" : "running",
        computeOptions.startTimeoutMs ?? 60_000,
      );
      return compute;
    };

    const clusterJson = (): JsonObject => ({
      control_plane: { url: controlPlane.url },
      pageservers: pageservers.map((ps) => ({ id: ps.id, libpq: ps.libpqUrl, http: ps.httpUrl })),
      safekeepers: safekeepers.map((sk) => ({ id: sk.id, address: sk.address })),
      computes: computes.map(computeEntry),
      jwt_private_key: jwtPrivateKeyPath,
    });
    const findCompute = (id: string) => {
      const found = computes.find((compute) => compute.id === id);
      if (!found) {
        throw new HarnessNotFoundError(`no compute ${JSON.stringify(id)} in this cluster`);
      }
      return found;
    };

    const cluster: Cluster = {
      root,
      pgbin,
      store,
      controlPlane,
      pageservers,
      safekeepers,
      computes,
      jwt,
      jwtPrivateKeyPath,
      compute: findCompute,
      startCompute,
      stopPageserver,
      stopSafekeeper: (safekeeper) => safekeeper.stop(),
      pageserverConnectionInfo: (ps) => pageserverConnectionInfo(specPageserver(ps)),
      clusterJson,
      computeJson: (id) => computeEntry(findCompute(id)),
      writeClusterJson: (path) => writeJsonAtomically(path, clusterJson()),
      ...clusterOperations({
        store,
        pageservers,
        safekeepers,
        computes,
        startCompute,
        relaunchCompute,
        hasExited: (handle) => exited.has(handle),
      }),
      close,
      [Symbol.asyncDispose]: close,
    };
    controlPlane.setAdminHandler(createAdminHandler(cluster));
    detachAdminApi = () => controlPlane.setAdminHandler(null);
    for (const initial of computeOptions) await startCompute(initial);
    return cluster;
  } catch (error) {
    await close().catch((cleanupError) => {
      throw new AggregateError([error, cleanupError], `${error}; cleanup failed too`);
    });
    throw error;
  }
}

/** How often a compute is launched again after losing a port to another process. */
const PORT_RACE_ATTEMPTS = 3;

/** Whether the compute failed because a port it was given was taken before it could bind. */
async function lostPortRace(compute: ComputeHandle): Promise<boolean> {
  return /Address already in use|could not bind IPv4 address/.test(await compute.readLog());
}

/**
 * The directory compute managers are launched from: the repository itself when
 * the compute user can read it (always, unless the harness runs as root),
 * otherwise a world-readable copy of what the manager needs (deno.json,
 * deno.lock, src, node_modules), made once per process. A CI checkout under a
 * private home directory still works that way.
 */
export async function managerRootFor(): Promise<string> {
  const main = `${REPO_ROOT}/src/main.ts`;
  try {
    await Deno.stat(main);
  } catch {
    throw new Error(`${main} does not exist: there is no compute manager to launch`);
  }
  try {
    await assertComputeUserCanRead([
      REPO_ROOT,
      `${REPO_ROOT}/deno.json`,
      `${REPO_ROOT}/src`,
      main,
      `${REPO_ROOT}/node_modules`,
    ]);
    return REPO_ROOT;
  } catch (unreadable) {
    stagedManagerRoot ??= stageManagerCopy();
    try {
      return await stagedManagerRoot;
    } catch (error) {
      throw new AggregateError([unreadable, error], `${unreadable}; staging a copy failed too`);
    }
  }
}

let stagedManagerRoot: Promise<string> | undefined;

async function stageManagerCopy(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "compute-ctl-manager-" });
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // already gone
    }
  });
  const parts = ["deno.json", "deno.lock", "src", "node_modules"].map((p) => `${REPO_ROOT}/${p}`);
  const copy = await new Deno.Command("cp", { args: ["-a", ...parts, dir] }).output();
  if (!copy.success) throw new Error(`cp failed: ${new TextDecoder().decode(copy.stderr)}`);
  const chmod = await new Deno.Command("chmod", { args: ["-R", "a+rX", dir] }).output();
  if (!chmod.success) throw new Error(`chmod failed: ${new TextDecoder().decode(chmod.stderr)}`);
  await assertComputeUserCanRead([dir, `${dir}/src/main.ts`, `${dir}/node_modules`]);
  return dir;
}

/** A compute's entry in `cluster.json`. */
function computeEntry(compute: ComputeHandle): JsonObject {
  return {
    id: compute.id,
    tenant_id: compute.tenantId,
    timeline_id: compute.timelineId,
    postgres: compute.postgresUrl,
    external_http: compute.externalHttp,
    internal_http: compute.internalHttp,
    config_path: compute.configPath,
    log_path: compute.logPath,
    pgdata: compute.pgdata,
    tokens: { ...compute.tokens },
  };
}
