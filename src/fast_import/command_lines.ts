/**
 * @module
 * Every command line fast_import runs, and the tuning behind them, as pure
 * functions: Neon's `initdb` (`postgres_initdb`), the private Postgres tuned
 * for bulk loading (sized from `--num-cpus` and `--memory-mb`), pg_dump and
 * pg_restore with Neon's common flags, and the `psql` calls of the
 * preflight. Children run with an empty environment plus what
 * {@linkcode childEnv} gives them, as Neon's do (`env_clear()`).
 */

/** The superuser of the private Postgres (and of the PGDATA the storage imports). */
export const SUPERUSER = "cloud_admin";
/** The database the source is restored into, in the private Postgres. */
export const TARGET_DATABASE = "neondb";
/** `--memory-mb` when neither the flag nor `NEON_IMPORTER_MEMORY_MB` gives it. */
export const DEFAULT_MEMORY_MB = 256;
/** Neon's `DEFAULT_LOCALE` on Linux. */
export const INITDB_LOCALE = "C.UTF-8";

/** How the private Postgres is sized. */
export interface Tuning {
  /** `max_parallel_maintenance_workers`, `max_parallel_workers`, `…_per_gather`, `max_worker_processes`. */
  parallelWorkers: number;
  /** 10 % of the memory. */
  sharedBuffersMb: number;
  /** 70 % of the memory: sorting during index creation. */
  maintenanceWorkMemMb: number;
}

/**
 * Neon's sizing: 10 % of `memoryMb` for shared buffers, 70 % for
 * `maintenance_work_mem`, the rest for everything else; one parallel worker per
 * CPU. The percentages are computed in 32-bit floats and truncated, exactly as
 * Rust's `((memory_mb as f32) * 0.10) as usize` does.
 */
export function importTuning(
  { numCpus, memoryMb = DEFAULT_MEMORY_MB }: { numCpus: number; memoryMb?: number },
): Tuning {
  const share = (fraction: number) =>
    Math.trunc(Math.fround(Math.fround(memoryMb) * Math.fround(fraction)));
  return {
    parallelWorkers: numCpus,
    sharedBuffersMb: share(0.10),
    maintenanceWorkMemMb: share(0.70),
  };
}

/** `initdb` as Neon runs it: UTF-8, `C.UTF-8`, the libc provider from 15 on (builtin from 17). */
export function initdbArgs({ pgdata, pgMajor }: { pgdata: string; pgMajor: number }): string[] {
  const args = [
    "--pgdata",
    pgdata,
    "--username",
    SUPERUSER,
    "--encoding",
    "utf8",
    "--locale",
    INITDB_LOCALE,
    "--no-instructions",
    "--no-sync",
  ];
  if (pgMajor > 14) args.push("--locale-provider", pgMajor >= 17 ? "builtin" : "libc");
  return args;
}

/**
 * The private Postgres: Neon's bulk-loading settings (`wal_level=minimal`,
 * `fsync=off`, `full_page_writes=off`, `synchronous_commit=off`, no WAL
 * senders, `effective_io_concurrency=100`) and {@linkcode Tuning}. One addition:
 * `unix_socket_directories` is empty, so it listens on localhost TCP only
 * (Neon's image has a socket directory every user may write; Debian's
 * `/var/run/postgresql` is not). Settings given with `-c` are not written
 * into the PGDATA.
 */
export function postgresArgs(
  { pgdata, port, tuning }: { pgdata: string; port: number; tuning: Tuning },
): string[] {
  const workers = String(tuning.parallelWorkers);
  const settings: [string, string][] = [
    ["wal_level", "minimal"],
    ["shared_buffers", `${tuning.sharedBuffersMb}MB`],
    ["max_wal_senders", "0"],
    ["fsync", "off"],
    ["full_page_writes", "off"],
    ["synchronous_commit", "off"],
    ["maintenance_work_mem", `${tuning.maintenanceWorkMemMb}MB`],
    ["max_parallel_maintenance_workers", workers],
    ["max_parallel_workers", workers],
    ["max_parallel_workers_per_gather", workers],
    ["max_worker_processes", workers],
    ["effective_io_concurrency", "100"],
    ["unix_socket_directories", ""],
  ];
  return ["-D", pgdata, "-p", String(port), ...settings.flatMap(([k, v]) => ["-c", `${k}=${v}`])];
}

