/**
 * @module
 * The emulated Neon extension: a sidecar per compute that does what the neon
 * extension's libpagestore does when page reads fail. Vanilla PostgreSQL never
 * reads pages from the pageserver, so every `intervalMs` the sidecar asks the
 * compute's Postgres which pageserver it believes in (`SHOW
 * neon.pageserver_connstring`, shard 0), opens `pagestream_v3 <tenant>
 * <timeline>` there and sends one DbSize request. Any pagestream answer, a
 * pagestream Error included, means "reachable, tenant attached". An
 * ErrorResponse (`not found`: the tenant is absent or secondary there), a
 * refused connection, a closed one or a timeout makes it POST the manager's
 * internal `/refresh_configuration` (3 s timeout, as libpagestore), then wait
 * `backoffMs`, doubling up to 10 s while the failures continue (reference
 * neon-04 §A.7, §A.9, §E.4; neon-01 §5).
 *
 * The pure parts (the connstring list, the v3 request bytes, the verdict on
 * an answer, the back-off) are exported apart from the loop that uses them.
 *
 * ```ts
 * const extension = startNeonExtension({ postgresUrl, internalHttp, tenantId, timelineId });
 * // … the compute runs …
 * await extension.stop();
 * ```
 */

import {
  classifyPagestreamAnswer,
  encodePagestreamV3Request,
  LATEST_LSN,
  type PagestreamAnswer,
  type ProbeVerdict,
} from "./pagestream.ts";
import {
  connectReplication,
  PgServerError,
  type ReplicationConnection,
} from "./replication_client.ts";

/** How long connecting, logging in and one query or pagestream answer may take. */
const PROBE_TIMEOUT_MS = 3_000;
/** libpagestore gives `/refresh_configuration` 3 s. */
const REFRESH_TIMEOUT_MS = 3_000;
/** The back-off stops doubling here. */
export const MAX_BACKOFF_MS = 10_000;
/** The `postgres` database of a fresh PostgreSQL cluster: what the probe's DbSize asks about. */
const POSTGRES_DB_OID = 5;
const DEFAULT_PORT = 5432;
const APPLICATION_NAME = "neon_extension_probe";

/** Options of {@linkcode startNeonExtension}. */
export interface NeonExtensionOptions {
  /** The compute's Postgres as a superuser: `postgresql://cloud_admin@127.0.0.1:<port>/postgres`. */
  postgresUrl: string;
  /** The manager's internal HTTP server: `http://127.0.0.1:<port>`. */
  internalHttp: string;
  tenantId: string;
  timelineId: string;
  /** Time between probes while the pageserver answers; default 1 s. */
  intervalMs?: number;
  /** First wait after a failed probe, doubled while failures continue (up to 10 s); default 1 s. */
  backoffMs?: number;
  /** The storage token (`NEON_AUTH_TOKEN`), sent as the pageserver password. */
  authToken?: string;
  /** Where notable events go (failed probes, refreshes, recovery); default nowhere. */
  log?: (line: string) => void;
}

/** A running sidecar. */
export interface NeonExtension extends AsyncDisposable {
  /** Ends the loop and closes any connection at once; resolves when nothing is left open. */
  stop(): Promise<void>;
  /** Probes completed (whatever their outcome). */
  readonly probes: number;
  /** `POST /refresh_configuration` requests sent. */
  readonly refreshes: number;
}

/** Where a libpq connection string points. */
export interface LibpqAddress {
  host: string;
  port: number;
  user: string;
  password?: string;
  database?: string;
}

/** `neon.pageserver_connstring` split into one connstring per shard, in shard order. */
export function shardConnstrings(value: string): string[] {
  return value.split(",").map((part) => part.trim()).filter((part) => part !== "");
}

/**
 * Parses a libpq connection string, URL (`postgresql://user:pw@host:port/db`)
 * or `key=value` form. A missing user is `no_user` (what Neon's pageserver URLs
 * carry), a missing port 5432. Returns null when the text is neither form or
 * names no host.
 */
export function parseLibpqAddress(connstring: string): LibpqAddress | null {
  const text = connstring.trim();
  if (/^postgres(ql)?:\/\//i.test(text)) return parseUrlForm(text);
  if (text.includes("=")) return parseKeyValueForm(text);
  return null;
}

/** The address of shard 0 in a `neon.pageserver_connstring` value; null when there is none. */
export function shardZeroAddress(value: string): LibpqAddress | null {
  const first = shardConnstrings(value)[0];
  return first === undefined ? null : parseLibpqAddress(first);
}

function parseUrlForm(text: string): LibpqAddress | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port === "" ? DEFAULT_PORT : Number(url.port);
  if (host === "" || !validPort(port)) return null;
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  return withOptional({
    host,
    port,
    user: url.username === "" ? "no_user" : decodeURIComponent(url.username),
    password: url.password === "" ? undefined : decodeURIComponent(url.password),
    database: database === "" ? undefined : database,
  });
}

