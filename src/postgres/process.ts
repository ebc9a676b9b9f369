/**
 * @module
 * The local Postgres as a child process: spawned directly (`postgres -D`), its
 * stderr fed through the log collector, readiness read from `postmaster.pid`,
 * reloads through the sibling `pg_ctl`, and `postgres --sync-safekeepers` for
 * builds that have it (Neon's; vanilla Postgres does not).
 */

import { formatLsn, type Lsn, parseLsn } from "../api/lsn.ts";
import { getLogger } from "../log.ts";
import { collectLogs, type RecordSink, writePgLine } from "./log_collector.ts";
import { siblingBinary } from "./programs.ts";

export { siblingBinary };

const log = getLogger("postgres");

/** How a child ended: an exit code, or the signal that killed it. */
export interface ExitInfo {
  code: number | null;
  signal: Deno.Signal | null;
}

/** A running postmaster owned by the manager. */
export interface PostgresProcess {
  readonly pid: number;
  /** Resolves once the postmaster has exited and its stderr is drained. */
  readonly exited: Promise<ExitInfo>;
  /** Sends `signal`; a no-op once the process has exited. */
  kill(signal: Deno.Signal): void;
}

/** Options for {@link spawnPostgres}. */
export interface SpawnOptions {
  pgbin: string;
  pgdata: string;
  /** Extra environment for the child (e.g. `NEON_AUTH_TOKEN`), on top of ours. */
  env?: Record<string, string>;
  /** Where collected stderr records go; default: `PG:` lines on our stderr. */
  onLog?: RecordSink;
}

/** Raised when Postgres cannot be started or does not become ready. */
export class PostgresStartError extends Error {
  override name = "PostgresStartError";
}

/** Raised when `postgres --sync-safekeepers` fails or prints something that is not an LSN. */
export class SyncSafekeepersError extends Error {
  override name = "SyncSafekeepersError";
}

/** How long to wait for stderr to drain after the postmaster itself has exited. */
const DRAIN_TIMEOUT_MS = 2_000;

function exitInfo(status: Deno.CommandStatus): ExitInfo {
  return status.signal === null
    ? { code: status.code, signal: null }
    : { code: null, signal: status.signal };
}

/** Describes an exit for messages: `code 1` or `signal SIGKILL`. */
export function describeExit(info: ExitInfo): string {
  return info.signal === null ? `code ${info.code}` : `signal ${info.signal}`;
}

function killQuietly(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // already exited
  }
}

/**
 * Starts `<pgbin> -D <pgdata>` with stdout inherited and stderr piped through
 * the log collector, and returns the handle. Spawn failures throw
 * {@link PostgresStartError}.
 */
export function spawnPostgres(options: SpawnOptions): PostgresProcess {
  const { pgbin, pgdata, env = {}, onLog = writePgLine } = options;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(pgbin, {
      args: ["-D", pgdata],
      env,
      stdin: "null",
      stdout: "inherit",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    throw new PostgresStartError(`failed to spawn ${pgbin} -D ${pgdata}: ${error}`);
  }
  const logsDone = collectLogs(child.stderr, onLog);
  let done = false;
  const exited = child.status.then(async (status) => {
    done = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, DRAIN_TIMEOUT_MS));
    await Promise.race([logsDone, timeout]);
    clearTimeout(timer);
    return exitInfo(status);
  });
  log.info("started postgres", { pid: child.pid, pgdata });
  return {
    pid: child.pid,
    exited,
    kill: (signal) => {
      if (!done) killQuietly(child, signal);
    },
  };
}

