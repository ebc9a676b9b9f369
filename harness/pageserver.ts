/**
 * @module
 * A fake Neon pageserver: the libpq side a compute talks to (reference neon-04
 * §A.1–A.3, A.6, A.9) and an HTTP `/metrics` endpoint.
 *
 * libpq: trust, or a JWT as cleartext password when `jwtPublicKey` is given.
 * Commands (parsed in `pageserver_command.ts`):
 * `basebackup <tenant> <timeline> [<lsn>|latest] [--gzip] [--replica]`
 * (CopyOut of the timeline's tar at that LSN: a base image plus the WAL that takes
 * it there, see `timeline_store.ts`; then CommandComplete `SELECT 1`),
 * `fullbackup` (the same, never gzip), `lease lsn <tenant_shard_id> <timeline> <lsn>`
 * (one `valid_until` row; NULL when the LSN is behind the GC cutoff), `set …`
 * (no-op), and `pagestream_v2|v3` (opened, every
 * request answered with a pagestream error: vanilla PostgreSQL never reads pages
 * from here, but probes can see whether the tenant is attached). A tenant that is
 * not attached here (absent or secondary) gets ErrorResponse `not found` and bumps
 * `pageserver_misrouted_pagestream_requests_total`.
 *
 * {@linkcode Pageserver.basebackupFault} spoils basebackups on purpose (see
 * `faults.ts`, `pageserver_basebackup.ts`); gzipped ones are cached per LSN
 * (`pageserver_basebackup_cache.ts`).
 *
 * It can go down and come back: {@linkcode Pageserver.stop} refuses new work,
 * lets running commands finish and closes; {@linkcode Pageserver.kill} drops
 * every connection at once; {@linkcode Pageserver.start} listens again on the
 * same ports. Which tenants it holds (attached or secondary) is the storage
 * controller's knowledge and survives both, as does the misrouted counter.
 */

import type { JWK } from "jose";
import { type PgConnection, PgError, type PgServer, startPgServer } from "./pgwire.ts";
import { checkTenantPermission, jwtAuthenticator, type NeonClaims } from "./neon_auth.ts";
import { type PageserverCommand, parsePageserverCommand } from "./pageserver_command.ts";
import { type BasebackupFault, type FaultSwitch, faultSwitch } from "./faults.ts";
import { streamBasebackup } from "./pageserver_basebackup.ts";
import * as cache from "./pageserver_basebackup_cache.ts";
import {
  LsnBeforeCutoffError,
  LsnNotReachedError,
  TimelineNotFoundError,
  type TimelineStore,
} from "./timeline_store.ts";

export {
  CommandParseError,
  type PageserverCommand,
  parsePageserverCommand,
} from "./pageserver_command.ts";

const DEFAULT_LEASE_MS = 10 * 60 * 1000;
const MISROUTED_METRIC = "pageserver_misrouted_pagestream_requests_total";
const DEFAULT_DRAIN_MS = 10_000;

/** Options of {@link startPageserver}. */
export interface PageserverOptions {
  id: number;
  store: TimelineStore;
  /** Ed25519 public key; when set, logins must present a JWT as password. */
  jwtPublicKey?: CryptoKey | JWK;
  /** Length of an LSN lease; 10 minutes by default. */
  leaseDurationMs?: number;
  /** How long {@linkcode Pageserver.stop} waits for running commands; 10 s by default. */
  drainTimeoutMs?: number;
}

/** What a pageserver holds of a tenant: served (`attached`), kept warm (`secondary`), or nothing. */
export type TenantState = "attached" | "secondary" | null;