function parseKeyValueForm(text: string): LibpqAddress | null {
  const pairs = new Map<string, string>();
  for (const match of text.matchAll(/(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']+)/g)) {
    const raw = match[2];
    pairs.set(
      match[1],
      raw.startsWith("'") ? raw.slice(1, -1).replace(/\\(.)/g, "$1") : raw,
    );
  }
  const host = pairs.get("host") ?? pairs.get("hostaddr");
  const port = pairs.has("port") ? Number(pairs.get("port")) : DEFAULT_PORT;
  if (host === undefined || host === "" || !validPort(port)) return null;
  return withOptional({
    host,
    port,
    user: pairs.get("user") || "no_user",
    password: pairs.get("password") || undefined,
    database: pairs.get("dbname") || undefined,
  });
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port > 0 && port < 65536;
}

/** Drops the undefined optional fields, so results compare equal to literals. */
function withOptional(address: LibpqAddress): LibpqAddress {
  const out: LibpqAddress = { host: address.host, port: address.port, user: address.user };
  if (address.password !== undefined) out.password = address.password;
  if (address.database !== undefined) out.database = address.database;
  return out;
}

/** The wait after a failure that follows one waited for `currentMs`: doubled, capped at 10 s. */
export function nextBackoffMs(currentMs: number, initialMs: number): number {
  return Math.min(currentMs * 2, Math.max(MAX_BACKOFF_MS, initialMs));
}

interface Sidecar {
  options: NeonExtensionOptions;
  postgres: LibpqAddress | null;
  signal: AbortSignal;
  /** Connections in use, closed by `stop()`. */
  open: Set<ReplicationConnection>;
  counts: { probes: number; refreshes: number; requests: number };
  log: (line: string) => void;
}

/**
 * Starts the sidecar for one compute. It copes with Postgres not being up yet
 * (a failed `SHOW` is skipped, no refresh) and never throws; call
 * {@linkcode NeonExtension.stop} to end it.
 */
export function startNeonExtension(options: NeonExtensionOptions): NeonExtension {
  const stopping = new AbortController();
  const sidecar: Sidecar = {
    options,
    postgres: parseLibpqAddress(options.postgresUrl),
    signal: stopping.signal,
    open: new Set(),
    counts: { probes: 0, refreshes: 0, requests: 0 },
    log: (line) => {
      try {
        options.log?.(line);
      } catch {
        // A broken log must not stop the probe.
      }
    },
  };
  if (sidecar.postgres === null) {
    sidecar.log("postgresUrl is not a libpq connection string: the probe stays idle");
  }
  const loop = runLoop(sidecar);
  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      stopping.abort();
      for (const connection of sidecar.open) connection.close();
      await loop;
    })();
  return {
    stop,
    get probes() {
      return sidecar.counts.probes;
    },
    get refreshes() {
      return sidecar.counts.refreshes;
    },
    [Symbol.asyncDispose]: stop,
  };
}

async function runLoop(sidecar: Sidecar): Promise<void> {
  const { signal, options } = sidecar;
  const intervalMs = options.intervalMs ?? 1_000;
  const initialBackoffMs = options.backoffMs ?? 1_000;
  let backoffMs = initialBackoffMs;
  let delayMs = 0;
  let failing = false;
  while (!signal.aborted) {
    await abortableSleep(delayMs, signal);
    if (signal.aborted) return;
    delayMs = intervalMs;
    try {
      const connstring = await readPageserverConnstring(sidecar);
      const address = connstring === null ? null : shardZeroAddress(connstring);
      if (address === null || signal.aborted) continue;
      const where = `${address.host}:${address.port}`;
      const verdict = await probePageserver(sidecar, address);
      if (signal.aborted) return;
      sidecar.counts.probes += 1;
      if (verdict.reachable) {
        if (failing) sidecar.log(`pageserver ${where} serves the tenant again (${verdict.detail})`);
        failing = false;
        backoffMs = initialBackoffMs;
        continue;
      }
      const outcome = await requestRefresh(sidecar);
      sidecar.log(
        `probe of pageserver ${where} failed: ${verdict.reason}; ` +
          `POST /refresh_configuration: ${outcome}; next probe in ${backoffMs} ms`,
      );
      failing = true;
      delayMs = backoffMs;
      backoffMs = nextBackoffMs(backoffMs, initialBackoffMs);
    } catch (error) {
      // Nothing above should throw; if it does, say so and keep probing.
      sidecar.log(`probe loop error: ${errorText(error)}`);
    }
  }
}

