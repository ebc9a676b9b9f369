/**
 * @module
 * The dump and the restore both subcommands run (Neon's `run_dump_restore`):
 * `pg_dump --format directory --jobs N` from the source into
 * `<workdir>/dumpdir`, then `pg_restore --jobs N` into the destination, their
 * output relayed to the log and read for progress, which is logged every
 * 10 seconds and summed up when each ends. A failed dump stops before the
 * restore. The restore goes through a list (`<workdir>/restore.list`, from
 * `pg_restore --list`), which gives its totals and leaves event triggers out
 * when the programs lack Neon's `--no-event-triggers`.
 */

import { join } from "node:path";
import { runCaptured, spawnRelayed } from "./_child.ts";
import { getLogger } from "./_log.ts";
import { commonArgs, pgDumpArgs, pgRestoreArgs, pgRestoreListArgs } from "./command_lines.ts";
import { dataFileSizes, directorySize } from "./directories.ts";
import type { DatabaseCatalog } from "./preflight.ts";
import {
  dumpProgress,
  formatBytes,
  formatSeconds,
  reportEvery,
  restoreProgress,
} from "./progress.ts";
import { parseRestoreList, withoutEventTriggers } from "./restore_list.ts";
import type { PgBinaries } from "./versions.ts";

const log = getLogger("dump_restore");

/** How often progress is logged while pg_dump or pg_restore runs. */
export const PROGRESS_INTERVAL_MS = 10_000;

/** pg_dump or pg_restore failed. */
export class DumpRestoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DumpRestoreError";
  }
}

/** What {@linkcode dumpAndRestore} needs. */
export interface DumpRestoreOptions {
  binaries: PgBinaries;
  env: Record<string, string>;
  workdir: string;
  /** `--jobs` of both (Neon: the CPUs of the machine). */
  jobs: number;
  source: string;
  destination: string;
  /** The source's catalog from the preflight: the dump's totals. */
  sourceCatalog: DatabaseCatalog;
  progressIntervalMs?: number;
  /** Aborting stops the running program. */
  signal?: AbortSignal;
}

/** How long each half took. */
export interface DumpRestoreTimes {
  dumpMs: number;
  restoreMs: number;
}

/** Dumps the source and restores it into the destination; throws {@linkcode DumpRestoreError}. */
export async function dumpAndRestore(options: DumpRestoreOptions): Promise<DumpRestoreTimes> {
  const { binaries, env, workdir, jobs, signal } = options;
  const interval = options.progressIntervalMs ?? PROGRESS_INTERVAL_MS;
  const dumpDir = join(workdir, "dumpdir");
  const common = commonArgs({ jobs, noEventTriggersFlag: binaries.noEventTriggersFlag });
  log.info(`using ${jobs} jobs for dump/restore`);

  log.info("dump into the working directory");
  const dumpStart = performance.now();
  const dumped = dumpProgress({ totalTables: options.sourceCatalog.tables, parallel: jobs > 1 });
  await runWithProgress({
    program: "pg_dump",
    path: binaries.path("pg_dump"),
    args: pgDumpArgs(common, { dumpDir, source: options.source }),
    env,
    onLine: dumped.onLine,
    describe: async () => dumped.describe(await directorySize(dumpDir)),
    interval,
    signal,
    failureNote: "restore will likely fail as well",
  });
  const dumpMs = performance.now() - dumpStart;
  log.info(
    `pg_dump done: ${dumped.tablesDone()} tables, ${formatBytes(await directorySize(dumpDir))} in ${
      formatSeconds(dumpMs)
    }`,
  );

  const listFile = join(workdir, "restore.list");
  const entries = await writeRestoreList(binaries, env, dumpDir, listFile);
  const restored = restoreProgress({ entries, dataBytes: await dataFileSizes(dumpDir) });
  log.info("restore from working directory into the destination");
  const restoreStart = performance.now();
  await runWithProgress({
    program: "pg_restore",
    path: binaries.path("pg_restore"),
    args: pgRestoreArgs(common, { dumpDir, listFile, destination: options.destination }),
    env,
    onLine: restored.onLine,
    describe: () => restored.describe(),
    interval,
    signal,
    failureNote: "the destination may hold part of the source",
  });
  const restoreMs = performance.now() - restoreStart;
  log.info(`pg_restore done: ${restored.describe()} in ${formatSeconds(restoreMs)}`);
  return { dumpMs, restoreMs };
}

/** Lists the dump, drops event triggers unless the programs do, writes the list; its items. */
async function writeRestoreList(
  binaries: PgBinaries,
  env: Record<string, string>,
  dumpDir: string,
  listFile: string,
) {
  const output = await runCaptured(binaries.path("pg_restore"), pgRestoreListArgs(dumpDir), env);
  if (output.code !== 0) {
    throw new DumpRestoreError(`pg_restore --list failed: ${output.stderr.trim()}`);
  }
  let list = parseRestoreList(output.stdout);
  if (!binaries.noEventTriggersFlag) {
    const filtered = withoutEventTriggers(list);
    if (filtered.dropped.length > 0) {
      log.info(
        `leaving out ${filtered.dropped.length} event trigger items: ` +
          "only a superuser may create them, and Neon does not import them",
      );
    }
    list = filtered;
  }
  await Deno.writeTextFile(listFile, list.text);
  return list.entries;
}

async function runWithProgress(
  options: {
    program: "pg_dump" | "pg_restore";
    path: string;
    args: string[];
    env: Record<string, string>;
    onLine: (line: string) => void;
    describe: () => string | Promise<string>;
    interval: number;
    signal?: AbortSignal;
    failureNote: string;
  },
): Promise<void> {
  const { program, signal } = options;
  let firstError: string | undefined;
  const child = spawnRelayed({
    program: options.path,
    args: options.args,
    env: options.env,
    log: getLogger(program),
    signal,
    onLine: (line) => {
      options.onLine(line);
      if (firstError === undefined && line.startsWith(`${program}: error: `)) firstError = line;
    },
  });
  log.info(`spawned ${program}`, { pid: child.pid });
  const reporter = reportEvery(getLogger(program), options.interval, options.describe);
  let status: Deno.CommandStatus;
  try {
    status = await child.done;
  } finally {
    reporter.stop();
  }
  log.info(`${program} exited`, { code: status.code });
  signal?.throwIfAborted();
  if (!status.success) {
    log.error(`${program} failed, ${options.failureNote}`, { code: status.code });
    throw new DumpRestoreError(`${program} failed` + (firstError ? `: ${firstError}` : ""));
  }
}
