/**
 * @module
 * One compute of the harness cluster: its directory (`config.json`,
 * `compute.log`, `pgdata/`), the manager launched exactly as production does
 * (`deno run -P=compute src/main.ts …` as the compute user), and the
 * handle tests drive it with: HTTP calls, `config.json` rewrites, signals, and
 * a stop that leaves no process behind.
 */

import { dirname } from "node:path";
import type { ComputeStatus, ComputeStatusResponse } from "../src/api/responses.ts";
import type { ControlPlane, JsonObject } from "./control_plane.ts";
import { type Pageserver, placeTenant } from "./pageserver.ts";
import type { Safekeeper } from "./safekeeper.ts";
import type { TimelineStore } from "./timeline_store.ts";
import type { JwtIssuer } from "./jwt.ts";
import { managerCommand } from "./_manager_command.ts";
import { ownedDir, writeJsonAtomically } from "./_fs.ts";
import { appendingLog, type NeonExtension, startNeonExtension } from "./neon_extension.ts";
import { httpRequest, pollStatus, pump, readPostmasterPid } from "./_compute_http.ts";
import {
  deepMerge,
  defaultComputeCtlConfig,
  generateComputeSpec,
  randomHexId,
  SPEC_DATABASE,
  SPEC_ROLE,
  type SpecMode,
  type SpecPageserver,
} from "./_compute_spec.ts";
import { freePort, programPid, reapProcessesUsing, signalQuietly, sleep } from "./_processes.ts";

/** The repository root: where `deno.json` (and its `compute` permission set) lives. */
export const REPO_ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** How one compute is set up and started. */
export interface ComputeOptions {
  id: string;
  /** `--config <dir>/config.json` (default) or `--control-plane-uri`. */
  source?: "config" | "control-plane";
  /** Start without a spec: `config.json` / the control plane says empty. */
  empty?: boolean;
  /** Deep-merged into the generated spec (objects merge, arrays replace). */
  spec?: JsonObject;
  /** Deep-merged into the generated `compute_ctl_config`, e.g. `{ tls: { key_path, cert_path } }`. */
  computeCtlConfig?: JsonObject;
  /** Extra `postgresql.conf` lines for the spec's `cluster.postgresql_conf`. */
  postgresqlConf?: string[];
  /** Index in `cluster.pageservers` of the pageserver the spec names; default 0. */
  pageserver?: number;
  /** The timeline to run on (created if the store lacks it); fresh random ids when absent. */
  tenantId?: string;
  timelineId?: string;
  /** Primary (default), Replica, or Static at an LSN (`{ Static: "0/16B3748" }`). */
  mode?: SpecMode;
  /** `--pgdata`, absolute, in a directory the compute's user may write; default `<dir>/pgdata`. */
  pgdata?: string;
  /** Extra environment for the manager (e.g. `NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES`). */
  env?: Record<string, string>;
  /** `--exit-delay-ms`; default: the cluster's. */
  exitDelayMs?: number;
  /** Status to wait for after launch; default `running` (`empty` for empty computes); null: none. */
  waitFor?: ComputeStatus | null;
  /** How long to wait for it; default 60 s. */
  startTimeoutMs?: number;
  /** Extra manager arguments, e.g. `["--remote-ext-base-url", url, "--enable-failpoints"]`. */
  extraArgs?: string[];
  /** The key this compute's JWKS holds and its handle signs tokens with; default the cluster's. */
  jwt?: JwtIssuer;
  /**
   * Run the emulated Neon extension beside the manager (`neon_extension.ts`):
   * it probes the pageserver Postgres names and asks for a refresh when the
   * tenant is not served there. `true` uses its default interval and back-off.
   */
  neonExtension?: { intervalMs?: number; backoffMs?: number } | boolean;
}

/** An HTTP answer from a compute: status code, raw text and the JSON body if it is JSON. */
export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
  // deno-lint-ignore no-explicit-any -- tests read whichever body shape the route returns
  body: any;
}

/** The `ComputeConfig` in `config.json`: a spec (or null for an empty compute) and the JWKS. */
export interface ConfigFile {
  spec: JsonObject | null;
  compute_ctl_config: JsonObject;
}

/** The tokens a handle sends to the external server. */
export interface ComputeTokens {
  /** `{compute_id: <id>}`: what every call but `/terminate` sends. */
  compute: string;
  /** `{aud: ["compute"], scope: "compute_ctl:admin", compute_id: null}`: sent to `/terminate`. */
  admin: string;
}

