/**
 * @module
 * One compute of the harness cluster: its directory (`config.json`,
 * `compute.log`, `pgdata/`), the manager launched exactly as production does
 * (`runuser -u postgres -- env … deno run -P=compute src/main.ts …`), and the
 * handle tests drive it with: HTTP calls, `config.json` rewrites, signals, and
 * a stop that leaves no process behind.
 */

import type { ComputeStatus, ComputeStatusResponse } from "../src/api/responses.ts";
import type { ControlPlane, JsonObject } from "./control_plane.ts";
import type { Pageserver } from "./pageserver.ts";
import type { Safekeeper } from "./safekeeper.ts";
import type { TimelineStore } from "./timeline_store.ts";
import type { JwtIssuer } from "./jwt.ts";
import { relocatedRunFlags } from "./pg_install.ts";
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
import {
  childPids,
  freePort,
  type OsUser,
  reapProcessesUsing,
  signalQuietly,
  sleep,
} from "./_processes.ts";

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
  /** Extra `postgresql.conf` lines for the spec's `cluster.postgresql_conf`. */
  postgresqlConf?: string[];
  /** Index in `cluster.pageservers` of the pageserver the spec names; default 0. */
  pageserver?: number;
  /** The timeline to run on (created if the store lacks it); fresh random ids when absent. */
  tenantId?: string;
  timelineId?: string;
  /** Primary (default), Replica, or Static at an LSN (`{ Static: "0/16B3748" }`). */
  mode?: SpecMode;
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
  /** The `runuser` process; the manager is its only child. */
  readonly process: Deno.ChildProcess;
  /** Resolves with the manager's exit code (runuser passes it through; 128+n after signal n). */
  readonly exited: Promise<number>;
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
  /** The deno manager's pid (runuser's child), once it exists. */
  managerPid(): Promise<number | undefined>;
  /** Sends `signal` to the manager itself (not to runuser). */
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

/** Creates `path` (mode 0700) owned by `user`. */
export async function ownedDir(path: string, user: OsUser): Promise<string> {
  await Deno.mkdir(path, { mode: 0o700 });
  await Deno.chown(path, user.uid, user.gid);
  return path;
}

/** Writes pretty JSON to `path` through a temporary file and a rename, optionally chowned. */
export async function writeJsonAtomically(
  path: string,
  value: unknown,
  owner?: OsUser,
): Promise<void> {
  const temporary = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(temporary, JSON.stringify(value, null, 2) + "\n", { mode: 0o644 });
  if (owner) await Deno.chown(temporary, owner.uid, owner.gid);
  await Deno.rename(temporary, path);
}

/** What {@linkcode launchCompute} needs from the cluster. */
export interface LaunchContext {
  options: ComputeOptions;
  root: string;
  denoDir: string;
  /** Where `src/main.ts` and `deno.json` are read from (the repository or a staged copy). */
  managerRoot: string;
  user: OsUser;
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
  register(handle: ComputeHandle): void;
}

/**
 * Creates the compute's timeline (attached on every pageserver), writes its
 * config (and the control plane's answer), launches the manager and returns
 * the handle, registered with the cluster before anything can fail after spawn.
 */
