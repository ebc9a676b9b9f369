/**
 * @module
 * Which PostgreSQL the programs in `--pg-bin-dir` are. Neon takes the major
 * version from `pg_config --version` (`get_pg_version`: "PostgreSQL 15.4" →
 * 15, and only 14 to 17 are supported); fast_import also asks every program it
 * runs for its `--version` and refuses a directory whose programs disagree,
 * before anything is created, so a pg_dump of another major fails up front
 * instead of half-way. It also finds out whether pg_dump and pg_restore are
 * Neon's patched ones, which know `--no-event-triggers`.
 */

import { join } from "node:path";
import { ChildError, runCaptured } from "./_child.ts";

/** The majors Neon's fast_import supports. */
export const SUPPORTED_MAJORS: readonly number[] = [14, 15, 16, 17];

/** The programs of `--pg-bin-dir` that fast_import runs. */
export type PgProgram = "initdb" | "postgres" | "pg_dump" | "pg_restore" | "psql";

/** The programs a subcommand runs (all are checked against `pg_config`, except psql). */
export function programsOf(command: "pgdata" | "dump-restore"): PgProgram[] {
  return command === "pgdata"
    ? ["initdb", "postgres", "pg_dump", "pg_restore"]
    : ["pg_dump", "pg_restore"];
}

/** The binaries directory was checked and can be used. */
export interface PgBinaries {
  /** The major version every checked program reports. */
  major: number;
  /** Both pg_dump and pg_restore accept `--no-event-triggers` (Neon's patched builds). */
  noEventTriggersFlag: boolean;
  path(program: PgProgram): string;
}

/** The programs cannot be used: missing, unsupported, or of different majors. */
export class PgVersionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PgVersionError";
  }
}

/**
 * The major version in `pg_config --version` output (`PostgreSQL 15.4`,
 * `PostgreSQL 17devel`); throws {@linkcode PgVersionError} for anything else or
 * a major outside {@linkcode SUPPORTED_MAJORS}.
 */
export function parsePgConfigVersion(text: string): number {
  const match = /^PostgreSQL (\d+)/.exec(text.trim());
  const major = match ? Number(match[1]) : NaN;
  if (!SUPPORTED_MAJORS.includes(major)) {
    throw new PgVersionError(`Unsupported postgres version ${JSON.stringify(text.trim())}`);
  }
  return major;
}

/** The major version in a program's `--version` line (`pg_dump (PostgreSQL) 15.18 (Debian …)`). */
export function parseProgramVersion(program: string, text: string): number {
  const match = /\(PostgreSQL\) (\d+)/.exec(text);
  if (!match) {
    throw new PgVersionError(
      `${program} --version printed ${JSON.stringify(text.trim())}, not a PostgreSQL version`,
    );
  }
  return Number(match[1]);
}

/**
 * The refusal for a program whose major differs from pg_config's, or null.
 * `reported` is the program's own `--version` line.
 */
export function versionMismatch(
  { program, major, reported, expected, binDir }: {
    program: string;
    major: number;
    reported: string;
    expected: number;
    binDir: string;
  },
): string | null {
  if (major === expected) return null;
  return `${program} in ${binDir} is PostgreSQL ${major} (${JSON.stringify(reported.trim())}) ` +
    `but pg_config says PostgreSQL ${expected}: every program in --pg-bin-dir must be of the ` +
    `same major version`;
}

/**
 * Runs `pg_config --version` and each program's `--version` (and pg_dump's and
 * pg_restore's `--help`) from `binDir` with `env`; throws
 * {@linkcode PgVersionError} naming the first problem.
 */
export async function checkPgBinaries(
  binDir: string,
  programs: readonly PgProgram[],
  env: Record<string, string>,
): Promise<PgBinaries> {
  const path = (program: string) => join(binDir, program);
  const run = async (program: string, flag: string) => {
    try {
      const output = await runCaptured(path(program), [flag], env);
      if (output.code !== 0) {
        throw new PgVersionError(
          `${path(program)} ${flag} exited with code ${output.code}: ${output.stderr.trim()}`,
        );
      }
      return output.stdout;
    } catch (error) {
      if (error instanceof ChildError) {
        throw new PgVersionError(`cannot run ${path(program)}: ${(error.cause as Error).message}`);
      }
      throw error;
    }
  };
  const expected = parsePgConfigVersion(await run("pg_config", "--version"));
  for (const program of programs) {
    const reported = await run(program, "--version");
    const problem = versionMismatch({
      program,
      major: parseProgramVersion(program, reported),
      reported,
      expected,
      binDir,
    });
    if (problem !== null) throw new PgVersionError(problem);
  }
  const knowsFlag = async (program: string) =>
    (await run(program, "--help")).includes("--no-event-triggers");
  const noEventTriggersFlag = await knowsFlag("pg_dump") && await knowsFlag("pg_restore");
  return { major: expected, noEventTriggersFlag, path: (program) => path(program) };
}
