/**
 * @module
 * A fake Neon pageserver: the libpq side a compute talks to (reference neon-04
 * §A.1–A.3, A.6, A.9) and an HTTP `/metrics` endpoint.
 *
 * libpq: trust, or a JWT as cleartext password when `jwtPublicKey` is given.
 * Commands: `basebackup <tenant> <timeline> [<lsn>|latest] [--gzip] [--replica]`
 * (CopyOut of the timeline's tar at that LSN: a base image plus the WAL that takes
 * it there, see `timeline_store.ts`; then CommandComplete `SELECT 1`),
 * `fullbackup` (the same, never gzip), `lease lsn <tenant_shard_id> <timeline> <lsn>`
 * (one `valid_until` row; NULL when the LSN is behind the GC cutoff), `set …` (no-op), and `pagestream_v2|v3` (opened, every
 * request answered with a pagestream error: vanilla PostgreSQL never reads pages
 * from here, but probes can see whether the tenant is attached). A tenant that is
 * not attached here (absent or secondary) gets ErrorResponse `not found` and bumps
 * `pageserver_misrouted_pagestream_requests_total`.
 */

import type { JWK } from "jose";
import { type Lsn, parseLsn } from "../src/api/lsn.ts";
import {
  checkTenantPermission,
  jwtAuthenticator,
  type NeonClaims,
  type PgConnection,
  PgError,
  startPgServer,
} from "./pgwire.ts";
import {
  LsnBeforeCutoffError,
  LsnNotReachedError,
  TimelineNotFoundError,
  type TimelineStore,
} from "./timeline_store.ts";

const ID_PATTERN = /^[0-9a-f]{32}$/i;
const DEFAULT_LEASE_MS = 10 * 60 * 1000;
const COPY_CHUNK = 64 * 1024;
const MISROUTED_METRIC = "pageserver_misrouted_pagestream_requests_total";

/** Options of {@link startPageserver}. */
export interface PageserverOptions {
  id: number;
  store: TimelineStore;
  /** Ed25519 public key; when set, logins must present a JWT as password. */
  jwtPublicKey?: CryptoKey | JWK;
  /** Length of an LSN lease; 10 minutes by default. */
  leaseDurationMs?: number;
}

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
  /** Current value of `pageserver_misrouted_pagestream_requests_total`. */
  readonly misroutedRequests: number;
  close(): Promise<void>;
}

/** A parsed pageserver query (reference §A.2). */
export type PageserverCommand =
  | {
    kind: "basebackup";
    tenantId: string;
    timelineId: string;
    lsn: Lsn | null;
    gzip: boolean;
    replica: boolean;
  }
  | { kind: "fullbackup"; tenantId: string; timelineId: string; lsn: Lsn | null }
  | {
    kind: "lease_lsn";
    tenantId: string;
    shard: { number: number; count: number } | null;
    timelineId: string;
    lsn: Lsn;
  }
  | { kind: "pagestream"; version: 2 | 3; tenantId: string; timelineId: string }
  | { kind: "set" };

/** A query the pageserver cannot parse; the message is what the client gets. */
export class CommandParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CommandParseError";
  }
}

/**
 * Parses a pageserver query by Neon's rules: the first word is case-insensitive,
 * arguments are split on whitespace, a query without a space is "cannot parse
 * query". Throws {@link CommandParseError} with Neon's messages.
 */
export function parsePageserverCommand(query: string): PageserverCommand {
  const text = query.trim();
  const space = text.indexOf(" ");
  if (space === -1) throw new CommandParseError(`cannot parse query: ${text}`);
  const command = text.slice(0, space);
  const rest = text.slice(space + 1);
  switch (command.toLowerCase()) {
    case "basebackup":
      return parseBasebackup(rest);
    case "fullbackup":
      return parseFullbackup(rest);
    case "pagestream_v2":
    case "pagestream_v3":
      return parsePagestream(command.toLowerCase().endsWith("2") ? 2 : 3, rest);
    case "lease":
      return parseLease(command, rest);
    case "set":
      return { kind: "set" };
    default:
      throw new CommandParseError(`unsupported command ${command} in ${text}`);
  }
}

function parseBasebackup(rest: string): PageserverCommand {
  const params = rest.split(/\s+/).filter((word) => word !== "");
  if (params.length < 2) {
    throw new CommandParseError(`invalid number of parameters for basebackup command: ${rest}`);
  }
  const tenantId = parseId("tenant", params[0]);
  const timelineId = parseId("timeline", params[1]);
  let lsn: Lsn | null = null;
  let flagsFrom = 2;
  const third = params[2];
  if (third === "latest") {
    flagsFrom = 3;
  } else if (third !== undefined && !third.startsWith("--")) {
    lsn = parseLsnParam(third);
    flagsFrom = 3;
  }
  const flags = { gzip: false, replica: false };
  for (const param of params.slice(flagsFrom)) {
    const flag = param === "--gzip" ? "gzip" : param === "--replica" ? "replica" : null;
    if (flag === null) {
      throw new CommandParseError(`invalid parameter for basebackup command: ${param}`);
    }
    if (flags[flag]) {
      throw new CommandParseError(`duplicate parameter for basebackup command: ${param}`);
    }
    flags[flag] = true;
  }
  return { kind: "basebackup", tenantId, timelineId, lsn, ...flags };
}