/** The libpq key=value string of the private Postgres (Neon's, with the port). */
export function privateConnstring(port: number, database: string): string {
  return `host=localhost port=${port} user=${SUPERUSER} dbname=${database}`;
}

/**
 * The flags pg_dump and pg_restore share (Neon's `common_args`): no owners,
 * privileges, publications, security labels, subscriptions, tablespaces or
 * event triggers; the directory format; `jobs` parallel jobs; `--verbose`,
 * which is what progress is read from. `--no-event-triggers` exists only in
 * Neon's patched pg_dump/pg_restore; with `noEventTriggersFlag` false the
 * restore list drops them instead (`restore_list.ts`).
 */
export function commonArgs(
  { jobs, noEventTriggersFlag }: { jobs: number; noEventTriggersFlag: boolean },
): string[] {
  return [
    "--no-owner",
    "--no-privileges",
    "--no-publications",
    "--no-security-labels",
    "--no-subscriptions",
    "--no-tablespaces",
    ...(noEventTriggersFlag ? ["--no-event-triggers"] : []),
    "--format",
    "directory",
    "--jobs",
    String(jobs),
    "--verbose",
  ];
}

/** pg_dump of `source` (a URL or key=value string naming the database) into `dumpDir`. */
export function pgDumpArgs(
  common: readonly string[],
  { dumpDir, source }: { dumpDir: string; source: string },
): string[] {
  return [...common, "-f", dumpDir, "--no-sync", source];
}

/** pg_restore of the items in `listFile` from `dumpDir` into `destination`. */
export function pgRestoreArgs(
  common: readonly string[],
  { dumpDir, listFile, destination }: { dumpDir: string; listFile: string; destination: string },
): string[] {
  return [...common, "--use-list", listFile, "-d", destination, dumpDir];
}

/** `pg_restore --list`: the table of contents of a dump. */
export function pgRestoreListArgs(dumpDir: string): string[] {
  return ["--list", "--format", "directory", dumpDir];
}

/**
 * psql running one statement against `connstr` (URL or key=value): no psqlrc,
 * unaligned tuples only, never a password prompt, stop at the first error.
 * psql exits 2 when it cannot connect, 3 when the statement fails.
 */
export function psqlArgs(connstr: string, sql: string): string[] {
  return [
    "--no-psqlrc",
    "--no-align",
    "--tuples-only",
    "--quiet",
    "--no-password",
    "--set",
    "ON_ERROR_STOP=1",
    "--command",
    sql,
    "--dbname",
    connstr,
  ];
}

/** What the children's environment is made from. */
export interface ChildEnvInputs {
  /** `--pg-lib-dir`. */
  pgLibDir: string;
  /**
   * Whether `LD_LIBRARY_PATH` may be set: Deno refuses to start a child with it
   * unless `run` is granted without a list (see `main.ts`).
   */
  libraryPathAllowed: boolean;
  /** `ASAN_OPTIONS` / `UBSAN_OPTIONS` of this process, passed on as Neon does. */
  sanitizerOptions?: Readonly<Record<string, string | undefined>>;
}

/** The whole environment of every child: nothing inherited. */
export function childEnv(inputs: ChildEnvInputs): Record<string, string> {
  const env: Record<string, string> = {};
  if (inputs.libraryPathAllowed) env.LD_LIBRARY_PATH = inputs.pgLibDir;
  for (const name of ["ASAN_OPTIONS", "UBSAN_OPTIONS"]) {
    const value = inputs.sanitizerOptions?.[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}
