/**
 * @module
 * fast_import's command line: Neon's flags, subcommands and environment
 * fallbacks (`--working-directory`/`NEON_IMPORTER_WORKDIR`, `--pg-bin-dir`,
 * `--pg-lib-dir`, then `pgdata` or `dump-restore` with their own flags), plus
 * `--spec-file` and `--destination-dir`, which stand in for Neon's S3 prefix.
 * As with clap, the program's flags come before the subcommand. Parsing is
 * pure: it reads the `env` it is given, never prints and never exits; errors
 * and `--help` arrive as a {@linkcode UsageError}.
 *
 * ```sh
 * fast_import --working-directory W --pg-bin-dir B --pg-lib-dir L \
 *   pgdata --source-connection-string postgresql://… --pg-port 5433
 * ```
 */

import { Command, CommanderError, InvalidArgumentError, Option } from "commander";

/** `pgdata`: restore into a private Postgres and publish its PGDATA. */
export interface PgdataCommand {
  name: "pgdata";
  /** The source, unless a spec file names it. */
  sourceConnectionString?: string;
  /** Keep the private Postgres up after the restore until SIGINT. */
  interactive: boolean;
  /** Port of the private Postgres (on localhost). */
  pgPort: number;
  /** Sizes the parallel workers; default: the CPUs of this machine. */
  numCpus?: number;
  /** Sizes `shared_buffers` and `maintenance_work_mem`; default 256. */
  memoryMb?: number;
}

/** `dump-restore`: pg_dump from the source, pg_restore into the destination. */
export interface DumpRestoreCommand {
  name: "dump-restore";
  sourceConnectionString?: string;
  destinationConnectionString?: string;
}

/** The parsed command line, environment fallbacks applied. */
export interface FastImportArgs {
  /** Where the dump (and for `pgdata` the PGDATA) is made; must be empty or absent. */
  workingDirectory: string;
  /** Directory of `initdb`, `postgres`, `pg_dump`, `pg_restore`, `pg_config`, `psql`. */
  pgBinDir: string;
  /** The libraries of those binaries (`LD_LIBRARY_PATH`, see `command_lines.ts`). */
  pgLibDir: string;
  /** A plain JSON spec naming the connection strings (Neon reads an encrypted one from S3). */
  specFile?: string;
  /** Where `pgdata/` and `status/` are published (Neon uploads them to the S3 prefix). */
  destinationDir?: string;
  command: PgdataCommand | DumpRestoreCommand;
}

/** The environment variables fast_import reads, by the flag they stand in for. */
export const ENV_FALLBACKS = {
  workingDirectory: "NEON_IMPORTER_WORKDIR",
  s3Prefix: "NEON_IMPORTER_S3_PREFIX",
  pgBinDir: "NEON_IMPORTER_PG_BIN_DIR",
  pgLibDir: "NEON_IMPORTER_PG_LIB_DIR",
  specFile: "NEON_IMPORTER_SPEC_FILE",
  destinationDir: "NEON_IMPORTER_DESTINATION_DIR",
  numCpus: "NEON_IMPORTER_NUM_CPUS",
  memoryMb: "NEON_IMPORTER_MEMORY_MB",
} as const;

/** The default of `--pg-port`, as in Neon. */
export const DEFAULT_PG_PORT = 5432;

/**
 * A command line that cannot run, or a request for help. `exitCode` is 0 for
 * `--help` (`message` is the help text, for stdout) and 2 for a usage error
 * (`message` for stderr), as clap exits.
 */
export class UsageError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = "UsageError";
    this.exitCode = exitCode;
  }
}

const HELP_WIDTH = 100;
const S3_UNSUPPORTED = "is not supported here (there is no S3): " +
  "use --spec-file for the spec and --destination-dir for the published PGDATA";
const S3_HELP = "Neon's S3 prefix; not supported here: use --spec-file and --destination-dir";

/**
 * Parses fast_import's arguments (without the program name; a leading `--`,
 * as `deno task fast-import -- …` passes it, is skipped). `env` supplies the
 * fallbacks of {@linkcode ENV_FALLBACKS}; an empty value counts as unset.
 * Throws {@linkcode UsageError} on invalid input and for `-h`/`--help`.
 */
