/**
 * @module
 * The compute_ctl command line: the same long and short flags, defaults, env
 * fallback and mutual exclusions as Neon's `compute_ctl`, plus flags of our own
 * (`--exit-delay-ms`, `--external-http-bind`, `--internal-http-bind`,
 * `--enable-failpoints`). Parsing is pure: it reads the `env` it is given,
 * never exits and never prints; errors and `--help` arrive as a
 * {@linkcode CliError} the caller reports.
 */

import { Command, CommanderError, InvalidArgumentError, Option } from "commander";

/** The parsed command line, with defaults applied and every value checked. */
export interface CliOptions {
  /** Path to the `postgres` binary (`-b`, env `POSTGRES_PATH`, default `postgres`). */
  pgbin: string;
  /** Remote extension storage base URL, normalised to end in exactly one `/`. */
  remoteExtBaseUrl?: string;
  /** Port of the external (control plane, JWT) HTTP server. */
  externalHttpPort: number;
  /** Port of the internal HTTP server; also `neon.extension_server_port`. */
  internalHttpPort: number;
  /**
   * The legacy `--http-port` as given. It only moves the ports in lakebase mode;
   * otherwise it is ignored (the caller may warn).
   */
  httpPort?: number;
  /** PGDATA, wiped on every start. */
  pgdata: string;
  /** How compute_ctl connects to its own Postgres. */
  connstr: URL;
  /** The "weak superuser" role; matches `^[a-z_]+$`, so it never needs quoting. */
  privilegedRoleName: string;
  /** vm-monitor cgroup (accepted, not supported here). */
  cgroup: string;
  /** vm-monitor file cache connstring (accepted, not supported here). */
  filecacheConnstr: string;
  /** vm-monitor listen address (accepted, not supported here). */
  vmMonitorAddr: string;
  /** Allow `/neonvm/bin/resize-swap` (accepted, not supported here). */
  resizeSwapOnBind: boolean;
  /** Mountpoint for `/neonvm/bin/set-disk-quota` (accepted, not supported here). */
  setDiskQuotaForFs?: string;
  /** Path of a `ComputeConfig` JSON file. Exactly one of `config` / `controlPlaneUri` is set. */
  config?: string;
  /** Control plane base URL. Exactly one of `config` / `controlPlaneUri` is set. */
  controlPlaneUri?: string;
  /** Compute identifier: control plane URL path and JWT audience checks. */
  computeId: string;
  /** Base interval of the installed-extensions statistics task. */
  installedExtensionsCollectionIntervalSeconds: number;
  /** Development mode: on a signal, leave pgbouncer and local_proxy alone. */
  dev: boolean;
  /** Lakebase start timeout (accepted, not supported here). */
  pgInitTimeoutSeconds?: number;
  /** Lakebase mode (accepted; only its `--http-port` meaning is honoured). */
  lakebaseMode: boolean;
  /** How long to linger before exiting after a fast termination or a failed start. */
  exitDelayMs: number;
  /** Address the external HTTP server binds to. */
  externalHttpBind: string;
  /** Address the internal HTTP server binds to. */
  internalHttpBind: string;
  /** Serve `POST /failpoints` (Neon's testing builds); without it the route answers 412. */
  enableFailpoints: boolean;
}

/**
 * A command line that cannot be run, or a request for help. `exitCode` is what
 * the process should exit with: 0 when `--help` was asked for (then `message` is
 * the help text, for stdout), 2 for a usage error (`message` for stderr).
 */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

const NOT_SUPPORTED = "accepted for compatibility, not supported here";
const HELP_WIDTH = 100;

/** Returns the `--help` text: every flag with its default and meaning. */
export function cliHelp(): string {
  return buildCommand().helpInformation();
}

/**
 * Parses compute_ctl's arguments (without the program name) into
 * {@linkcode CliOptions}. `env` supplies `POSTGRES_PATH`. Throws
 * {@linkcode CliError} on any invalid input, and for `-h`/`--help`.
 */
export function parseCli(
  argv: readonly string[],
  env: Record<string, string | undefined>,
): CliOptions {
  const command = buildCommand();
  try {
    command.parse([...argv], { from: "user" });
  } catch (error) {
    if (error instanceof CliError) throw error;
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.help") {
        throw new CliError(command.helpInformation(), 0);
      }
      throw new CliError(error.message.replace(/^error: /, ""));
    }
    throw error;
  }
  return finish(command, env);
}

