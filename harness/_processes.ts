/**
 * @module
 * Process plumbing for the harness: free loopback ports, the `postgres` OS
 * user, commands run as that user, the process table (to find a manager
 * behind `runuser` and every process left in a directory), and the
 * wait-then-kill sequence used on dispose.
 */

/** The unprivileged OS user every compute manager and Postgres runs as. */
export const PG_OS_USER = "postgres";

/** A user's ids, read from `/etc/passwd`. */
export interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

/** Looks `name` up in `/etc/passwd`; throws naming the user if it does not exist. */
export async function lookupUser(name = PG_OS_USER): Promise<OsUser> {
  const passwd = await Deno.readTextFile("/etc/passwd");
  for (const line of passwd.split("\n")) {
    const [user, , uid, gid] = line.split(":");
    if (user === name) return { name, uid: Number(uid), gid: Number(gid) };
  }
  throw new Error(
    `OS user ${JSON.stringify(name)} does not exist; the harness runs computes as it`,
  );
}

/** Whether this process is root, so Postgres binaries must run as {@linkcode PG_OS_USER}. */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/**
 * The owner that files for Postgres must have: the {@linkcode PG_OS_USER} when
 * this process is root (Postgres refuses to run as root), else null (this user).
 */
export function pgFileOwner(): Promise<OsUser | null> {
  pgOwnerLookup ??= isRoot() ? lookupUser(PG_OS_USER) : Promise.resolve(null);
  return pgOwnerLookup;
}

let pgOwnerLookup: Promise<OsUser | null> | undefined;

/** A Postgres program failed. */
export class CommandFailedError extends Error {
  constructor(command: string, code: number, output: string) {
    super(`${command} exited with code ${code}: ${output.trim()}`);
    this.name = "CommandFailedError";
  }
}

/** Options of {@linkcode runAsPgUser}. */
export interface RunAsPgUserOptions {
  /** Extra environment; `LC_ALL=C` is always set so output can be parsed. */
  env?: Record<string, string>;
  /** Throw {@linkcode CommandFailedError} on a non-zero exit (default true). */
  check?: boolean;
}

/**
 * The one place that runs a Postgres program (`initdb`, `pg_ctl`,
 * `pg_controldata`, `postgres`, …) the way Postgres accepts: through
 * `runuser -u postgres --` when this process is root, directly otherwise.
 * Returns the exit code and the combined stdout and stderr.
 */