function parseFullbackup(rest: string): PageserverCommand {
  const params = rest.split(/\s+/).filter((word) => word !== "");
  if (params.length < 2 || params.length > 4) {
    throw new CommandParseError(`invalid number of parameters for fullbackup command: ${rest}`);
  }
  const tenantId = parseId("tenant", params[0]);
  const timelineId = parseId("timeline", params[1]);
  const lsn = params[2] === undefined ? null : parseLsnParam(params[2]);
  if (params[3] !== undefined) parseLsnParam(params[3]);
  return { kind: "fullbackup", tenantId, timelineId, lsn };
}

function parsePagestream(version: 2 | 3, rest: string): PageserverCommand {
  const params = rest.split(/\s+/).filter((word) => word !== "");
  if (params.length !== 2) {
    throw new CommandParseError(`invalid number of parameters for pagestream command: ${rest}`);
  }
  return {
    kind: "pagestream",
    version,
    tenantId: parseId("tenant", params[0]),
    timelineId: parseId("timeline", params[1]),
  };
}

function parseLease(command: string, rest: string): PageserverCommand {
  const space = rest.indexOf(" ");
  if (space === -1 || rest.slice(0, space).toLowerCase() !== "lsn") {
    throw new CommandParseError(`invalid lease command: ${command}`);
  }
  const other = rest.slice(space + 1);
  const params = other.split(/\s+/).filter((word) => word !== "");
  if (params.length !== 3) {
    throw new CommandParseError(`invalid number of parameters for lease lsn command: ${other}`);
  }
  const [tenantPart, shardPart] = params[0].split("-", 2);
  const tenantId = parseId("tenant", tenantPart);
  const shard = shardPart === undefined ? null : parseShardSuffix(params[0], shardPart);
  return {
    kind: "lease_lsn",
    tenantId,
    shard,
    timelineId: parseId("timeline", params[1]),
    lsn: parseLsnParam(params[2]),
  };
}

function parseShardSuffix(whole: string, suffix: string): { number: number; count: number } {
  if (!/^[0-9a-f]{4}$/i.test(suffix)) {
    throw new CommandParseError(`Failed to parse tenant id from ${whole}: invalid shard suffix`);
  }
  return { number: parseInt(suffix.slice(0, 2), 16), count: parseInt(suffix.slice(2), 16) };
}

function parseId(kind: "tenant" | "timeline", text: string): string {
  if (!ID_PATTERN.test(text)) {
    throw new CommandParseError(`Failed to parse ${kind} id from ${text}: not a 32-digit hex id`);
  }
  return text.toLowerCase();
}

function parseLsnParam(text: string): Lsn {
  try {
    return parseLsn(text);
  } catch {
    throw new CommandParseError(`Failed to parse lsn from ${text}`);
  }
}

/**
 * Starts a fake pageserver (libpq + HTTP, both on free loopback ports) serving the
 * timelines of `store`; no tenant is attached until {@link Pageserver.attach}.
 */
export function startPageserver(options: PageserverOptions): Pageserver {
  const tenants = new Map<string, "attached" | "secondary">();
  const counters = { misrouted: 0 };
  const ctx: ServeContext = { options, tenants, counters };
  const authenticate = options.jwtPublicKey ? jwtAuthenticator(options.jwtPublicKey) : undefined;
  const pg = startPgServer<NeonClaims>({
    authenticate,
    handleConnection: (conn) => {
      const session: Session = { conn, pinnedTenant: null };
      return (query) => handleQuery(ctx, session, query);
    },
  });
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => serveHttp(request, counters),
  );
  const close = async () => {
    await Promise.all([pg.close(), http.shutdown()]);
  };
  return {
    id: options.id,
    port: pg.port,
    libpqUrl: `postgresql://no_user@127.0.0.1:${pg.port}`,
    httpUrl: `http://127.0.0.1:${http.addr.port}`,
    attach: (tenantId) => void tenants.set(tenantId.toLowerCase(), "attached"),
    detach: (tenantId) => void tenants.delete(tenantId.toLowerCase()),
    setSecondary: (tenantId) => void tenants.set(tenantId.toLowerCase(), "secondary"),
    get misroutedRequests() {
      return counters.misrouted;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

interface ServeContext {
  options: PageserverOptions;
  tenants: Map<string, "attached" | "secondary">;
  counters: { misrouted: number };
}

interface Session {
  conn: PgConnection<NeonClaims>;
  /** Neon pins a connection to the first tenant it used. */
  pinnedTenant: string | null;
}

function serveHttp(request: Request, counters: { misrouted: number }): Response {
  const url = new URL(request.url);
  if (request.method === "GET" && url.pathname === "/metrics") {
    const body = [
      `# HELP ${MISROUTED_METRIC} Number of pagestream requests that were routed to the wrong pageserver`,
      `# TYPE ${MISROUTED_METRIC} counter`,
      `${MISROUTED_METRIC} ${counters.misrouted}`,
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
    tar = await ctx.options.store.basebackupTar(tenantId, timelineId, command.lsn ?? 0n, { gzip });
  } catch (error) {
    throw storeError(error);
  }
  const { conn } = session;
  conn.sendCopyOutResponse();
  await conn.flush();
  const reader = tar.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (let offset = 0; offset < value.length; offset += COPY_CHUNK) {
        await conn.sendCopyData(value.subarray(offset, offset + COPY_CHUNK));
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  conn.sendCopyDone();
  conn.sendCommandComplete("SELECT 1");
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
