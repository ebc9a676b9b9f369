/**
 * @module
 * Which PostgreSQL major `--pgbin` is. Neon reads it from `pg_config
 * --version` at start and panics outside 14–17; `pg_config` is not part of
 * every install (PostgreSQL from npm has only `postgres`, `initdb` and
 * `pg_ctl`), so the manager asks the server binary itself (`postgres
 * --version`) and refuses any other major with a message naming it. Once
 * Postgres runs, its `server_version_num` says the same.
 */

/** The majors Neon runs computes on, and so do we. */
export const SUPPORTED_PG_MAJORS = [14, 15, 16, 17] as const;

/** One of {@linkcode SUPPORTED_PG_MAJORS}. */
export type PgMajor = typeof SUPPORTED_PG_MAJORS[number];

/** `--pgbin` could not say its version, or is a major the manager does not support. */
export class PostgresVersionError extends Error {
  override name = "PostgresVersionError";
}

/**
 * The major of a version line, `postgres --version`'s (`postgres
 * (PostgreSQL) 16.14`) or `pg_config --version`'s (`PostgreSQL 15.4 (Debian
 * 15.4-1)`), pre-releases included (`17devel`, `16beta2`). Throws
 * {@linkcode PostgresVersionError} for another major or another text.
 */
export function parsePgMajor(versionText: string): PgMajor {
  const text = versionText.trim();
  const match = /^(?:postgres \(PostgreSQL\) |PostgreSQL )(\d+)(?!\d)/.exec(text);
  if (!match) {
    throw new PostgresVersionError(`${JSON.stringify(text)} is not a PostgreSQL version`);
  }
  const major = Number(match[1]);
  if (!(SUPPORTED_PG_MAJORS as readonly number[]).includes(major)) {
    throw new PostgresVersionError(
      `PostgreSQL ${major} is not supported (${JSON.stringify(text)}): ` +
        `compute_ctl runs on PostgreSQL ${SUPPORTED_PG_MAJORS.join(", ")}`,
    );
  }
  return major as PgMajor;
}

/** The major of a running server from its `server_version_num` (`160004` → 16). */
export function majorOfVersionNum(serverVersionNum: number): number {
  return Math.floor(serverVersionNum / 10000);
}

/** The label remote extension archives are filed under: `v14` … `v17`. */
export function pgMajorLabel(major: PgMajor): string {
  return `v${major}`;
}

const majors = new Map<string, Promise<PgMajor>>();

/**
 * The major of `pgbin`, from `pgbin --version`; asked once per binary (a
 * failure is asked again). Throws {@linkcode PostgresVersionError} naming the
 * binary when it cannot run, says something else, or is another major.
 */
export function postgresMajor(pgbin: string): Promise<PgMajor> {
  let major = majors.get(pgbin);
  if (major === undefined) {
    major = askVersion(pgbin);
    majors.set(pgbin, major);
    major.catch(() => majors.delete(pgbin));
  }
  return major;
}

async function askVersion(pgbin: string): Promise<PgMajor> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(pgbin, {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    throw new PostgresVersionError(`could not run ${pgbin} --version: ${(error as Error).message}`);
  }
  const decoder = new TextDecoder();
  if (!output.success) {
    throw new PostgresVersionError(
      `${pgbin} --version exited with code ${output.code}: ${decoder.decode(output.stderr).trim()}`,
    );
  }
  try {
    return parsePgMajor(decoder.decode(output.stdout));
  } catch (error) {
    throw new PostgresVersionError(`--pgbin ${pgbin}: ${(error as Error).message}`);
  }
}