export async function runAsPgUser(
  command: string,
  args: readonly string[],
  { env = {}, check = true }: RunAsPgUserOptions = {},
): Promise<{ code: number; output: string }> {
  const result = await pgUserCommand(command, args, {
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  const output = decoder.decode(result.stdout) + decoder.decode(result.stderr);
  if (check && result.code !== 0) {
    throw new CommandFailedError(command.split("/").pop() ?? command, result.code, output);
  }
  return { code: result.code, output };
}

/**
 * A `Deno.Command` running `command` as the Postgres user (see
 * {@linkcode runAsPgUser}), for long-running servers the caller spawns.
 */
export function pgUserCommand(
  command: string,
  args: readonly string[],
  options: Omit<Deno.CommandOptions, "args"> = {},
): Deno.Command {
  const env = { LC_ALL: "C", ...options.env };
  if (!isRoot()) return new Deno.Command(command, { ...options, args: [...args], env });
  const pairs = Object.entries(env).map(([key, value]) => `${key}=${value}`);
  return new Deno.Command("runuser", {
    ...options,
    env: {},
    args: ["-u", PG_OS_USER, "--", "env", ...pairs, command, ...args],
  });
}

const handedOut = new Set<number>();

/**
 * Returns a loopback TCP port the OS just reported free (listen on port 0,
 * read it, close). Never returns the same port twice in one process, so
 * parallel starts in one test process do not collide with each other.
 */
export function freePort(hostname = "127.0.0.1"): number {
  for (let tries = 0; tries < 100; tries++) {
    const listener = Deno.listen({ hostname, port: 0 });
    const port = listener.addr.port;
    listener.close();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("could not find a free loopback port");
}

/**
 * Checks that `user` can read (and, for directories, enter) every path in
 * `paths`; throws a message naming the first one it cannot, with the usual fix.
 */
export async function assertReadableBy(user: string, paths: string[]): Promise<void> {
  const script = 'for p in "$@"; do test -r "$p" || { echo "$p"; exit 1; }; ' +
    'if test -d "$p"; then test -x "$p" || { echo "$p"; exit 1; }; fi; done';
  const output = await new Deno.Command("runuser", {
    args: ["-u", user, "--", "sh", "-c", script, "sh", ...paths],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (output.success) return;
  const unreadable = new TextDecoder().decode(output.stdout).trim() || paths.join(", ");
  throw new Error(
    `the ${user} OS user cannot read ${unreadable}; compute managers run as ${user} ` +
      `and need to read the repository (e.g. chmod -R o+rX on it and chmod o+x on its parents)`,
  );
}

/** One row of the process table. */
interface ProcessRow {
  pid: number;
  ppid: number;
  zombie: boolean;
  args: string;
}

/** A snapshot of the process table, from `ps` (reading `/proc` needs Deno's `--allow-all`). */
async function processTable(): Promise<ProcessRow[]> {
  const output = await new Deno.Command("ps", {
    args: ["-e", "-o", "pid=,ppid=,stat=,args="],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  const rows: ProcessRow[] = [];
  for (const line of new TextDecoder().decode(output.stdout).split("\n")) {
    const match = /^\s*(\d+)\s+(\d+)\s+(\S+)\s?(.*)$/.exec(line);
    if (!match) continue;
    rows.push({
      pid: Number(match[1]),
      ppid: Number(match[2]),
      zombie: match[3].startsWith("Z"),
      args: match[4],
    });
  }
  return rows;
}

/** Children of `pid`; empty when it has none or is gone. */
export async function childPids(pid: number): Promise<number[]> {
  return (await processTable()).filter((row) => row.ppid === pid && !row.zombie).map((row) =>
    row.pid
  );
}

/** True while `pid` exists and is not a zombie. */
export async function isAlive(pid: number): Promise<boolean> {
  return (await processTable()).some((row) => row.pid === pid && !row.zombie);
}

/**
 * Every live process whose command line mentions a path under `dir`, plus all
 * their descendants: a compute's manager, its postmaster (`postgres -D
 * <dir>/pgdata`) and the postmaster's children. Excludes this process.
 */
export async function processesUsing(dir: string): Promise<number[]> {
  const table = (await processTable()).filter((row) => !row.zombie && row.pid !== Deno.pid);
  const found = new Set(table.filter((row) => row.args.includes(`${dir}/`)).map((row) => row.pid));
  let grew = true;
  while (grew) {
    grew = false;
    for (const row of table) {
      if (!found.has(row.pid) && found.has(row.ppid)) {
        found.add(row.pid);
        grew = true;
      }
    }
  }
  return [...found];
}

/** Sends `signal` to `pid`, ignoring a process that is already gone. */
export function signalQuietly(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitUntilGone(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const live = new Set(
      (await processTable()).filter((row) => !row.zombie).map((row) => row.pid),
    );
    if (!pids.some((pid) => live.has(pid))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
}

/**
 * Ends every process left in `dir` (see {@linkcode processesUsing}): lets them
 * finish for `waitMs` (a Postgres already shutting down), then SIGQUIT (a
 * postmaster's immediate shutdown, which stops its children), then SIGKILL
 * whatever is still there after `graceMs`. Returns the pids it found.
 */
export async function reapProcessesUsing(
  dir: string,
  { waitMs = 5_000, graceMs = 3_000 }: { waitMs?: number; graceMs?: number } = {},
): Promise<number[]> {
  const pids = await processesUsing(dir);
  if (pids.length === 0 || await waitUntilGone(pids, waitMs)) return pids;
  for (const pid of pids) signalQuietly(pid, "SIGQUIT");
  if (await waitUntilGone(pids, graceMs)) return pids;
  for (const pid of await processesUsing(dir)) signalQuietly(pid, "SIGKILL");
  await waitUntilGone(pids, graceMs);
  return pids;
}
