/**
 * @module
 * Process plumbing for the harness: free loopback ports, the compute user
 * (who every compute manager, fast_import and Postgres runs as), commands run
 * as that user, the process table (to find a program behind `runuser` and
 * every process left in a directory), and the wait-then-kill sequence used on
 * dispose.
 */

/** A user's name and ids. */
export interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

/** Who computes run as when this process is root; created if the machine lacks it. */
const ROOT_COMPUTE_USER = "postgres";

/** Whether this process is root, so computes must run as another user (Postgres refuses root). */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

let resolvedComputeUser: OsUser | undefined;

/**
 * The one answer to "who runs computes": this process's own user when it is
 * not root (then nothing is chowned and nothing goes through `runuser`); when
 * it is root, the `postgres` OS user, created as an unprivileged system user
 * (said once on stderr) if the machine has none. Decided once per process.
 */
export function computeUser(): OsUser {
  resolvedComputeUser ??= isRoot() ? rootComputeUser() : currentUser();
  return resolvedComputeUser;
}

/** This process's user: ids from the kernel, the name from `/etc/passwd` or `$USER`. */
function currentUser(): OsUser {
  const uid = Deno.uid();
  const gid = Deno.gid();
  if (uid === null || gid === null) throw new Error("this platform has no user ids");
  const name = passwdEntries().find((entry) => entry.uid === uid)?.name ??
    Deno.env.get("USER") ?? String(uid);
  return { name, uid, gid };
}

/**
 * Serializes creating that user among harness processes: two `useradd`s at
 * once can both succeed, the second overwriting the first's entry.
 */
const USER_CREATION_LOCK = "/tmp/compute-ctl-harness-useradd.lock";

/** The `postgres` OS user, created first if the machine has none. */
function rootComputeUser(): OsUser {
  const name = ROOT_COMPUTE_USER;
  const find = () => passwdEntries().find((entry) => entry.name === name);
  const existing = find();
  if (existing) return existing;
  using lock = Deno.openSync(USER_CREATION_LOCK, { create: true, write: true });
  lock.lockSync(true);
  // Another process may have created it while this one waited for the lock.
  const meanwhile = find();
  if (meanwhile) return meanwhile;
  const output = new Deno.Command("useradd", {
    args: ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const created = find();
  if (!output.success || !created) {
    throw new Error(
      `could not create the OS user ${JSON.stringify(name)} to run computes as ` +
        `(useradd exited with code ${output.code}): ` +
        new TextDecoder().decode(output.stderr).trim(),
    );
  }
  console.error(
    `harness: created the unprivileged system user ${JSON.stringify(name)} ` +
      `(uid ${created.uid}) to run computes as, since this process is root`,
  );
  return created;
}

/** The entries of `/etc/passwd`. */
function passwdEntries(): OsUser[] {
  return parsePasswd(Deno.readTextFileSync("/etc/passwd"));
}

/** The users of a `passwd(5)` text, skipping lines that are not entries. */
export function parsePasswd(text: string): OsUser[] {
  const users: OsUser[] = [];
  for (const line of text.split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (!name || !/^\d+$/.test(uid ?? "") || !/^\d+$/.test(gid ?? "")) continue;
    users.push({ name, uid: Number(uid), gid: Number(gid) });
  }
  return users;
}

/**
 * The owner files for Postgres must be given: the {@linkcode computeUser} when
 * this process is root, else null (files this process creates are already its).
 */
export function pgFileOwner(): Promise<OsUser | null> {
  return Promise.resolve(isRoot() ? computeUser() : null);
}

/**
 * Gives `path` (with `recursive`, everything under it) to the compute user
 * when this process is root; does nothing otherwise.
 */
export async function giveToComputeUser(
  path: string,
  { recursive = false }: { recursive?: boolean } = {},
): Promise<void> {
  if (!isRoot()) return;
  const { uid, gid } = computeUser();
  if (!recursive) {
    await Deno.chown(path, uid, gid);
    return;
  }
  const output = await new Deno.Command("chown", {
    args: ["-R", `${uid}:${gid}`, path],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`chown -R ${path}: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
}

/** `PATH` for a clean environment when this process has none. */
export const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin";

/**
 * A `Deno.Command` running `command` as the compute user: through `runuser -u
 * <user> -- env <options.env> …` when this process is root, directly
 * otherwise. Either way the program gets `options.env`, on top of this
 * process's environment or, with `clearEnv`, alone (`runuser` itself then only
 * gets this process's `PATH`, and sets `HOME`, `SHELL`, `USER` and `LOGNAME`
 * before `options.env` applies). {@linkcode programPid} finds the program's pid.
 */
export function computeUserCommand(
  command: string,
  args: readonly string[],
  options: Omit<Deno.CommandOptions, "args"> = {},
): Deno.Command {
  if (!isRoot()) return new Deno.Command(command, { ...options, args: [...args] });
  const env = options.env ?? {};
  const pairs = Object.entries(env).map(([key, value]) => `${key}=${value}`);
  return new Deno.Command("runuser", {
    ...options,
    env: options.clearEnv ? { PATH: Deno.env.get("PATH") ?? DEFAULT_PATH } : {},
    args: ["-u", computeUser().name, "--", "env", ...pairs, command, ...args],
  });
}

/**
 * The pid of the program a {@linkcode computeUserCommand} started: `runuser`'s
 * only child when this process is root (undefined before runuser has forked
 * it and after it is gone), the child itself otherwise.
 */
export async function programPid(child: Deno.ChildProcess): Promise<number | undefined> {
  return isRoot() ? (await childPids(child.pid))[0] : child.pid;
}

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
 * `pg_controldata`, `postgres`, …) the way Postgres accepts: as the
 * {@linkcode computeUser} (see {@linkcode pgUserCommand}). Returns the exit
 * code and the combined stdout and stderr.
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
 * A `Deno.Command` running `command` as the compute user with `LC_ALL=C` (see
 * {@linkcode computeUserCommand}), for long-running servers the caller spawns.
 */
export function pgUserCommand(
  command: string,
  args: readonly string[],
  options: Omit<Deno.CommandOptions, "args"> = {},
): Deno.Command {
  return computeUserCommand(command, args, {
    ...options,
    env: { LC_ALL: "C", ...options.env },
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
 * Checks that the compute user can read (and, for directories, enter) every
 * path in `paths`; throws a message naming the first one it cannot, with the
 * usual fix. Only a root process runs computes as another user: any other
 * runs them as itself, so there is nothing to check.
 */
export async function assertComputeUserCanRead(paths: string[]): Promise<void> {
  if (!isRoot()) return;
  const user = computeUser().name;
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