/** A running fake pageserver. */
export interface Pageserver extends AsyncDisposable {
  readonly id: number;
  readonly port: number;
  /** `postgresql://no_user@127.0.0.1:PORT`, as the spec's `libpq_url`. */
  readonly libpqUrl: string;
  /** `http://127.0.0.1:PORT` of the HTTP server (`GET /metrics`). */
  readonly httpUrl: string;
  /** Serve this tenant from now on. */
  attach(tenantId: string): void;
  /** Stop serving this tenant (requests get `not found`). */
  detach(tenantId: string): void;
  /** Keep the tenant only as a secondary location (requests get `not found`). */
  setSecondary(tenantId: string): void;
  /** What it holds of the tenant; kept while it is stopped. */
  tenantState(tenantId: string): TenantState;
  /** Current value of `pageserver_misrouted_pagestream_requests_total` (kept across restarts). */
  readonly misroutedRequests: number;
  /** Whether it listens (false between `stop`/`kill` and `start`, and once closed). */
  readonly running: boolean;
  /** Whether a graceful stop is under way (refusing new queries, letting running ones end). */
  readonly draining: boolean;
  /** Basebackups and leases being served right now. */
  readonly commandsInProgress: number;
  /** Gzipped basebackups served from its cache (`hit`) and composed anew (`miss`). */
  readonly basebackupCacheReads: Readonly<cache.BasebackupCacheCounters>;
  /** Spoils the next basebackups (every tenant's) on purpose; kept across stop and start. */
  readonly basebackupFault: FaultSwitch<BasebackupFault>;
  /**
   * Graceful: new connections and queries get `pageserver is shutting down`,
   * running basebackups and leases finish (up to `drainTimeoutMs`), then every
   * connection, pagestreams included, is closed. No-op when not running.
   */
  stop(): Promise<void>;
  /** Drops every connection at once, mid-stream. No-op when not running. */
  kill(): Promise<void>;
  /** Listens again on the same libpq and HTTP ports; no-op when running, throws once closed. */
  start(): Promise<void>;
  /** Stops it for good (as `kill`), once every connection's handler has finished. */
  close(): Promise<void>;
}

/** One listening period of a pageserver, from `start` to `stop`/`kill`. */
interface Life {
  pg: PgServer;
  http: Deno.HttpServer<Deno.NetAddr>;
  /** Set by a graceful stop: refuse new connections and queries. */
  draining: boolean;
  /** Basebackups and leases in progress (pagestreams never finish by themselves). */
  commands: Set<Promise<void>>;
}

/**
 * Starts a fake pageserver (libpq + HTTP, both on free loopback ports) serving the
 * timelines of `store`; no tenant is attached until {@link Pageserver.attach}.
 */
