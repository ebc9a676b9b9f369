/**
 * @module
 * The private Postgres `pgdata` restores into: `initdb` of a new PGDATA in the
 * working directory, the postmaster started with the bulk-loading settings
 * (`command_lines.ts`) and its output relayed to the log, the target database
 * created as soon as it accepts connections (Neon polls every 300 ms for up to
 * 10 minutes, and so do we, but a postmaster that exits ends the wait at once),
 * and its stop: SIGTERM and wait on success, so the PGDATA is shut down
 * cleanly; a fast stop on failure.
 */

import { sleep } from "../_async.ts";
import { ChildError, type RelayedChild, runCaptured, spawnRelayed } from "./_child.ts";
import { getLogger } from "./_log.ts";
import {
  initdbArgs,
  postgresArgs,
  privateConnstring,
  psqlArgs,
  TARGET_DATABASE,
  type Tuning,
} from "./command_lines.ts";

const log = getLogger("postgres");

/** Neon's `PG_WAIT_TIMEOUT`. */
export const PG_WAIT_TIMEOUT_MS = 600_000;
/** Neon's `PG_WAIT_RETRY_INTERVAL`. */
export const PG_WAIT_RETRY_INTERVAL_MS = 300;
/** How long a fast stop may take before the postmaster is killed. */
const FAST_STOP_MS = 30_000;

/** The private Postgres could not be made, started or stopped. */
export class PrivatePostgresError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PrivatePostgresError";
  }
}

/** Creates `pgdata` (its parent must exist) and runs Neon's `initdb` in it. */
export async function initPgdata(
  { initdb, pgdata, pgMajor, env }: {
    initdb: string;
    pgdata: string;
    pgMajor: number;
    env: Record<string, string>;
  },
): Promise<void> {
  await Deno.mkdir(pgdata, { mode: 0o700 });
  const output = await runCaptured(initdb, initdbArgs({ pgdata, pgMajor }), env);
  if (output.code !== 0) {
    throw new PrivatePostgresError(
      `initdb: Command failed with status ${output.code}: ${output.stderr.trim()}`,
    );
  }
}

/** A running private Postgres. */
export interface PrivatePostgres {
  readonly port: number;
  /** Resolves when the postmaster has exited. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** The last FATAL or PANIC line it printed, if any. */
  lastFatal(): string | undefined;
  /** SIGTERM (smart shutdown), then its exit: the PGDATA is left shut down cleanly. */
  shutdown(): Promise<void>;
  /** Fast shutdown, SIGKILL after 30 s; for the failure paths. Safe to call at any time. */
  stop(): Promise<void>;
}

/** Starts the postmaster on `pgdata`; its output goes to the log as `fast_import::postgres`. */
export function startPrivatePostgres(
  { postgres, pgdata, port, tuning, env }: {
    postgres: string;
    pgdata: string;
    port: number;
    tuning: Tuning;
    env: Record<string, string>;
  },
): PrivatePostgres {
  let fatal: string | undefined;
  const child: RelayedChild = spawnRelayed({
    program: postgres,
    args: postgresArgs({ pgdata, port, tuning }),
    env,
    log,
    onLine: (line) => {
      if (/\b(FATAL|PANIC):/.test(line)) fatal = line;
    },
  });
  log.info("spawned postgres, waiting for it to become ready", { pid: child.pid });
  let running = true;
  const exited = child.done.finally(() => running = false);
  return {
    port,
    exited,
    lastFatal: () => fatal,
    async shutdown() {
      log.info("shutdown postgres");
      child.kill("SIGTERM");
      const status = await exited;
      if (!status.success) {
        throw new PrivatePostgresError(`postgres exited with code ${status.code} on shutdown`);
      }
    },
    async stop() {
      if (!running) return;
      child.kill("SIGINT");
      const timer = setTimeout(() => child.kill("SIGKILL"), FAST_STOP_MS);
      await exited.finally(() => clearTimeout(timer));
    },
  };
}

/**
 * Creates the target database (`neondb`) as soon as the private Postgres
 * accepts connections, polling as Neon's `wait_until_ready` does. Throws
 * {@linkcode PrivatePostgresError} when the postmaster exits first or after
 * `timeoutMs`.
 */
export async function createTargetDatabase(
  {
    psql,
    env,
    server,
    timeoutMs = PG_WAIT_TIMEOUT_MS,
    retryMs = PG_WAIT_RETRY_INTERVAL_MS,
    signal,
  }: {
    psql: string;
    env: Record<string, string>;
    server: PrivatePostgres;
    timeoutMs?: number;
    retryMs?: number;
    signal?: AbortSignal;
  },
): Promise<void> {
  let exit: Deno.CommandStatus | undefined;
  server.exited.then((status) => exit = status);
  const deadline = Date.now() + timeoutMs;
  const args = psqlArgs(
    privateConnstring(server.port, "postgres"),
    `CREATE DATABASE ${TARGET_DATABASE}`,
  );
  const retrySeconds = retryMs / 1000;
  while (true) {
    signal?.throwIfAborted();
    if (exit !== undefined) {
      const fatal = server.lastFatal();
      throw new PrivatePostgresError(
        `postgres exited with code ${exit.code} before it accepted connections` +
          (fatal ? `: ${fatal}` : ""),
      );
    }
    if (Date.now() > deadline) {
      throw new PrivatePostgresError(
        "timeout exceeded: failed to poll postgres and create database within 10 minutes",
      );
    }
    let output;
    try {
      output = await runCaptured(psql, args, env);
    } catch (error) {
      if (error instanceof ChildError) throw new PrivatePostgresError(error.message);
      throw error;
    }
    if (output.code === 0) {
      log.info(`created ${TARGET_DATABASE} database`);
      return;
    }
    if (output.code === 2) {
      log.info(`postgres not ready yet, retrying in ${retrySeconds}s`);
    } else {
      log.warn(
        `failed to create database: ${output.stderr.trim()}, retrying in ${retrySeconds}s`,
      );
    }
    await sleep(retryMs, signal);
  }
}