export function parseFastImportArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): FastImportArgs {
  const args = argv[0] === "--" ? argv.slice(1) : [...argv];
  let helpText = "";
  let chosen: { name: string; options: Record<string, unknown> } | undefined;
  const program = buildProgram((text) => helpText += text, (name, options) => {
    chosen = { name, options };
  });
  try {
    program.parse(args, { from: "user" });
  } catch (error) {
    if (error instanceof UsageError) throw error;
    if (!(error instanceof CommanderError)) throw error;
    if (error.code === "commander.helpDisplayed") throw new UsageError(helpText.trimEnd(), 0);
    if (error.code === "commander.help") {
      throw new UsageError("a subcommand is required: pgdata or dump-restore");
    }
    throw new UsageError(error.message.replace(/^error: /, ""));
  }
  if (!chosen) throw new UsageError("a subcommand is required: pgdata or dump-restore");
  return finish(program.opts(), chosen, env);
}

/** The `--help` text of the program. */
export function fastImportHelp(): string {
  let text = "";
  buildProgram((chunk) => text += chunk, () => {}).outputHelp();
  return text.trimEnd();
}

type OnAction = (name: string, options: Record<string, unknown>) => void;

function buildProgram(writeOut: (text: string) => void, onAction: OnAction): Command {
  const seen = new Set<string>();
  /** Wraps a value parser so that giving the same flag twice is an error, as with clap. */
  const once = <T>(name: string, parse: (value: string) => T) => (value: string): T => {
    if (seen.has(name)) throw new InvalidArgumentError(`--${name} may be given only once.`);
    seen.add(name);
    return parse(value);
  };
  const text = (name: string) => once(name, (value) => value);

  const program = new Command("fast_import")
    .description(
      "Dumps a Postgres database and restores it into a private Postgres whose PGDATA the " +
        "storage imports as a timeline (pgdata), or into another database (dump-restore).",
    )
    .exitOverride()
    .enablePositionalOptions()
    .helpCommand(false)
    .allowExcessArguments(false)
    .helpOption("-h, --help", "Print help")
    .configureOutput({
      writeOut,
      writeErr: () => {},
      outputError: () => {},
      getOutHelpWidth: () => HELP_WIDTH,
      getErrHelpWidth: () => HELP_WIDTH,
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    });
  const options = [
    new Option(
      "--working-directory <dir>",
      `Where the dump and the PGDATA are made; must be empty or absent (env: ${ENV_FALLBACKS.workingDirectory})`,
    ).argParser(text("working-directory")),
    new Option("--s3-prefix <uri>", S3_HELP)
      .argParser(text("s3-prefix")),
    new Option(
      "--pg-bin-dir <dir>",
      `Directory of initdb, postgres, pg_dump, pg_restore, pg_config and psql (env: ${ENV_FALLBACKS.pgBinDir})`,
    ).argParser(text("pg-bin-dir")),
    new Option(
      "--pg-lib-dir <dir>",
      `Their library directory, LD_LIBRARY_PATH of the children (env: ${ENV_FALLBACKS.pgLibDir})`,
    ).argParser(text("pg-lib-dir")),
    new Option(
      "--spec-file <path>",
      `A JSON spec {"source_connstring", "destination_connstring"?} (env: ${ENV_FALLBACKS.specFile})`,
    ).argParser(text("spec-file")),
    new Option(
      "--destination-dir <dir>",
      `Publish pgdata/ and status/ here, as Neon does under its S3 prefix (env: ${ENV_FALLBACKS.destinationDir})`,
    ).argParser(text("destination-dir")),
  ];
  for (const option of options) program.addOption(option);

  const source = () =>
    new Option(
      "--source-connection-string <connstr>",
      "The database to import (libpq URL or key=value string), unless the spec names it",
    ).argParser(text("source-connection-string"));
  program.command("pgdata")
    .description(
      "Restore into a private Postgres tuned for bulk loading, stop it, publish its PGDATA",
    )
    .allowExcessArguments(false)
    .addOption(source())
    .addOption(
      new Option("-i, --interactive", "Keep the private Postgres up after the restore until SIGINT")
        .default(false),
    )
    .addOption(
      new Option("--pg-port <port>", "Port of the private Postgres on localhost")
        .default(DEFAULT_PG_PORT).argParser(once("pg-port", parsePort)),
    )
    .addOption(
      new Option(
        "--num-cpus <n>",
        `Sizes the parallel workers (env: ${ENV_FALLBACKS.numCpus}, default: this machine's CPUs)`,
      ).argParser(once("num-cpus", parseCount)),
    )
    .addOption(
      new Option(
        "--memory-mb <mb>",
        `Sizes shared_buffers (10 %) and maintenance_work_mem (70 %) (env: ${ENV_FALLBACKS.memoryMb}, default: 256)`,
      ).argParser(once("memory-mb", parseMemoryMb)),
    )
    .action((options: Record<string, unknown>) => onAction("pgdata", options));
  program.command("dump-restore")
    .description("pg_dump from the source and pg_restore into the destination, no private Postgres")
    .allowExcessArguments(false)
    .addOption(source())
    .addOption(
      new Option(
        "--destination-connection-string <connstr>",
        "The database to restore into, unless the spec names it",
      ).argParser(text("destination-connection-string")),
    )
    .action((options: Record<string, unknown>) => onAction("dump-restore", options));
  return program;
}