function buildCommand(): Command {
  const seen = new Set<string>();
  /** Wraps a value parser so that giving the same flag twice is an error, as with clap. */
  const once = <T>(name: string, parse: (value: string) => T) => (value: string): T => {
    if (seen.has(name)) throw new InvalidArgumentError(`--${name} may be given only once.`);
    seen.add(name);
    return parse(value);
  };
  const text = (name: string) => once(name, (value) => value);

  const command = new Command("compute_ctl")
    .description("Manages a Neon compute node: the Postgres in this container or VM.")
    .exitOverride()
    .allowExcessArguments(false)
    .allowUnknownOption(false)
    .helpOption("-h, --help", "Print help")
    .configureOutput({
      writeOut: () => {},
      writeErr: () => {},
      outputError: () => {},
      getOutHelpWidth: () => HELP_WIDTH,
      getErrHelpWidth: () => HELP_WIDTH,
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    });

  const options = [
    new Option(
      "-b, --pgbin <path>",
      "Path to the postgres binary (env: POSTGRES_PATH, default: postgres)",
    )
      .argParser(text("pgbin")),
    new Option(
      "-r, --remote-ext-base-url <url>",
      "Base URL of the remote extension storage; trailing slashes collapse to one",
    ).argParser(once("remote-ext-base-url", parseRemoteExtBaseUrl)),
    new Option("--external-http-port <port>", "Port of the external HTTP server")
      .default(3080).argParser(once("external-http-port", parsePort)),
    new Option(
      "--internal-http-port <port>",
      "Port of the internal HTTP server (also neon.extension_server_port)",
    ).default(3081).argParser(once("internal-http-port", parsePort)),
    new Option(
      "--http-port <port>",
      "Legacy: with --lakebase-mode true, external port = port, internal = port+1",
    ).conflicts(["externalHttpPort", "internalHttpPort"]).argParser(once("http-port", parsePort)),
    new Option("-D, --pgdata <dir>", "PGDATA directory, recreated on every start")
      .makeOptionMandatory().argParser(text("pgdata")),
    new Option(
      "-C, --connstr <url>",
      "URL to connect to the local Postgres, e.g. postgresql://cloud_admin@localhost:5432/postgres",
    ).makeOptionMandatory().argParser(once("connstr", parseConnstr)),
    new Option(
      "--privileged-role-name <name>",
      "Role granted to users as a weak superuser; must match ^[a-z_]+$",
    ).default("neon_superuser").argParser(once("privileged-role-name", parseRoleName)),
    new Option("--cgroup <name>", `vm-monitor cgroup (${NOT_SUPPORTED})`)
      .default("neon-postgres").argParser(text("cgroup")),
    new Option(
      "--filecache-connstr <connstr>",
      `vm-monitor file cache connstring (${NOT_SUPPORTED})`,
    )
      .default(
        "host=localhost port=5432 dbname=postgres user=cloud_admin sslmode=disable " +
          "application_name=vm-monitor",
      ).argParser(text("filecache-connstr")),
    new Option("--vm-monitor-addr <addr>", `vm-monitor listen address (${NOT_SUPPORTED})`)
      .default("0.0.0.0:10301").argParser(text("vm-monitor-addr")),
    new Option(
      "--resize-swap-on-bind",
      `Resize swap to the spec's swap_size_bytes (${NOT_SUPPORTED})`,
    )
      .default(false),
    new Option(
      "--set-disk-quota-for-fs <mountpoint>",
      `Set the spec's disk_quota_bytes on this filesystem (${NOT_SUPPORTED})`,
    ).argParser(text("set-disk-quota-for-fs")),
    new Option("-c, --config <path>", "ComputeConfig JSON file ({spec, compute_ctl_config})")
      .conflicts("controlPlaneUri").argParser(text("config")),
    new Option("-i, --compute-id <id>", "Compute identifier")
      .makeOptionMandatory().argParser(text("compute-id")),
    new Option(
      "-p, --control-plane-uri <url>",
      "Control plane API base URL to fetch the config from",
    )
      .conflicts("config").argParser(once("control-plane-uri", parseControlPlaneUri)),
    new Option(
      "--installed-extensions-collection-interval <seconds>",
      "Base interval of the installed-extensions statistics",
    ).default(3600).argParser(
      once("installed-extensions-collection-interval", (value) => parseUnsigned(value, "seconds")),
    ),
    new Option("--dev", "Development mode: on a signal, do not kill pgbouncer or local_proxy")
      .default(false),
    new Option(
      "--pg-init-timeout <seconds>",
      `Lakebase: exit if Postgres is not running this long after start (${NOT_SUPPORTED})`,
    ).argParser(once("pg-init-timeout", (value) => parseUnsigned(value, "seconds"))),
    new Option(
      "--lakebase-mode <bool>",
      `Lakebase (Databricks) mode, true or false (${NOT_SUPPORTED}, except --http-port)`,
    ).default(false).argParser(once("lakebase-mode", parseBool)),
    new Option(
      "--exit-delay-ms <ms>",
      "Linger this long before exiting after a fast termination or a failed start",
    ).default(30000).argParser(once("exit-delay-ms", (value) => parseUnsigned(value, "ms"))),
    new Option(
      "--external-http-bind <addr>",
      "Address of the external HTTP server (Neon binds [::]; 0.0.0.0 listens on every IPv4 address)",
    ).default("0.0.0.0").argParser(once("external-http-bind", parseBindAddress)),
    new Option(
      "--internal-http-bind <addr>",
      "Address of the internal HTTP server (Neon binds [::])",
    ).default("127.0.0.1").argParser(once("internal-http-bind", parseBindAddress)),
    new Option(
      "--enable-failpoints",
      "Let POST /failpoints configure failpoints (like Neon's testing builds); tests only",
    ).default(false),
  ];
  for (const option of options) command.addOption(option);
  return command;
}