/** `SHOW neon.pageserver_connstring` on the compute; null when Postgres cannot answer. */
async function readPageserverConnstring(sidecar: Sidecar): Promise<string | null> {
  const postgres = sidecar.postgres;
  if (postgres === null) return null;
  const connection = await openConnection(sidecar, postgres, postgres.password);
  if (connection === null) return null;
  const deadline = closeAfter(connection, PROBE_TIMEOUT_MS);
  try {
    const result = await connection.query("SHOW neon.pageserver_connstring");
    return result.rows[0]?.[0] ?? null;
  } catch {
    return null;
  } finally {
    deadline.clear();
    release(sidecar, connection);
  }
}

/** Opens `pagestream_v3` on `address`, sends one DbSize request and judges the answer. */
async function probePageserver(sidecar: Sidecar, address: LibpqAddress): Promise<ProbeVerdict> {
  const { tenantId, timelineId, authToken } = sidecar.options;
  const reqid = (BigInt(Deno.pid) << 32n) | BigInt(++sidecar.counts.requests);
  let connection: ReplicationConnection | null;
  try {
    connection = await openConnection(sidecar, address, authToken ?? address.password, true);
  } catch (error) {
    return { reachable: false, reason: `could not connect: ${errorText(error)}` };
  }
  if (connection === null) return { reachable: false, reason: "stopped" };
  const deadline = closeAfter(connection, PROBE_TIMEOUT_MS);
  let answer: PagestreamAnswer;
  try {
    await connection.startCopyBoth(`pagestream_v3 ${tenantId} ${timelineId}`);
    const request = encodePagestreamV3Request(
      { reqid, requestLsn: LATEST_LSN, notModifiedSince: 0n },
      { kind: "db_size", dbnode: POSTGRES_DB_OID },
    );
    await connection.sendCopyData(request);
    const payload = await connection.readCopyData();
    answer = payload !== null
      ? { kind: "copy_data", payload }
      : deadline.expired
      ? { kind: "timeout" }
      : { kind: "closed" };
  } catch (error) {
    answer = deadline.expired
      ? { kind: "timeout" }
      : error instanceof PgServerError
      ? { kind: "error_response", message: error.message, code: error.code }
      : { kind: "closed", detail: errorText(error) };
  } finally {
    deadline.clear();
    release(sidecar, connection);
  }
  return classifyPagestreamAnswer(answer, reqid);
}

/**
 * Connects and logs in as a normal session, registered so `stop()` can close
 * it. Returns null once stopped, or (unless `rethrow`) when connecting fails.
 */
async function openConnection(
  sidecar: Sidecar,
  address: LibpqAddress,
  password: string | undefined,
  rethrow = false,
): Promise<ReplicationConnection | null> {
  if (sidecar.signal.aborted) return null;
  let connection: ReplicationConnection;
  try {
    connection = await connectReplication({
      host: address.host,
      port: address.port,
      user: address.user,
      database: address.database,
      password,
      applicationName: APPLICATION_NAME,
      replication: false,
      connectTimeoutMs: PROBE_TIMEOUT_MS,
    });
  } catch (error) {
    if (rethrow && !sidecar.signal.aborted) throw error;
    return null;
  }
  if (sidecar.signal.aborted) {
    connection.close();
    return null;
  }
  sidecar.open.add(connection);
  return connection;
}

function release(sidecar: Sidecar, connection: ReplicationConnection): void {
  connection.close();
  sidecar.open.delete(connection);
}

/** Closes `connection` after `ms` unless cleared; `expired` says whether it did. */
function closeAfter(connection: ReplicationConnection, ms: number) {
  const deadline = { expired: false, clear: () => clearTimeout(timer) };
  const timer = setTimeout(() => {
    deadline.expired = true;
    connection.close();
  }, ms);
  return deadline;
}

/** `POST <internal>/refresh_configuration`; returns the status or why it failed. */
async function requestRefresh(sidecar: Sidecar): Promise<string> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  sidecar.signal.addEventListener("abort", abort, { once: true });
  const timer = setTimeout(abort, REFRESH_TIMEOUT_MS);
  sidecar.counts.refreshes += 1;
  try {
    const response = await fetch(`${sidecar.options.internalHttp}/refresh_configuration`, {
      method: "POST",
      signal: controller.signal,
    });
    await response.body?.cancel();
    return String(response.status);
  } catch (error) {
    return `failed (${errorText(error)})`;
  } finally {
    clearTimeout(timer);
    sidecar.signal.removeEventListener("abort", abort);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts; leaves no timer behind. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * A `log` for {@linkcode startNeonExtension} that appends each line to `path`
 * (a compute's `compute.log`) in the manager's format, `<time>    INFO
 * neon_extension: <line>`. Synchronous, so lines never interleave and nothing
 * is pending once the sidecar stopped; a failed write is dropped.
 */
export function appendingLog(path: string): (line: string) => void {
  return (line) => {
    try {
      Deno.writeTextFileSync(
        path,
        `${new Date().toISOString()}    INFO neon_extension: ${line}\n`,
        {
          append: true,
        },
      );
    } catch {
      // The compute's directory is gone; the line does not matter any more.
    }
  };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