interface ProgramOptions {
  workingDirectory?: string;
  s3Prefix?: string;
  pgBinDir?: string;
  pgLibDir?: string;
  specFile?: string;
  destinationDir?: string;
}

function finish(
  raw: ProgramOptions,
  chosen: { name: string; options: Record<string, unknown> },
  env: Readonly<Record<string, string | undefined>>,
): FastImportArgs {
  const fromEnv = (key: keyof typeof ENV_FALLBACKS): string | undefined => {
    const value = env[ENV_FALLBACKS[key]];
    return value === undefined || value === "" ? undefined : value;
  };
  if (raw.s3Prefix !== undefined) throw new UsageError(`--s3-prefix ${S3_UNSUPPORTED}`);
  if (fromEnv("s3Prefix") !== undefined) {
    throw new UsageError(`${ENV_FALLBACKS.s3Prefix} ${S3_UNSUPPORTED}`);
  }
  const required = (flag: string, key: "workingDirectory" | "pgBinDir" | "pgLibDir") => {
    const value = raw[key] ?? fromEnv(key);
    if (value === undefined) {
      throw new UsageError(
        `the following required argument was not provided: --${flag} (or ${ENV_FALLBACKS[key]})`,
      );
    }
    return value;
  };
  const common = {
    workingDirectory: required("working-directory", "workingDirectory"),
    pgBinDir: required("pg-bin-dir", "pgBinDir"),
    pgLibDir: required("pg-lib-dir", "pgLibDir"),
    specFile: raw.specFile ?? fromEnv("specFile"),
    destinationDir: raw.destinationDir ?? fromEnv("destinationDir"),
  };
  const options = chosen.options;
  if (chosen.name === "dump-restore") {
    return {
      ...common,
      command: {
        name: "dump-restore",
        sourceConnectionString: options.sourceConnectionString as string | undefined,
        destinationConnectionString: options.destinationConnectionString as string | undefined,
      },
    };
  }
  const envNumber = (key: "numCpus" | "memoryMb", parse: (value: string) => number) => {
    const value = fromEnv(key);
    if (value === undefined) return undefined;
    try {
      return parse(value);
    } catch (error) {
      throw new UsageError(
        `invalid value '${value}' for ${ENV_FALLBACKS[key]}: ${(error as Error).message}`,
      );
    }
  };
  return {
    ...common,
    command: {
      name: "pgdata",
      sourceConnectionString: options.sourceConnectionString as string | undefined,
      interactive: options.interactive as boolean,
      pgPort: options.pgPort as number,
      numCpus: (options.numCpus as number | undefined) ?? envNumber("numCpus", parseCount),
      memoryMb: (options.memoryMb as number | undefined) ?? envNumber("memoryMb", parseMemoryMb),
    },
  };
}

function parsePort(value: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new InvalidArgumentError("expected a port number from 1 to 65535.");
  }
  return port;
}

function parseCount(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < 1) {
    throw new InvalidArgumentError("expected a positive integer.");
  }
  return Number(value);
}

/** At least 10 MB, so that `shared_buffers` (10 %) is at least 1 MB. */
function parseMemoryMb(value: string): number {
  const mb = parseCount(value);
  if (mb < 10) {
    throw new InvalidArgumentError("expected at least 10 (shared_buffers gets 10 %).");
  }
  return mb;
}