interface RawOptions {
  pgbin?: string;
  remoteExtBaseUrl?: string;
  externalHttpPort: number;
  internalHttpPort: number;
  httpPort?: number;
  pgdata: string;
  connstr: URL;
  privilegedRoleName: string;
  cgroup: string;
  filecacheConnstr: string;
  vmMonitorAddr: string;
  resizeSwapOnBind: boolean;
  setDiskQuotaForFs?: string;
  config?: string;
  computeId: string;
  controlPlaneUri?: string;
  installedExtensionsCollectionInterval: number;
  dev: boolean;
  pgInitTimeout?: number;
  lakebaseMode: boolean;
  exitDelayMs: number;
  externalHttpBind: string;
  internalHttpBind: string;
  enableFailpoints: boolean;
}

function finish(command: Command, env: Record<string, string | undefined>): CliOptions {
  const raw = command.opts<RawOptions>();
  if (raw.config === undefined && raw.controlPlaneUri === undefined) {
    throw new CliError("one of -c/--config or -p/--control-plane-uri is required");
  }
  let { externalHttpPort, internalHttpPort } = raw;
  if (raw.lakebaseMode && raw.httpPort !== undefined) {
    if (raw.httpPort === 65535) {
      throw new CliError("--http-port 65535 leaves no room for the internal port (port + 1)");
    }
    externalHttpPort = raw.httpPort;
    internalHttpPort = raw.httpPort + 1;
  }
  const envPgbin = env.POSTGRES_PATH;
  return {
    pgbin: raw.pgbin ?? (envPgbin !== undefined && envPgbin !== "" ? envPgbin : "postgres"),
    remoteExtBaseUrl: raw.remoteExtBaseUrl,
    externalHttpPort,
    internalHttpPort,
    httpPort: raw.httpPort,
    pgdata: raw.pgdata,
    connstr: raw.connstr,
    privilegedRoleName: raw.privilegedRoleName,
    cgroup: raw.cgroup,
    filecacheConnstr: raw.filecacheConnstr,
    vmMonitorAddr: raw.vmMonitorAddr,
    resizeSwapOnBind: raw.resizeSwapOnBind,
    setDiskQuotaForFs: raw.setDiskQuotaForFs,
    config: raw.config,
    controlPlaneUri: raw.controlPlaneUri,
    computeId: raw.computeId,
    installedExtensionsCollectionIntervalSeconds: raw.installedExtensionsCollectionInterval,
    dev: raw.dev,
    pgInitTimeoutSeconds: raw.pgInitTimeout,
    lakebaseMode: raw.lakebaseMode,
    exitDelayMs: raw.exitDelayMs,
    externalHttpBind: raw.externalHttpBind,
    internalHttpBind: raw.internalHttpBind,
    enableFailpoints: raw.enableFailpoints,
  };
}

function parsePort(value: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new InvalidArgumentError("expected a port number from 1 to 65535.");
  }
  return port;
}

function parseUnsigned(value: string, unit: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError(`expected a non-negative integer (${unit}).`);
  }
  return Number(value);
}

function parseBool(value: string): boolean {
  if (value === "true") return true;
  if (value === "false") return false;
  throw new InvalidArgumentError("expected true or false.");
}

function parseUrl(value: string): URL {
  try {
    return new URL(value);
  } catch {
    throw new InvalidArgumentError("not a valid URL.");
  }
}

function parseConnstr(value: string): URL {
  return parseUrl(value);
}

function parseControlPlaneUri(value: string): string {
  parseUrl(value);
  return value;
}

/** Collapses trailing slashes to exactly one and rejects a query string, as Neon does. */
function parseRemoteExtBaseUrl(value: string): string {
  const url = parseUrl(value);
  const beforeFragment = url.href.split("#")[0];
  if (url.search !== "" || beforeFragment.includes("?")) {
    throw new InvalidArgumentError("must not contain a query string.");
  }
  url.pathname = url.pathname.replace(/\/+$/, "") + "/";
  return url.href;
}

function parseRoleName(value: string): string {
  if (!/^[a-z_]+$/.test(value)) {
    throw new InvalidArgumentError("must match ^[a-z_]+$.");
  }
  return value;
}

function parseBindAddress(value: string): string {
  if (value.trim() === "" || /\s/.test(value)) {
    throw new InvalidArgumentError("expected an IP address or host name.");
  }
  return value;
}
