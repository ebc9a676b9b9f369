/**
 * @module
 * The compute_ctl command line: the same long and short flags, defaults, env
 * fallback and mutual exclusions as Neon's `compute_ctl`, plus flags of our own
 * (`--exit-delay-ms`, `--tls-cert-check-interval-ms`, `--external-http-bind`,
 * `--internal-http-bind`, `--enable-failpoints`). Each flag is defined once, as
 * an `Option` of the command; {@linkcode CliOptions} is inferred from those definitions
 * (`@commander-js/extra-typings`), so adding a flag is one edit. Parsing is
 * pure: it reads the `env` it is given, never exits and never prints; errors
 * and `--help` arrive as a {@linkcode CliError} the caller reports.
 */

import { Command, CommanderError, InvalidArgumentError, Option } from "@commander-js/extra-typings";

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

/**
 * The command and its flags: the one definition of each flag. Its long name
 * (camel-cased) is the key in {@linkcode CliOptions}, its argument parser
 * gives the value's type, and `--help` prints its description.
 */
function buildCommand() {
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
    })
    .addOption(
      new Option(
        "-b, --pgbin <path>",
        "Path to the postgres binary (env: POSTGRES_PATH, default: postgres)",
      ),
    )
    .addOption(
      new Option(
        "-r, --remote-ext-base-url <url>",
        "Base URL of the remote extension storage; trailing slashes collapse to one",
      ).argParser(parseRemoteExtBaseUrl),
    )
    .addOption(
      new Option("--external-http-port <port>", "Port of the external HTTP server")
        .default(3080).argParser(parsePort),
    )
    .addOption(
      new Option(
        "--internal-http-port <port>",
        "Port of the internal HTTP server (also neon.extension_server_port)",
      ).default(3081).argParser(parsePort),
    )
    .addOption(
      new Option(
        "--http-port <port>",
        "Legacy: with --lakebase-mode true, external port = port, internal = port+1",
      ).conflicts(["externalHttpPort", "internalHttpPort"]).argParser(parsePort),
    )
    .addOption(
      new Option("-D, --pgdata <dir>", "PGDATA directory, recreated on every start")
        .makeOptionMandatory(),
    )
    .addOption(
      new Option(
        "-C, --connstr <url>",
        "URL to connect to the local Postgres, e.g. postgresql://cloud_admin@localhost:5432/postgres",
      ).makeOptionMandatory().argParser(parseUrl),
    )
    .addOption(
      new Option(
        "--privileged-role-name <name>",
        "Role granted to users as a weak superuser; must match ^[a-z_]+$",
      ).default("neon_superuser").argParser(parseRoleName),
    )
    .addOption(
      new Option("--cgroup <name>", `vm-monitor cgroup (${NOT_SUPPORTED})`)
        .default("neon-postgres"),
    )
    .addOption(
      new Option(
        "--filecache-connstr <connstr>",
        `vm-monitor file cache connstring (${NOT_SUPPORTED})`,
      ).default(
        "host=localhost port=5432 dbname=postgres user=cloud_admin sslmode=disable " +
          "application_name=vm-monitor",
      ),
    )
    .addOption(
      new Option("--vm-monitor-addr <addr>", `vm-monitor listen address (${NOT_SUPPORTED})`)
        .default("0.0.0.0:10301"),
    )
    .addOption(
      new Option(
        "--resize-swap-on-bind",
        `Resize swap to the spec's swap_size_bytes (${NOT_SUPPORTED})`,
      ).default(false),
    )
    .addOption(
      new Option(
        "--set-disk-quota-for-fs <mountpoint>",
        `Set the spec's disk_quota_bytes on this filesystem (${NOT_SUPPORTED})`,
      ),
    )
    .addOption(
      new Option("-c, --config <path>", "ComputeConfig JSON file ({spec, compute_ctl_config})")
        .conflicts("controlPlaneUri"),
    )
    .addOption(new Option("-i, --compute-id <id>", "Compute identifier").makeOptionMandatory())
    .addOption(
      new Option(
        "-p, --control-plane-uri <url>",
        "Control plane API base URL to fetch the config from",
      ).conflicts("config").argParser(parseControlPlaneUri),
    )
    .addOption(
      new Option(
        "--installed-extensions-collection-interval <seconds>",
        "Base interval of the installed-extensions statistics",
      ).default(3600).argParser((value) => parseUnsigned(value, "seconds")),
    )
    .addOption(
      new Option("--dev", "Development mode: on a signal, do not kill pgbouncer or local_proxy")
        .default(false),
    )
    .addOption(
      new Option(
        "--pg-init-timeout <seconds>",
        `Lakebase: exit if Postgres is not running this long after start (${NOT_SUPPORTED})`,
      ).argParser((value) => parseUnsigned(value, "seconds")),
    )
    .addOption(
      new Option(
        "--lakebase-mode <bool>",
        `Lakebase (Databricks) mode, true or false (${NOT_SUPPORTED}, except --http-port)`,
      ).default(false).argParser(parseBool),
    )
    .addOption(
      new Option(
        "--exit-delay-ms <ms>",
        "Linger this long before exiting after a fast termination or a failed start",
      ).default(30000).argParser((value) => parseUnsigned(value, "ms")),
    )
    .addOption(
      new Option(
        "--tls-cert-check-interval-ms <ms>",
        "How often the certificate of compute_ctl_config.tls is checked for a change",
      ).default(60000).argParser((value) => parseUnsigned(value, "ms")),
    )
    .addOption(
      new Option(
        "--external-http-bind <addr>",
        "Address of the external HTTP server (Neon binds [::]; 0.0.0.0 listens on every IPv4 address)",
      ).default("0.0.0.0").argParser(parseBindAddress),
    )
    .addOption(
      new Option(
        "--internal-http-bind <addr>",
        "Address of the internal HTTP server (Neon binds [::])",
      ).default("127.0.0.1").argParser(parseBindAddress),
    )
    .addOption(
      new Option(
        "--enable-failpoints",
        "Let POST /failpoints configure failpoints (like Neon's testing builds); tests only",
      ).default(false),
    );
  refuseRepeatedValues(command);
  return command;
}

