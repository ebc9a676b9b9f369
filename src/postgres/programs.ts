/**
 * @module
 * The programs of a PostgreSQL install beside `--pgbin`: where each is, and
 * whether an optional one (`pg_config`, `pg_dump`, `pg_isready`) can be used.
 * Only `postgres`, `initdb` and `pg_ctl` are part of every install (PostgreSQL
 * from npm ships nothing else), so the manager starts, runs and terminates
 * with those; the others are used when they are there and granted.
 */

/** The programs the manager may run beside `--pgbin`, required ones first. */
export const PG_PROGRAMS = ["postgres", "pg_ctl", "pg_config", "pg_dump", "pg_isready"] as const;

/** The path of another Postgres binary in the directory of `pgbin` (`pg_ctl`, `initdb`, …). */
export function siblingBinary(pgbin: string, name: string): string {
  const slash = pgbin.lastIndexOf("/");
  return slash < 0 ? name : `${pgbin.slice(0, slash + 1)}${name}`;
}

/**
 * Whether this process may run `program` (`Deno.permissions.query`, which
 * never prompts). Running an ungranted program fails with `NotCapable`; the
 * callers of optional programs ask first and take their other way instead.
 */
export async function mayRun(program: string): Promise<boolean> {
  try {
    return (await Deno.permissions.query({ name: "run", command: program })).state === "granted";
  } catch {
    return false;
  }
}

/** Whether `error` is the spawn failure of a program that does not exist. */
export function isMissingProgram(error: unknown): boolean {
  return error instanceof Deno.errors.NotFound;
}

/** Whether an optional program can be used: there and granted, absent, or not granted. */
export type ProgramStatus = "usable" | "missing" | "not_granted";

/**
 * The status of `name` beside `pgbin`. "missing" only when the file is
 * known to be absent; when this process may not look, a granted program
 * counts as usable (running it will tell).
 */
export async function programStatus(pgbin: string, name: string): Promise<ProgramStatus> {
  const path = siblingBinary(pgbin, name);
  if (path.includes("/")) {
    try {
      await Deno.stat(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return "missing";
    }
  }
  return (await mayRun(path)) ? "usable" : "not_granted";
}