export async function launchCompute(context: LaunchContext): Promise<ComputeHandle> {
  const { options, root, user, controlPlane } = context;
  const { id, source = "config", empty = false } = options;
  if (!/^[A-Za-z0-9_.-]+$/.test(id)) {
    throw new Error(`compute id ${JSON.stringify(id)}: use letters, digits, '.', '_' or '-'`);
  }
  const pageserver = context.pageservers[options.pageserver ?? 0];
  if (!pageserver) throw new Error(`compute ${id}: no pageserver #${options.pageserver ?? 0}`);

  await Deno.mkdir(`${root}/computes`, { recursive: true, mode: 0o711 });
  const dir = await ownedDir(`${root}/computes/${id}`, user);
  const pgdata = `${dir}/pgdata`;
  const configPath = `${dir}/config.json`;
  const logPath = `${dir}/compute.log`;
  const tenantId = options.tenantId ?? randomHexId();
  const timelineId = options.timelineId ?? randomHexId();

  if (!context.store.hasTimeline(tenantId, timelineId)) {
    await context.store.createTimeline(tenantId, timelineId);
  }
  for (const ps of context.pageservers) ps.attach(tenantId);
  // As late as possible: someone else may take a port between this and the manager's bind.
  const pgPort = freePort();
  const externalPort = freePort();
  const internalPort = freePort();

  const spec = deepMerge(
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
  const computeCtlConfig = defaultComputeCtlConfig(jwt.publicJwk);
  const tokens: ComputeTokens = {
    compute: await jwt.signComputeToken(id),
    admin: await jwt.signAdminToken(),
  };
  const initialConfig: ConfigFile = {
    spec: empty ? null : spec,
    compute_ctl_config: computeCtlConfig,
  };
  const publish = async (config: ConfigFile) => {
    await writeJsonAtomically(configPath, config, user);
    if (source === "control-plane") {
      controlPlane.setAnswer(
        id,
        config.spec === null
          ? { kind: "empty", computeCtlConfig: config.compute_ctl_config }
          : { kind: "attached", spec: config.spec, computeCtlConfig: config.compute_ctl_config },
      );
    }
  };
  await publish(initialConfig);

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
    if (managerPid === undefined && exitCode === undefined) {
      managerPid = (await childPids(child.pid))[0];
    }
    return managerPid;
  };

  const externalHttp = `http://127.0.0.1:${externalPort}`;
  const internalHttp = `http://127.0.0.1:${internalPort}`;
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

interface ManagerPaths {
  dir: string;
  pgdata: string;
  configPath: string;
  pgPort: number;
  externalPort: number;
  internalPort: number;
}

/**
 * The production command line, run as the `postgres` user from the repository
 * root (where `deno.json` defines `-P=compute`), with a clean environment.
 */
function managerCommand(context: LaunchContext, paths: ManagerPaths): Deno.Command {
  const { options, controlPlane } = context;
  const source = options.source ?? "config";
  const managerArgs = [
    "--external-http-port",
    String(paths.externalPort),
    "--internal-http-port",
    String(paths.internalPort),
    "--pgdata",
    paths.pgdata,
    "--connstr",
    `postgresql://cloud_admin@127.0.0.1:${paths.pgPort}/postgres`,
    ...(source === "config"
      ? ["--config", paths.configPath]
      : ["--control-plane-uri", controlPlane.url]),
    "--pgbin",
    context.pgbin,
    "--compute-id",
    options.id,
    "--exit-delay-ms",
    String(options.exitDelayMs ?? context.exitDelayMs),
    "--external-http-bind",
    "127.0.0.1",
    ...(options.extraArgs ?? []),
  ];
  const envPairs = Object.entries({
    HOME: paths.dir,
    DENO_DIR: context.denoDir,
    NO_COLOR: "1",
    ...(context.auth ? {} : { INSTANCE_ID: "" }),
    ...options.env,
  }).map(([key, value]) => `${key}=${value}`);
  return new Deno.Command("runuser", {
    args: [
      "-u",
      context.user.name,
      "--",
      "env",
      ...envPairs,
      Deno.execPath(),
      "run",
      "-P=compute",
      ...relocatedRunFlags(context.managerRoot, context.pgbin),
      `${context.managerRoot}/src/main.ts`,
      ...managerArgs,
    ],
    cwd: context.managerRoot,
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

async function httpRequest(
  method: string,
  url: string,
  body: unknown,
  headers: Headers,
): Promise<HttpResult> {
  if (body !== undefined && !headers.has("content-type")) {
    headers.set("content-type", "application/json");
  }
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON; `text` has it
  }
  return { status: response.status, headers: response.headers, text, body: parsed };
}

interface PollOptions {
  status: () => Promise<ComputeStatusResponse>;
  wanted: readonly ComputeStatus[];
  timeoutMs: number;
  exitCode: () => number | undefined;
  /** Turns a problem into the error message (with the end of `compute.log`). */
  describe: (problem: string) => Promise<string>;
}

async function pollStatus(
  { status, wanted, timeoutMs, exitCode, describe }: PollOptions,
): Promise<ComputeStatusResponse> {
  const deadline = Date.now() + timeoutMs;
  const names = wanted.join("|");
  let last: ComputeStatusResponse | undefined;
  let lastError: unknown;
  while (true) {
    try {
      last = await status();
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (last && wanted.includes(last.status)) return last;
    if (last?.status === "failed") {
      throw new Error(await describe(`failed while waiting for ${names}: ${last.error}`));
    }
    const code = exitCode();
    if (code !== undefined) {
      throw new Error(await describe(`exited with code ${code} while waiting for ${names}`));
    }
    if (Date.now() >= deadline) {
      throw new Error(
        await describe(
          `reached no ${names} within ${timeoutMs} ms ` +
            `(last status ${last?.status ?? "unknown"}, last error ${lastError ?? "none"})`,
        ),
      );
    }
    await sleep(100);
  }
}

async function readPostmasterPid(pgdata: string): Promise<number | undefined> {
  try {
    const pid = Number((await Deno.readTextFile(`${pgdata}/postmaster.pid`)).split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function pump(stream: ReadableStream<Uint8Array>, file: Deno.FsFile): Promise<void> {
  for await (const chunk of stream) {
    let written = 0;
    while (written < chunk.length) written += await file.write(chunk.subarray(written));
  }
}