/** The status word Postgres writes as the last line of `postmaster.pid`, or `undefined`. */
export async function postmasterStatus(pgdata: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${pgdata}/postmaster.pid`);
  } catch {
    return undefined;
  }
  const lines = text.split("\n").filter((line) => line !== "");
  return lines.length === 0 ? undefined : lines[lines.length - 1].trim();
}

/** Statuses meaning "accepting connections": `ready`, and `standby` for a hot standby. */
const READY_STATUSES = new Set(["ready", "standby"]);

/**
 * Resolves once `postmaster.pid` in `pgdata` ends with `ready` (or `standby`,
 * which vanilla Postgres writes for a hot standby). Wakes on file-system events
 * in `pgdata` and every 100 ms. Rejects with "Postgres exited unexpectedly with
 * code N" if the process exits first, or "timed out while waiting for Postgres
 * to start" after `timeoutMs`.
 */
export async function waitForReady(
  pgdata: string,
  proc: PostgresProcess,
  { timeoutMs = 60_000, pollMs = 100 }: { timeoutMs?: number; pollMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exit: ExitInfo | undefined;
  let wake = () => {};
  proc.exited.then((info) => {
    exit = info;
    wake();
  });
  let watcher: Deno.FsWatcher | undefined;
  try {
    watcher = Deno.watchFs(pgdata, { recursive: false });
    (async () => {
      for await (const _event of watcher) wake();
    })().catch(() => {});
  } catch (error) {
    log.debug("cannot watch PGDATA, polling only", { error: String(error) });
  }
  try {
    while (true) {
      if (exit !== undefined) {
        throw new PostgresStartError(`Postgres exited unexpectedly with ${describeExit(exit)}`);
      }
      const status = await postmasterStatus(pgdata);
      if (status !== undefined && READY_STATUSES.has(status)) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new PostgresStartError("timed out while waiting for Postgres to start");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(pollMs, left));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    watcher?.close();
  }
}

/**
 * Runs `<dir of pgbin>/pg_ctl reload -D <pgdata>`. Like the reference, a
 * non-zero exit is only logged; failing to spawn `pg_ctl` throws.
 */
export async function reloadPostgres(pgbin: string, pgdata: string): Promise<void> {
  const output = await new Deno.Command(siblingBinary(pgbin, "pg_ctl"), {
    args: ["reload", "-D", pgdata],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  if (!output.success) {
    log.warn("pg_ctl reload failed", {
      code: output.code,
      stderr: decoder.decode(output.stderr).trim(),
    });
  }
}

const SYNC_SAFEKEEPERS_FLAG = "--sync-safekeepers";
const syncSupportCache = new Map<string, Promise<boolean>>();

/**
 * Tells whether `pgbin` understands `--sync-safekeepers` (Neon's Postgres does,
 * vanilla does not): first from its `--help` text, else by looking for the flag
 * in the binary itself. Cached per path; never throws.
 */
export function supportsSyncSafekeepers(pgbin: string): Promise<boolean> {
  let cached = syncSupportCache.get(pgbin);
  if (cached === undefined) {
    cached = detectSyncSafekeepers(pgbin).catch(() => false);
    syncSupportCache.set(pgbin, cached);
  }
  return cached;
}

async function detectSyncSafekeepers(pgbin: string): Promise<boolean> {
  const help = await new Deno.Command(pgbin, {
    args: ["--help"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(help.stdout);
  if (text.includes(SYNC_SAFEKEEPERS_FLAG)) return true;
  return await fileContains(pgbin, new TextEncoder().encode(SYNC_SAFEKEEPERS_FLAG));
}

/** Bytes of the binary read at a time when looking for the flag in it. */
const SCAN_CHUNK = 256 * 1024;

/**
 * Whether `needle` occurs in the file, read in chunks into one buffer (the
 * binary is ~9 MB: read whole, it would stay in the process's heap).
 */
async function fileContains(path: string, needle: Uint8Array): Promise<boolean> {
  using file = await Deno.open(path);
  const buffer = new Uint8Array(SCAN_CHUNK + needle.length - 1);
  let kept = 0; // the previous chunk's tail, which a match may start in
  for (;;) {
    const read = await file.read(buffer.subarray(kept, kept + SCAN_CHUNK));
    if (read === null) return false;
    const filled = kept + read;
    if (indexOfBytes(buffer.subarray(0, filled), needle) >= 0) return true;
    kept = Math.min(needle.length - 1, filled);
    buffer.copyWithin(0, filled - kept, filled);
  }
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  const first = needle[0];
  outer: for (let i = haystack.indexOf(first); i >= 0; i = haystack.indexOf(first, i + 1)) {
    if (i + needle.length > haystack.length) return -1;
    for (let j = 1; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

/** Options for {@link runSyncSafekeepers}. */
export interface SyncSafekeepersOptions {
  pgbin: string;
  pgdata: string;
  /** Extra environment (e.g. `NEON_AUTH_TOKEN`); `PGDATA` is set here. */
  env?: Record<string, string>;
  /** Aborting sends SIGTERM to the child, as the manager does on termination. */
  signal?: AbortSignal;
  onLog?: RecordSink;
}

/**
 * Runs `<pgbin> --sync-safekeepers` with `PGDATA=<pgdata>` (the mode takes no
 * `-D`), stderr through the log collector, and returns the LSN it prints on
 * stdout. A non-zero exit throws {@link SyncSafekeepersError} including stdout.
 */
export async function runSyncSafekeepers(options: SyncSafekeepersOptions): Promise<Lsn> {
  const { pgbin, pgdata, env = {}, signal, onLog = writePgLine } = options;
  const child = new Deno.Command(pgbin, {
    args: [SYNC_SAFEKEEPERS_FLAG],
    env: { ...env, PGDATA: pgdata },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal,
  }).spawn();
  const logsDone = collectLogs(child.stderr, onLog);
  const stdout = new Response(child.stdout).text();
  const [status, text] = await Promise.all([child.status, stdout, logsDone]);
  if (!status.success) {
    const how = describeExit(exitInfo(status));
    throw new SyncSafekeepersError(
      `postgres --sync-safekeepers exited with ${how}, stdout: ${JSON.stringify(text)}`,
    );
  }
  try {
    const lsn = parseLsn(text.trim());
    log.info("safekeepers synced", { lsn: formatLsn(lsn) });
    return lsn;
  } catch {
    throw new SyncSafekeepersError(
      `postgres --sync-safekeepers printed no LSN: ${JSON.stringify(text)}`,
    );
  }
}
