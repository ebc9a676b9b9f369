/**
 * @module
 * One run of fast_import, in Neon's order, with every check that can fail
 * made before anything is created: the spec and connection strings, the
 * programs' versions, the working and destination directories, the source
 * (and destination) databases. Then `pgdata` makes the PGDATA (initdb, the
 * private Postgres, `neondb`, dump and restore, an optional interactive
 * pause, a clean stop) and publishes it; `dump-restore` dumps and restores.
 */

import { join } from "node:path";
import type { FastImportArgs } from "./cli.ts";
import { importTuning, privateConnstring, TARGET_DATABASE, type Tuning } from "./command_lines.ts";
import {
  checkDestination,
  checkWorkingDirectory,
  createWorkingDirectory,
  publishPgdata,
} from "./directories.ts";
import { dumpAndRestore, type DumpRestoreTimes } from "./dump_restore.ts";
import { getLogger } from "./_log.ts";
import {
  conflictMessage,
  type DatabaseCatalog,
  findConflicts,
  inspectDatabase,
  PreflightError,
  sourceVersionProblem,
} from "./preflight.ts";
import { createTargetDatabase, initPgdata, startPrivatePostgres } from "./private_postgres.ts";
import { formatBytes, formatSeconds } from "./progress.ts";
import { type Connections, parseImportSpec, resolveConnections, SpecError } from "./spec.ts";
import { checkPgBinaries, type PgBinaries, programsOf } from "./versions.ts";

const log = getLogger("run");

/** What a run takes from its surroundings. */
export interface RunEnvironment {
  /** This machine's CPUs (Neon's `num_cpus::get()`): the `--jobs` of pg_dump and pg_restore. */
  hostCpus: number;
  /** The whole environment of every child (`childEnv`). */
  childEnv: Record<string, string>;
  /** Aborted when the run must stop (SIGINT, SIGTERM). */
  signal: AbortSignal;
  /** Resolves when `--interactive` should end (Neon: Ctrl+C). */
  interactiveEnd(): Promise<void>;
  progressIntervalMs?: number;
}

/** Runs the subcommand of `args`; resolves when it succeeded, throws what went wrong. */
export async function runFastImport(
  args: FastImportArgs,
  environment: RunEnvironment,
): Promise<void> {
  const started = performance.now();
  const { command } = args;
  const connections = resolveConnections(command, await readSpec(args.specFile));
  const env = environment.childEnv;
  const binaries = await checkPgBinaries(args.pgBinDir, programsOf(command.name), env);
  log.info(`PostgreSQL ${binaries.major} programs in ${args.pgBinDir}`, {
    no_event_triggers_flag: binaries.noEventTriggersFlag,
  });
  await checkWorkingDirectory(args.workingDirectory);
  if (command.name === "pgdata" && args.destinationDir !== undefined) {
    await checkDestination(args.destinationDir);
  }
  const sourceCatalog = await checkDatabases(binaries, env, connections);
  await createWorkingDirectory(args.workingDirectory);

  if (command.name === "dump-restore") {
    const times = await dumpAndRestore({
      binaries,
      env,
      workdir: args.workingDirectory,
      jobs: environment.hostCpus,
      source: connections.source,
      destination: connections.destination!,
      sourceCatalog,
      progressIntervalMs: environment.progressIntervalMs,
      signal: environment.signal,
    });
    logTotal("dump-restore", started, times);
    return;
  }

  const pgdata = join(args.workingDirectory, "pgdata");
  const tuning = importTuning({
    numCpus: command.numCpus ?? environment.hostCpus,
    memoryMb: command.memoryMb,
  });
  const times = await restoreIntoPrivatePostgres({
    binaries,
    env,
    pgdata,
    port: command.pgPort,
    tuning,
    environment,
    workdir: args.workingDirectory,
    source: connections.source,
    sourceCatalog,
    interactive: command.interactive,
  });
  if (args.destinationDir !== undefined) {
    log.info("publish pgdata", { destination: args.destinationDir });
    await publishPgdata(pgdata, args.destinationDir);
    log.info("wrote pgdata status", { path: join(args.destinationDir, "status", "pgdata") });
  }
  logTotal("pgdata", started, times);
}

async function readSpec(path: string | undefined) {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new SpecError(`read spec ${path}: ${(error as Error).message}`, { cause: error });
  }
  return parseImportSpec(text, path);
}

/** The preflight: source reachable and not newer than pg_dump; destination free of its objects. */
async function checkDatabases(
  binaries: PgBinaries,
  env: Record<string, string>,
  connections: Connections,
): Promise<DatabaseCatalog> {
  const psql = binaries.path("psql");
  const source = await inspectDatabase({ psql, env, connstr: connections.source, role: "source" });
  const versionProblem = sourceVersionProblem(source.serverVersionNum, binaries.major);
  if (versionProblem !== null) throw new PreflightError(versionProblem);
  log.info(
    `source: ${source.schemas.length} schemas, ${source.relations.length} relations, ` +
      `${source.tables} tables of ${formatBytes(source.tableBytes)}`,
    { server_version_num: source.serverVersionNum },
  );
  if (connections.destination !== undefined) {
    const destination = await inspectDatabase({
      psql,
      env,
      connstr: connections.destination,
      role: "destination",
    });
    const conflicts = findConflicts(source, destination);
    if (conflicts.length > 0) throw new PreflightError(conflictMessage(conflicts));
  }
  return source;
}

async function restoreIntoPrivatePostgres(
  options: {
    binaries: PgBinaries;
    env: Record<string, string>;
    pgdata: string;
    port: number;
    tuning: Tuning;
    environment: RunEnvironment;
    workdir: string;
    source: string;
    sourceCatalog: DatabaseCatalog;
    interactive: boolean;
  },
): Promise<DumpRestoreTimes> {
  const { binaries, env, pgdata, port, tuning, environment } = options;
  await initPgdata({ initdb: binaries.path("initdb"), pgdata, pgMajor: binaries.major, env });
  log.info("initialized pgdata", {
    shared_buffers_mb: tuning.sharedBuffersMb,
    maintenance_work_mem_mb: tuning.maintenanceWorkMemMb,
    parallel_workers: tuning.parallelWorkers,
  });
  const server = startPrivatePostgres({
    postgres: binaries.path("postgres"),
    pgdata,
    port,
    tuning,
    env,
  });
  try {
    await createTargetDatabase({
      psql: binaries.path("psql"),
      env,
      server,
      signal: environment.signal,
    });
    const times = await dumpAndRestore({
      binaries,
      env,
      workdir: options.workdir,
      jobs: environment.hostCpus,
      source: options.source,
      destination: privateConnstring(port, TARGET_DATABASE),
      sourceCatalog: options.sourceCatalog,
      progressIntervalMs: environment.progressIntervalMs,
      signal: environment.signal,
    });
    if (options.interactive) {
      log.info("Running in interactive mode. Press Ctrl+C to shut down.", {
        connstring: privateConnstring(port, TARGET_DATABASE),
      });
      await environment.interactiveEnd();
    }
    await server.shutdown();
    return times;
  } catch (error) {
    await server.stop();
    throw error;
  }
}

function logTotal(command: string, started: number, times: DumpRestoreTimes): void {
  log.info(
    `${command} done in ${formatSeconds(performance.now() - started)} ` +
      `(dump ${formatSeconds(times.dumpMs)}, restore ${formatSeconds(times.restoreMs)})`,
  );
}
