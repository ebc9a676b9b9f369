/**
 * @module
 * A throw-away PostgreSQL cluster (the default major's install, see
 * `harness/pg_locate.ts`) for integration tests: `initdb` with the
 * superuser `cloud_admin`, then `postgres` listening on a free loopback port with
 * a private unix-socket directory, both run as the unprivileged `postgres` OS
 * user (Postgres refuses root). Disposing the handle stops the server and removes
 * every file, even when the start failed half-way.
 *
 * ```ts
 * await using pg = await startLocalPostgres();
 * // connect to pg.connstr as cloud_admin (trusted); other roles use passwords
 * ```
 */

import pg from "pg";
import { pgFileOwner, pgUserCommand, runAsPgUser } from "../../harness/_processes.ts";
import { locatePostgresOnce } from "../../harness/pg_locate.ts";

/** Directory holding the server binaries of the default major (`DEFAULT_PG_VERSION`). */
export const PG_BIN_DIR = (await locatePostgresOnce()).binDir;

/** A running local cluster; `await using` stops it and deletes its files. */
export interface LocalPostgres extends AsyncDisposable {
  /** TCP port on 127.0.0.1. */
  readonly port: number;
  /** `postgresql://cloud_admin@127.0.0.1:PORT/postgres`. */
  readonly connstr: string;
  /** Temporary directory holding `data/` and `socket/`; removed on stop. */
  readonly dir: string;
  /** The data directory (`dir/data`). */
  readonly pgdata: string;
  /** Stops the server (fast shutdown, then SIGKILL) and removes `dir`; idempotent. */
  stop(): Promise<void>;
}

/** Options for {@link startLocalPostgres}. */
export interface LocalPostgresOptions {
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
  /** How long to wait for the server to accept connections. */
  readyTimeoutMs?: number;
}

/**
 * Starts a fresh cluster and resolves once it accepts connections.
 *
 * Authentication (`pg_hba.conf`): `cloud_admin` is trusted; every other role must
 * log in with its password (`md5`, which also accepts SCRAM verifiers), as on a
 * Neon compute, so tests can check passwords set by the spec.
 */
export async function startLocalPostgres(
  { settings = {}, readyTimeoutMs = 30_000 }: LocalPostgresOptions = {},
): Promise<LocalPostgres> {
  const dir = await Deno.makeTempDir({ prefix: "compute_ctl_pg_" });
  const pgdata = `${dir}/data`;
  const socketDir = `${dir}/socket`;
  let server: Deno.ChildProcess | undefined;
  const serverLog: string[] = [];
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (server) await stopServer(server, pgdata);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  try {
    await Deno.mkdir(socketDir);
    await chownToPgUser(dir);
    await runAsPgUser(`${PG_BIN_DIR}/initdb`, [
      "-D",
      pgdata,
      "-U",
      "cloud_admin",
      "-A",
      "trust",
      "--no-sync",
      "--no-instructions",
      "-E",
      "UTF8",
      "--locale=C",
    ]);
    await Deno.writeTextFile(
      `${pgdata}/pg_hba.conf`,
      [
        "local all cloud_admin trust",
        "host all cloud_admin 127.0.0.1/32 trust",
        "local all all md5",
        "host all all 127.0.0.1/32 md5",
        "",
      ].join("\n"),
    );

    const port = await freePort();
    const serverSettings: Record<string, string> = {
      listen_addresses: "127.0.0.1",
      port: String(port),
      unix_socket_directories: socketDir,
      fsync: "off",
      synchronous_commit: "off",
      full_page_writes: "off",
      shared_buffers: "16MB",
      max_connections: "50",
      ...settings,
    };
    const args = ["-D", pgdata];
    for (const [name, value] of Object.entries(serverSettings)) args.push("-c", `${name}=${value}`);
    server = pgUserCommand(`${PG_BIN_DIR}/postgres`, args, {
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    collectLog(server.stderr, serverLog);

    const connstr = `postgresql://cloud_admin@127.0.0.1:${port}/postgres`;
    await waitForPostgresReady(port, server, { timeoutMs: readyTimeoutMs, serverLog });
    return { port, connstr, dir, pgdata, stop, [Symbol.asyncDispose]: stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Asks the OS for a free TCP port on 127.0.0.1. */
async function freePort(): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  await Promise.resolve();
  return port;
}

/** Gives `path` and its direct children to the user Postgres runs as (nothing to do unless root). */
async function chownToPgUser(path: string): Promise<void> {
  const owner = await pgFileOwner();
  if (owner === null) return;
  await Deno.chown(path, owner.uid, owner.gid);
  for await (const child of Deno.readDir(path)) {
    await Deno.chown(`${path}/${child.name}`, owner.uid, owner.gid);
  }
}

function collectLog(stream: ReadableStream<Uint8Array>, lines: string[]): void {
  const decoder = new TextDecoder();
  (async () => {
    for await (const chunk of stream) {
      lines.push(decoder.decode(chunk, { stream: true }));
      if (lines.length > 200) lines.splice(0, lines.length - 200);
    }
  })().catch(() => {});
}

/**
 * Waits until the Postgres `server` (listening on 127.0.0.1:`port`) answers
 * `SELECT 1` as `cloud_admin`, trying every `pollMs`; throws when it exits
 * first or is not ready within `timeoutMs`, quoting `serverLog`.
 */
export async function waitForPostgresReady(
  port: number,
  server: Deno.ChildProcess,
  { timeoutMs, pollMs = 100, serverLog = [] }: {
    timeoutMs: number;
    pollMs?: number;
    serverLog?: string[];
  },
): Promise<void> {
  let exited = false;
  server.status.then(() => exited = true);
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`postgres exited during startup:\n${serverLog.join("")}`);
    const client = new pg.Client({
      host: "127.0.0.1",
      port,
      user: "cloud_admin",
      database: "postgres",
    });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.query("SELECT 1");
      return;
    } catch (error) {
      lastError = error;
    } finally {
      await client.end().catch(() => {});
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  throw new Error(
    `postgres on port ${port} not ready after ${timeoutMs} ms (${lastError}):\n${
      serverLog.join("")
    }`,
  );
}

/** Fast shutdown via the postmaster pid; SIGKILL if it does not exit in 10 s. */
async function stopServer(server: Deno.ChildProcess, pgdata: string): Promise<void> {
  const postmasterPid = await Deno.readTextFile(`${pgdata}/postmaster.pid`)
    .then((text) => Number(text.split("\n")[0]))
    .catch(() => undefined);
  const signal = (pid: number | undefined, name: Deno.Signal) => {
    if (pid === undefined || !Number.isInteger(pid) || pid <= 0) return;
    try {
      Deno.kill(pid, name);
    } catch {
      // already gone
    }
  };
  signal(postmasterPid ?? server.pid, "SIGINT");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = await Promise.race([
    server.status.then(() => false),
    new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), 10_000)),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    signal(postmasterPid, "SIGKILL");
    signal(server.pid, "SIGKILL");
    await server.status;
  }
  await server.stderr.cancel().catch(() => {});
}