type CliCommand = ReturnType<typeof buildCommand>;

/** The flags as commander parsed them: one key per flag, typed by its definition. */
type ParsedFlags = ReturnType<CliCommand["opts"]>;

/** The flags whose value {@linkcode finish} derives or renames (units in names). */
type Derived = "pgbin" | "installedExtensionsCollectionInterval" | "pgInitTimeout";

/**
 * The parsed command line, with defaults applied and every value checked: one
 * key per flag (the flag's long name, camel-cased), except that `pgbin` falls
 * back to `POSTGRES_PATH` and then `postgres`, and the two durations in seconds
 * say so in their names.
 */
export type CliOptions = Readonly<
  Omit<ParsedFlags, Derived> & {
    pgbin: string;
    installedExtensionsCollectionIntervalSeconds: number;
    pgInitTimeoutSeconds: number | undefined;
  }
>;

/** Giving a flag that takes a value twice is an error, as with clap. */
function refuseRepeatedValues(command: CliCommand): void {
  const seen = new Set<string>();
  for (const option of command.options) {
    if (!option.required && !option.optional) continue;
    const name = option.name();
    command.on(`option:${name}`, () => {
      if (seen.has(name)) command.error(`--${name} may be given only once.`);
      seen.add(name);
    });
  }
}

/**
 * The options of a parsed `command`, every flag present as a key (undefined
 * when neither given nor defaulted), checked across flags: a config source is
 * required, and `--http-port` moves the ports in lakebase mode.
 */
function finish(command: CliCommand, env: Record<string, string | undefined>): CliOptions {
  const given: Record<string, unknown> = command.opts();
  const all = Object.fromEntries(
    command.options.map((option) => [option.attributeName(), given[option.attributeName()]]),
  ) as ParsedFlags;
  const { pgbin, installedExtensionsCollectionInterval, pgInitTimeout, ...flags } = all;
  if (flags.config === undefined && flags.controlPlaneUri === undefined) {
    throw new CliError("one of -c/--config or -p/--control-plane-uri is required");
  }
  let { externalHttpPort, internalHttpPort } = flags;
  if (flags.lakebaseMode && flags.httpPort !== undefined) {
    if (flags.httpPort === 65535) {
      throw new CliError("--http-port 65535 leaves no room for the internal port (port + 1)");
    }
    externalHttpPort = flags.httpPort;
    internalHttpPort = flags.httpPort + 1;
  }
  const envPgbin = env.POSTGRES_PATH;
  return {
    ...flags,
    pgbin: pgbin ?? (envPgbin !== undefined && envPgbin !== "" ? envPgbin : "postgres"),
    externalHttpPort,
    internalHttpPort,
    installedExtensionsCollectionIntervalSeconds: installedExtensionsCollectionInterval,
    pgInitTimeoutSeconds: pgInitTimeout,
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