/** Options of {@linkcode ComputeHandle.request}. */
export interface RequestOptions {
  /** JSON-encoded unless a string; sent with `content-type: application/json`. */
  body?: unknown;
  /** Send to the internal port (never with a token). */
  internal?: boolean;
  /** Bearer token for the external port; default the compute token; null sends none. */
  token?: string | null;
  /** Extra headers; an `authorization` here replaces the bearer token. */
  headers?: Record<string, string>;
}

/** A launched compute manager. */
export interface ComputeHandle {
  readonly id: string;
  readonly source: "config" | "control-plane";
  readonly tenantId: string;
  readonly timelineId: string;
  readonly pgPort: number;
  /** `postgresql://cloud_admin@127.0.0.1:<pg>/postgres`, usable as is (trust on loopback). */
  readonly postgresUrl: string;
  readonly externalHttp: string;
  readonly internalHttp: string;
  readonly dir: string;
  readonly pgdata: string;
  readonly configPath: string;
  readonly logPath: string;
  /** The spec generated at creation (also for empty computes, ready to `/configure`). */
  readonly spec: JsonObject;
  /** Tokens signed with the key of this compute's JWKS. */
  readonly tokens: ComputeTokens;
  /**
   * The process the harness spawned: `runuser` when it runs as root (the
   * manager is its only child), else the manager itself.
   */
  readonly process: Deno.ChildProcess;
  /** Resolves with the manager's exit code (runuser passes it through; 128+n after signal n). */
  readonly exited: Promise<number>;
  /** The emulated Neon extension, when {@linkcode ComputeOptions.neonExtension} asked for it. */
  readonly neonExtension: NeonExtension | undefined;
  /** A connection URL for `user` (default the spec role) on `database` (default the spec db). */
  connectionUrl(options?: { user?: string; password?: string; database?: string }): string;
  /** `GET /status`. */
  status(): Promise<ComputeStatusResponse>;
  /**
   * Polls `/status` every 100 ms until it is (one of) `status`; throws if the
   * process exits, if the compute reaches `failed` while waiting for another
   * status, or after `timeoutMs`, quoting the end of `compute.log`.
   */
  waitForStatus(
    status: ComputeStatus | readonly ComputeStatus[],
    timeoutMs?: number,
  ): Promise<ComputeStatusResponse>;
  /** `POST /configure` with `body` (default `{spec: this.spec, compute_ctl_config}`). */
  configure(body?: unknown): Promise<HttpResult>;
  /** `POST /terminate[?mode=…]` with the admin token, like neon_local. */
  terminate(mode?: "fast" | "immediate"): Promise<HttpResult>;
  /** `POST /refresh_configuration` on the internal port. */
  refreshConfiguration(): Promise<HttpResult>;
  /** `GET /metrics` text. */
  metrics(): Promise<string>;
  /** `GET /metrics.json`. */
  metricsJson(): Promise<HttpResult>;
  /** Any request to the external (or `internal: true`) port. */
  request(method: string, path: string, options?: RequestOptions): Promise<HttpResult>;
  readConfig(): Promise<ConfigFile>;
  /**
   * Rewrites `config.json` with what `mutator` returns (or the object it
   * mutated), atomically. For control-plane computes the control plane answers
   * the new config from now on too.
   */
  updateConfig(mutator: (config: ConfigFile) => ConfigFile | void): Promise<ConfigFile>;
  /** `compute.log` so far. */
  readLog(): Promise<string>;
  /** The postmaster's pid from `pgdata/postmaster.pid`, if Postgres is up. */
  postmasterPid(): Promise<number | undefined>;
  /** The deno manager's pid (runuser's child when root), once it exists. */
  managerPid(): Promise<number | undefined>;
  /** Sends `signal` to the manager itself (not to a runuser in front of it). */
  kill(signal: Deno.Signal): Promise<void>;
  /**
   * Stops the manager: SIGTERM, SIGKILL after `timeoutMs`, then ends whatever
   * Postgres it left in its directory. Returns the exit code. Idempotent.
   */
  stop(timeoutMs?: number): Promise<number>;
}

/** The pageserver as a spec names it. */
export function specPageserver(pageserver: Pageserver): SpecPageserver {
  return { id: pageserver.id, libpqUrl: pageserver.libpqUrl };
}

/** What {@linkcode launchCompute} needs from the cluster. */
export interface LaunchContext {
  options: ComputeOptions;
  root: string;
  denoDir: string;
  /** Where `src/main.ts` and `deno.json` are read from (the repository or a staged copy). */
  managerRoot: string;
  pgbin: string;
  exitDelayMs: number;
  store: TimelineStore;
  pageservers: readonly Pageserver[];
  safekeepers: readonly Safekeeper[];
  controlPlane: ControlPlane;
  /** The cluster's key; `options.jwt` replaces it for this compute. */
  jwt: JwtIssuer;
  /** False: launch the manager with `INSTANCE_ID` set, which switches its auth off. */
  auth: boolean;
  /**
   * Relaunch this compute: a new manager in its directory, on its ports, with
   * its tokens and `config.json` as they are (no timeline created, nothing
   * attached, no config written).
   */
  previous?: ComputeHandle;
  register(handle: ComputeHandle): void;
}