export function startPageserver(options: PageserverOptions): Pageserver {
  const tenants = new Map<string, "attached" | "secondary">();
  const counters = { misrouted: 0 };
  const basebackupFault = faultSwitch<BasebackupFault>();
  const basebackupCache = cache.createBasebackupCache();
  const ctx: ServeContext = { options, tenants, counters, basebackupFault, basebackupCache };
  const authenticate = options.jwtPublicKey ? jwtAuthenticator(options.jwtPublicKey) : undefined;
  const ports = { libpq: 0, http: 0 };
  let life: Life | null = null;
  let drainingLife: Life | null = null;
  let halting: Promise<void> = Promise.resolve();
  /** Handlers of killed connections still winding down (e.g. a basebackup waiting for WAL). */
  const lingering = new Set<Promise<void>>();
  let closed = false;

  const launch = () => {
    const current: Life = {
      pg: undefined as unknown as PgServer,
      http: undefined as unknown as Deno.HttpServer<Deno.NetAddr>,
      draining: false,
      commands: new Set(),
    };
    current.pg = startPgServer<NeonClaims>({
      port: ports.libpq,
      authenticate,
      handleConnection: (conn) => {
        if (current.draining) throw shuttingDown();
        const session: Session = { conn, pinnedTenant: null };
        return (query) => runQuery(ctx, current, session, query);
      },
    });
    current.http = Deno.serve(
      { hostname: "127.0.0.1", port: ports.http, onListen: () => {} },
      (request) => serveHttp(request, ctx),
    );
    ports.libpq = current.pg.port;
    ports.http = current.http.addr.port;
    life = current;
  };

  const halt = (graceful: boolean) => {
    const current = life;
    if (current === null) return halting;
    life = null;
    // From now on new queries are refused; `draining` says so until the drain ends.
    if (graceful) {
      current.draining = true;
      drainingLife = current;
    }
    const previous = halting;
    halting = (async () => {
      await previous;
      if (graceful) {
        try {
          await settledWithin([...current.commands], options.drainTimeoutMs ?? DEFAULT_DRAIN_MS);
          await Promise.all([current.pg.close(), current.http.shutdown()]);
        } finally {
          if (drainingLife === current) drainingLife = null;
        }
        return;
      }
      // The listener and every socket close at once; handlers finish on their own.
      const closing = current.pg.close();
      lingering.add(closing);
      closing.finally(() => lingering.delete(closing));
      await current.http.shutdown();
    })();
    return halting;
  };

  const close = async () => {
    closed = true;
    await halt(false);
    await Promise.allSettled([...lingering]);
  };

  launch();
  return {
    id: options.id,
    port: ports.libpq,
    libpqUrl: `postgresql://no_user@127.0.0.1:${ports.libpq}`,
    httpUrl: `http://127.0.0.1:${ports.http}`,
    attach: (tenantId) => void tenants.set(tenantId.toLowerCase(), "attached"),
    detach: (tenantId) => void tenants.delete(tenantId.toLowerCase()),
    setSecondary: (tenantId) => void tenants.set(tenantId.toLowerCase(), "secondary"),
    tenantState: (tenantId) => tenants.get(tenantId.toLowerCase()) ?? null,
    get misroutedRequests() {
      return counters.misrouted;
    },
    get running() {
      return life !== null;
    },
    get draining() {
      return drainingLife !== null;
    },
    get commandsInProgress() {
      return life?.commands.size ?? 0;
    },
    basebackupCacheReads: basebackupCache.counters,
    basebackupFault,
    stop: () => halt(true),
    kill: () => halt(false),
    start: async () => {
      if (closed) throw new Error(`pageserver ${options.id} is closed`);
      await halting;
      if (life === null) launch();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function shuttingDown(): PgError {
  return new PgError("pageserver is shutting down", { fatal: true });
}

/** Runs one query, counting basebackups and leases as work a graceful stop waits for. */
async function runQuery(ctx: ServeContext, life: Life, session: Session, query: string) {
  if (life.draining) throw shuttingDown();
  const running = handleQuery(ctx, session, query);
  if (!/^\s*pagestream/i.test(query)) {
    life.commands.add(running);
    running.catch(() => {}).finally(() => life.commands.delete(running));
  }
  await running;
}

/** Resolves once every promise settled, or after `timeoutMs`, whichever comes first. */
async function settledWithin(promises: Promise<unknown>[], timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs));
  try {
    await Promise.race([Promise.allSettled(promises), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface ServeContext {
  options: PageserverOptions;
  tenants: Map<string, "attached" | "secondary">;
  counters: { misrouted: number };
  basebackupFault: FaultSwitch<BasebackupFault>;
  basebackupCache: cache.BasebackupCache;
}

interface Session {
  conn: PgConnection<NeonClaims>;
  /** Neon pins a connection to the first tenant it used. */
  pinnedTenant: string | null;
}

function serveHttp(request: Request, { counters, basebackupCache }: ServeContext): Response {
  const url = new URL(request.url);
  if (request.method === "GET" && url.pathname === "/metrics") {
    const body = [
      `# HELP ${MISROUTED_METRIC} Number of pagestream requests that were routed to the wrong pageserver`,
      `# TYPE ${MISROUTED_METRIC} counter`,
      `${MISROUTED_METRIC} ${counters.misrouted}`,
      ...cache.basebackupCacheMetricLines(basebackupCache.counters),
      "",
    ].join("\n");
    return new Response(body, { headers: { "content-type": "text/plain; version=0.0.4" } });
  }
  return new Response("not found\n", { status: 404 });
}

async function handleQuery(ctx: ServeContext, session: Session, query: string): Promise<void> {
  let command: PageserverCommand;
  try {
    command = parsePageserverCommand(query);
  } catch (error) {
    throw new PgError((error as Error).message);
  }
  switch (command.kind) {
    case "set":
      session.conn.sendCommandComplete("SELECT 1");
      return;
    case "basebackup":
    case "fullbackup":
      await sendBasebackup(ctx, session, command);
      return;
    case "lease_lsn":
      sendLease(ctx, session, command);
      return;
    case "pagestream":
      await servePagestream(ctx, session, command);
      return;
  }
}

/** Checks the JWT and pins the connection to its first tenant, as Neon does. */
function pinTenant(session: Session, tenantId: string): void {
  checkTenantPermission(session.conn.auth, tenantId, "pageserverapi");
  session.pinnedTenant ??= tenantId;
  if (session.pinnedTenant !== tenantId) throw new PgError("reconnect to switch tenant id");
}

/** {@link pinTenant}, then `not found` (misrouted += 1) unless the tenant is attached. */
function resolveAttached(ctx: ServeContext, session: Session, tenantId: string): void {
  pinTenant(session, tenantId);
  if (ctx.tenants.get(tenantId) !== "attached") {
    ctx.counters.misrouted += 1;
    throw new PgError("not found");
  }
}

async function sendBasebackup(
  ctx: ServeContext,
  session: Session,
  command: Extract<PageserverCommand, { kind: "basebackup" | "fullbackup" }>,
): Promise<void> {
  const { tenantId, timelineId } = command;
  resolveAttached(ctx, session, tenantId);
  const gzip = command.kind === "basebackup" && command.gzip;
  let tar: ReadableStream<Uint8Array>;
  try {
    tar = gzip
      ? await cache.cachedBasebackup(ctx.basebackupCache, ctx.options.store, command)
      : await ctx.options.store.basebackupTar(tenantId, timelineId, command.lsn ?? 0n);
  } catch (error) {
    throw storeError(error);
  }
  await streamBasebackup(session.conn, tar, ctx.basebackupFault.take());
}

function storeError(error: unknown): PgError {
  if (error instanceof TimelineNotFoundError) return new PgError("not found");
  if (error instanceof LsnNotReachedError || error instanceof LsnBeforeCutoffError) {
    return new PgError(error.message);
  }
  return new PgError(error instanceof Error ? error.message : String(error));
}

function sendLease(
  ctx: ServeContext,
  session: Session,
  command: Extract<PageserverCommand, { kind: "lease_lsn" }>,
): void {
  const { tenantId, timelineId } = command;
  pinTenant(session, tenantId);
  // Neon answers a failed lease with the full error text, then ReadyForQuery.
  if (ctx.tenants.get(tenantId) !== "attached") {
    ctx.counters.misrouted += 1;
    throw new PgError(`Not found: Tenant ${tenantId} not found`);
  }
  if (!ctx.options.store.hasTimeline(tenantId, timelineId)) {
    throw new PgError(`Not found: Timeline ${tenantId}/${timelineId} was not found`);
  }
  const validUntil = ctx.options.store.leaseLsn(
    tenantId,
    timelineId,
    command.lsn,
    ctx.options.leaseDurationMs ?? DEFAULT_LEASE_MS,
  );
  session.conn.sendRowDescription(["valid_until"]);
  session.conn.sendDataRow([validUntil === null ? null : String(validUntil.getTime())]);
  session.conn.sendCommandComplete("SELECT 1");
}

/**
 * Opens a pagestream (CopyBothResponse) and answers each request. The tenant is
 * resolved on the first request, as Neon does: not attached ⇒ `not found`
 * (misrouted += 1), or for a GetPage `reconnect` 08006 (misrouted += 2); both
 * close the connection. Attached ⇒ a pagestream Error message (tag 103): pages
 * are not served by this emulation.
 */
async function servePagestream(
  ctx: ServeContext,
  session: Session,
  command: Extract<PageserverCommand, { kind: "pagestream" }>,
): Promise<void> {
  const { conn } = session;
  pinTenant(session, command.tenantId);
  conn.sendCopyBothResponse();
  await conn.flush();
  for (;;) {
    const message = await conn.readMessage();
    if (message === null || message.type === "c" || message.type === "X") break;
    if (message.type !== "d") continue;
    const isGetPage = message.body[0] === 2;
    if (ctx.tenants.get(command.tenantId) !== "attached") {
      ctx.counters.misrouted += isGetPage ? 2 : 1;
      throw isGetPage
        ? new PgError("reconnect", { code: "08006", fatal: true })
        : new PgError("not found", { fatal: true });
    }
    if (!ctx.options.store.hasTimeline(command.tenantId, command.timelineId)) {
      throw new PgError("not found", { fatal: true });
    }
    await conn.sendCopyData(pagestreamError(command.version, message.body));
  }
  conn.sendCommandComplete("SELECT 1");
}

/** A pagestream Error response (tag 103); v3 echoes reqid, request_lsn, not_modified_since. */
function pagestreamError(version: 2 | 3, request: Uint8Array): Uint8Array {
  const text = new TextEncoder().encode("pagestream requests are not served by this pageserver");
  const echo = version === 3 ? request.subarray(1, 25) : new Uint8Array(0);
  const out = new Uint8Array(1 + echo.length + text.length + 1);
  out[0] = 103;
  out.set(echo, 1);
  out.set(text, 1 + echo.length);
  return out;
}

/**
 * Attaches the tenant on `attached` and keeps it as a secondary on every
 * pageserver that does not know it yet: a storage controller's placement of
 * a new tenant (one attached location, secondaries elsewhere).
 */
export function placeTenant(
  pageservers: readonly Pageserver[],
  attached: Pageserver,
  tenantId: string,
): void {
  for (const ps of pageservers) {
    if (ps === attached) ps.attach(tenantId);
    else if (ps.tenantState(tenantId) === null) ps.setSecondary(tenantId);
  }
}