/**
 * Creates the compute's timeline (attached on its pageserver, see
 * {@linkcode placeTenant}), writes its config (and the control plane's answer),
 * launches the manager and returns the handle, registered with the cluster
 * before anything can fail after spawn. With `context.previous` only the
 * manager is launched again.
 */
export async function launchCompute(context: LaunchContext): Promise<ComputeHandle> {
  const { options, root, controlPlane, previous } = context;
  const { id, source = "config", empty = false } = options;
  if (!/^[A-Za-z0-9_.-]+$/.test(id)) {
    throw new Error(`compute id ${JSON.stringify(id)}: use letters, digits, '.', '_' or '-'`);
  }
  const pageserver = context.pageservers[options.pageserver ?? 0];
  if (!pageserver) throw new Error(`compute ${id}: no pageserver #${options.pageserver ?? 0}`);

  if (!previous) await Deno.mkdir(`${root}/computes`, { recursive: true, mode: 0o711 });
  const dir = previous?.dir ?? await ownedDir(`${root}/computes/${id}`);
  const pgdata = previous?.pgdata ?? options.pgdata ?? `${dir}/pgdata`;
  const configPath = `${dir}/config.json`;
  const logPath = `${dir}/compute.log`;
  const tenantId = previous?.tenantId ?? options.tenantId ?? randomHexId();
  const timelineId = previous?.timelineId ?? options.timelineId ?? randomHexId();

  if (!previous && !context.store.hasTimeline(tenantId, timelineId)) {
    await context.store.createTimeline(tenantId, timelineId);
  }
  if (!previous) placeTenant(context.pageservers, pageserver, tenantId);
  // As late as possible: someone else may take a port between this and the manager's bind.
  const pgPort = previous?.pgPort ?? freePort();
  const externalPort = previous ? portOf(previous.externalHttp) : freePort();
  const internalPort = previous ? portOf(previous.internalHttp) : freePort();

  const spec = previous?.spec ?? deepMerge(
    generateComputeSpec({
      computeId: id,
      tenantId,
      timelineId,
      pgPort,
      socketDir: dir,
      pageserver: specPageserver(pageserver),
      safekeepers: context.safekeepers.map((sk) => sk.address),
      postgresqlConf: options.postgresqlConf,
      mode: options.mode,
    }),
    options.spec ?? {},
  );
  const jwt = options.jwt ?? context.jwt;
  const computeCtlConfig = deepMerge(
    defaultComputeCtlConfig(jwt.publicJwk),
    options.computeCtlConfig ?? {},
  );
  const tokens: ComputeTokens = previous?.tokens ?? {
    compute: await jwt.signComputeToken(id),
    admin: await jwt.signAdminToken(),
  };
  const initialConfig: ConfigFile = {
    spec: empty ? null : spec,
    compute_ctl_config: computeCtlConfig,
  };
  const publish = async (config: ConfigFile) => {
    await writeJsonAtomically(configPath, config, { forComputeUser: true });
    if (source === "control-plane") {
      controlPlane.setAnswer(
        id,
        config.spec === null
          ? { kind: "empty", computeCtlConfig: config.compute_ctl_config }
          : { kind: "attached", spec: config.spec, computeCtlConfig: config.compute_ctl_config },
      );
    }
  };
  if (!previous) await publish(initialConfig);

  const logFile = await Deno.open(logPath, { create: true, append: true });
  let child: Deno.ChildProcess;
  try {
    child = managerCommand(context, { dir, pgdata, configPath, pgPort, externalPort, internalPort })
      .spawn();
  } catch (error) {
    logFile.close();
    throw error;
  }
  const pumped = Promise.all([pump(child.stdout, logFile), pump(child.stderr, logFile)])
    .finally(() => logFile.close());
  const exited = child.status.then((status) => status.code);
  let exitCode: number | undefined;
  exited.then((code) => exitCode = code);

  let managerPid: number | undefined;
  const findManager = async () => {
    if (managerPid === undefined && exitCode === undefined) managerPid = await programPid(child);
    return managerPid;
  };

  const externalHttp = `http://127.0.0.1:${externalPort}`;
  const internalHttp = `http://127.0.0.1:${internalPort}`;
  const neonExtension = options.neonExtension
    ? startNeonExtension({
      postgresUrl: `postgresql://cloud_admin@127.0.0.1:${pgPort}/postgres`,
      internalHttp,
      tenantId,
      timelineId,
      ...(options.neonExtension === true ? {} : options.neonExtension),
      authToken: typeof spec.storage_auth_token === "string" ? spec.storage_auth_token : undefined,
      log: appendingLog(logPath),
    })
    : undefined;
  exited.then(() => neonExtension?.stop());
  const request = (
    method: string,
    path: string,
    { body, internal = false, token = tokens.compute, headers = {} }: RequestOptions = {},
  ) => {
    const sent = new Headers(
      internal || token === null ? {} : { authorization: `Bearer ${token}` },
    );
    for (const [name, value] of Object.entries(headers)) sent.set(name, value);
    return httpRequest(method, `${internal ? internalHttp : externalHttp}${path}`, body, sent);
  };
  const readLog = () => Deno.readTextFile(logPath).catch(() => "");

  const status = async (): Promise<ComputeStatusResponse> => {
    const result = await request("GET", "/status");
    if (result.status !== 200) {
      throw new Error(`GET /status answered ${result.status}: ${result.text}`);
    }
    return result.body as ComputeStatusResponse;
  };

  const waitForStatus = (
    wanted: ComputeStatus | readonly ComputeStatus[],
    timeoutMs = 60_000,
  ) =>
    pollStatus({
      status,
      wanted: typeof wanted === "string" ? [wanted] : wanted,
      timeoutMs,
      exitCode: () => exitCode,
      describe: async (problem) =>
        `compute ${id} ${problem}\n--- end of ${logPath} ---\n` +
        (await readLog()).split("\n").slice(-40).join("\n"),
    });

  let stopping: Promise<number> | undefined;
  const stop = (timeoutMs = 10_000) =>
    stopping ??= (async () => {
      await neonExtension?.stop();
      const pid = await findManager();
      if (exitCode === undefined) {
        signalQuietly(pid ?? child.pid, "SIGTERM");
        const timedOut = await Promise.race([
          exited.then(() => false),
          sleep(timeoutMs).then(() => true),
        ]);
        if (timedOut) {
          if (pid !== undefined) signalQuietly(pid, "SIGKILL");
          signalQuietly(child.pid, "SIGKILL");
        }
      }
      const code = await exited;
      await reapProcessesUsing(dir);
      // A PGDATA elsewhere: the postmaster's command line names its parent, not `dir`.
      if (!pgdata.startsWith(`${dir}/`)) await reapProcessesUsing(dirname(pgdata));
      await pumped;
      return code;
    })();

  const handle: ComputeHandle = {
    id,
    source,
    tenantId,
    timelineId,
    pgPort,
    postgresUrl: `postgresql://cloud_admin@127.0.0.1:${pgPort}/postgres`,
    externalHttp,
    internalHttp,
    dir,
    pgdata,
    configPath,
    logPath,
    spec,
    tokens,
    process: child,
    exited,
    neonExtension,
    connectionUrl: ({ user: role = SPEC_ROLE.name, password, database = SPEC_DATABASE } = {}) => {
      const auth = password === undefined
        ? encodeURIComponent(role)
        : `${encodeURIComponent(role)}:${encodeURIComponent(password)}`;
      return `postgresql://${auth}@127.0.0.1:${pgPort}/${encodeURIComponent(database)}`;
    },
    status,
    waitForStatus,
    configure: (body = { spec, compute_ctl_config: computeCtlConfig }) =>
      request("POST", "/configure", { body }),
    terminate: (mode) =>
      request("POST", mode ? `/terminate?mode=${mode}` : "/terminate", { token: tokens.admin }),
    refreshConfiguration: () => request("POST", "/refresh_configuration", { internal: true }),
    metrics: async () => (await request("GET", "/metrics")).text,
    metricsJson: () => request("GET", "/metrics.json"),
    request,
    readConfig: async () => JSON.parse(await Deno.readTextFile(configPath)) as ConfigFile,
    updateConfig: async (mutator) => {
      const current = JSON.parse(await Deno.readTextFile(configPath)) as ConfigFile;
      const next = mutator(current) ?? current;
      await publish(next);
      return next;
    },
    readLog,
    postmasterPid: () => readPostmasterPid(pgdata),
    managerPid: findManager,
    kill: async (signal) => {
      const pid = await findManager();
      if (pid !== undefined && exitCode === undefined) signalQuietly(pid, signal);
    },
    stop,
  };
  context.register(handle);
  return handle;
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}
