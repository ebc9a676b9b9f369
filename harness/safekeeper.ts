/**
 * @module
 * A fake Neon safekeeper that stores WAL (reference neon-04 §B, §E.2). Its libpq
 * side answers:
 *
 * - `TIMELINE_STATUS` (startup `options` carry `timeline_id=` / `tenant_id=`):
 *   one row, `flush_lsn` = the end of the history it holds, `commit_lsn` = that,
 *   capped by what a majority holds; no row for an unknown timeline.
 * - `START_WAL_PULL (host '…', port '…', user '…', application_name '…',
 *   start_lsn '…' [, instance_id '…'])`: the vanilla stand-in for the
 *   walproposer's `START_WAL_PUSH` that the manager sends when its Postgres has
 *   no `neon` extension. The safekeeper records the primary (a new term when it
 *   is a new compute) and streams from it (`safekeeper_receiver.ts`).
 * - `IDENTIFY_SYSTEM` and `START_REPLICATION [SLOT s] [PHYSICAL] X/Y [TIMELINE 1]`:
 *   it serves the WAL it holds to replicas (up to the commit LSN) and to peer
 *   safekeepers (up to its flush LSN), as Neon's do (`safekeeper_sender.ts`).
 *
 * {@linkcode Safekeeper.timelineStatusFault} makes it fall silent on
 * `TIMELINE_STATUS` on purpose (see `faults.ts`).
 *
 * Its WAL lives in `dir` and outlives {@linkcode Safekeeper.stop} and
 * {@linkcode Safekeeper.kill}; {@linkcode Safekeeper.start} brings it back on the
 * same port with what it had persisted.
 */

import { pathExists } from "./_fs.ts";
import type { JWK } from "jose";
import { join } from "node:path";
import { formatLsn, type Lsn, parseLsn } from "../src/api/lsn.ts";
import {
  type PgConnection,
  PgError,
  type PgServer,
  startPgServer,
  startupOptionPairs,
} from "./pgwire.ts";
import { checkTenantPermission, jwtAuthenticator, type NeonClaims } from "./neon_auth.ts";
import { runWalReceiver } from "./safekeeper_receiver.ts";
import { sendWal } from "./safekeeper_sender.ts";
import { openTimelineWal, type TimelineWal } from "./safekeeper_wal.ts";
import type { TimelineStore } from "./timeline_store.ts";
import { isHexId } from "../src/api/ids.ts";
import { type FaultSwitch, faultSwitch, type SafekeeperFault } from "./faults.ts";

/** Options of {@link startSafekeeper}. */
export interface SafekeeperOptions {
  id: number;
  store: TimelineStore;
  /** Where its WAL copies live; a private temporary directory when absent. */
  dir?: string;
  /** Ed25519 public key; when set, logins must present a JWT as password. */
  jwtPublicKey?: CryptoKey | JWK;
  /** Receives one line per notable event (streaming started, truncation, errors). */
  log?: (line: string) => void;
}

/** The LSNs a safekeeper reports for a timeline. */
export interface TimelineStatusOverride {
  flushLsn: Lsn;
  commitLsn: Lsn;
}

/** A fake safekeeper; running after {@link startSafekeeper}. */
export interface Safekeeper extends AsyncDisposable {
  readonly id: number;
  readonly port: number;
  /** `127.0.0.1:PORT`, as an entry of the spec's `safekeeper_connstrings`. */
  readonly address: string;
  readonly dir: string;
  readonly running: boolean;
  /**
   * Overrides what `TIMELINE_STATUS` reports for a timeline: LSNs to report them,
   * `null` to report the timeline as unknown (no row), `undefined` to go back to
   * the real state.
   */
  setStatusOverride(
    tenantId: string,
    timelineId: string,
    status: TimelineStatusOverride | null | undefined,
  ): void;
  /** Makes `TIMELINE_STATUS` go unanswered on purpose; kept across stop and start. */
  readonly timelineStatusFault: FaultSwitch<SafekeeperFault>;
  /** Connections held waiting by that fault right now (the client has not hung up yet). */
  readonly silentConnections: number;
  /** The persisted state of its copy of a timeline; null if it has none. */
  walState(tenantId: string, timelineId: string): { flushLsn: Lsn; term: number } | null;
  /** Graceful: stops accepting, ends every stream, waits for writes in progress. */
  stop(): Promise<void>;
  /** Drops every connection at once; anything not yet persisted is lost. */
  kill(): Promise<void>;
  /** Starts again on the same port with the WAL it had persisted. */
  start(): Promise<void>;
  /** Stops it (if running) and removes a directory it created. */
  close(): Promise<void>;
}

interface Life {
  controller: AbortController;
  server: PgServer;
  wals: Map<string, Promise<TimelineWal>>;
  receivers: Set<Promise<void>>;
}

/**
 * Starts a fake safekeeper on a free loopback port serving the timelines of
 * `store`, and registers it with the store.
 */
export async function startSafekeeper(options: SafekeeperOptions): Promise<Safekeeper> {
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "safekeeper-" });
  await Deno.mkdir(dir, { recursive: true });
  const { store, id } = options;
  const overrides = new Map<string, TimelineStatusOverride | null>();
  const authenticate = options.jwtPublicKey ? jwtAuthenticator(options.jwtPublicKey) : undefined;
  const log = options.log ?? (() => {});
  const walDir = (tenantId: string, timelineId: string) =>
    join(dir, tenantId.toLowerCase(), timelineId.toLowerCase());
  let port = 0;
  let life: Life | null = null;
  let closed = false;
  const timelineStatusFault = faultSwitch<SafekeeperFault>();
  const silent = { connections: 0 };

  const openWal = (current: Life, tenantId: string, timelineId: string) => {
    const key = `${tenantId}/${timelineId}`;
    let wal = current.wals.get(key);
    if (wal === undefined) {
      wal = (async () => {
        const opened = await openTimelineWal(walDir(tenantId, timelineId), {
          seed: () => store.walSeed(tenantId, timelineId),
          onChange: (state) => {
            if (!current.controller.signal.aborted) {
              store.reportWalState(id, tenantId, timelineId, state);
            }
          },
          signal: current.controller.signal,
        });
        store.reportWalState(id, tenantId, timelineId, opened.state);
        const receiver = runWalReceiver({
          safekeeperId: id,
          address: `127.0.0.1:${port}`,
          store,
          tenantId,
          timelineId,
          wal: opened,
          signal: current.controller.signal,
          log: (line) => log(`safekeeper ${id} ${tenantId}/${timelineId}: ${line}`),
        });
        current.receivers.add(receiver);
        return opened;
      })();
      current.wals.set(key, wal);
      wal.catch(() => current.wals.delete(key));
    }
    return wal;
  };

  const handleQuery = async (
    current: Life,
    conn: PgConnection<NeonClaims>,
    query: string,
  ): Promise<void> => {
    const text = query.trim();
    if (/^set\s/i.test(text)) {
      conn.sendCommandComplete("SELECT 1");
      return;
    }
    const { tenantId, timelineId } = timelineFromStartup(conn.startup.options ?? "");
    if (tenantId === undefined) throw new PgError("tenantid is required");
    if (timelineId === undefined) throw new PgError("timelineid is required");
    checkTenantPermission(conn.auth, tenantId, "safekeeperdata");
    const known = store.hasTimeline(tenantId, timelineId);
    if (/^TIMELINE_STATUS\b/i.test(text)) {
      if (timelineStatusFault.take() !== null) await holdSilently(conn, silent);
      const key = `${tenantId}/${timelineId}`;
      let status: TimelineStatusOverride | null;
      if (overrides.has(key)) {
        status = overrides.get(key) ?? null;
      } else if (!known) {
        status = null;
      } else {
        // No copy yet: it would begin at the timeline's initial LSN (seeding waits for WAL).
        const held = current.wals.has(`${tenantId}/${timelineId}`) ||
          await pathExists(walDir(tenantId, timelineId));
        const state = held
          ? (await openWal(current, tenantId, timelineId)).state
          : { term: 0, flushLsn: store.initialLsn(tenantId, timelineId) };
        const flushLsn = store.canonicalEnd(tenantId, timelineId, {
          ...state,
          startLsn: 0n,
          systemId: "",
        });
        const commit = store.commitLsn(tenantId, timelineId);
        status = { flushLsn, commitLsn: commit < flushLsn ? commit : flushLsn };
      }
      conn.sendRowDescription(["flush_lsn", "commit_lsn"]);
      if (status !== null) {
        conn.sendDataRow([formatLsn(status.flushLsn), formatLsn(status.commitLsn)]);
      }
      conn.sendCommandComplete("TIMELINE_STATUS");
      return;
    }
    if (!known) throw new PgError(`timeline ${tenantId}/${timelineId} not found`);
    const wal = await openWal(current, tenantId, timelineId);
    if (/^START_WAL_PULL\b/i.test(text)) {
      const pull = parseWalPull(text);
      const term = store.announcePrimary(tenantId, timelineId, pull, id, pull.applicationName);
      log(
        `safekeeper ${id} ${tenantId}/${timelineId}: primary ${pull.host}:${pull.port} ` +
          `from ${formatLsn(pull.startLsn)} (term ${term.term})`,
      );
      conn.sendCommandComplete("START_WAL_PULL");
    } else if (/^IDENTIFY_SYSTEM\b/i.test(text)) {
      conn.sendRowDescription(["systemid", "timeline", "xlogpos", "dbname"]);
      conn.sendDataRow([wal.state.systemId, "1", formatLsn(wal.state.flushLsn), null]);
      conn.sendCommandComplete("IDENTIFY_SYSTEM");
    } else if (/^START_REPLICATION\b/i.test(text)) {
      await sendWal({
        conn,
        command: text,
        store,
        tenantId,
        timelineId,
        dir: walDir(tenantId, timelineId),
        wal,
        toPeer: (conn.startup.application_name ?? "").startsWith("safekeeper"),
        signal: current.controller.signal,
      });
    } else {
      throw new PgError(`unsupported query: ${text}`);
    }
  };

  const launch = async () => {
    const controller = new AbortController();
    const current: Life = {
      controller,
      server: undefined as unknown as PgServer,
      wals: new Map(),
      receivers: new Set(),
    };
    current.server = startPgServer<NeonClaims>({
      port,
      authenticate,
      handleConnection: (conn) => (query) => handleQuery(current, conn, query),
    });
    port = current.server.port;
    life = current;
    // Resume every timeline it holds WAL of.
    for (const { tenantId, timelineId } of store.timelineIds()) {
      if (await pathExists(walDir(tenantId, timelineId))) {
        await openWal(current, tenantId, timelineId);
      }
    }
  };

  const halt = async (graceful: boolean) => {
    const current = life;
    if (current === null) return;
    life = null;
    // Aborting first stops every write: a killed safekeeper persists nothing more.
    current.controller.abort();
    await current.server.close();
    if (graceful) await Promise.allSettled([...current.receivers]);
  };

  await launch();
  store.registerSafekeeper({
    id,
    get address() {
      return `127.0.0.1:${port}`;
    },
    get running() {
      return life !== null;
    },
    walDir,
    pruneWal: async (tenantId, timelineId, lsn) => {
      const wal = await life?.wals.get(`${tenantId}/${timelineId}`);
      if (wal === undefined) return false;
      await wal.removeSegmentsBefore(lsn);
      return true;
    },
  });

  const close = async () => {
    if (closed) return;
    closed = true;
    await halt(true);
    if (ownsDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  return {
    id,
    get port() {
      return port;
    },
    get address() {
      return `127.0.0.1:${port}`;
    },
    dir,
    get running() {
      return life !== null;
    },
    timelineStatusFault,
    get silentConnections() {
      return silent.connections;
    },
    setStatusOverride: (tenantId, timelineId, status) => {
      const key = `${tenantId.toLowerCase()}/${timelineId.toLowerCase()}`;
      if (status === undefined) overrides.delete(key);
      else overrides.set(key, status);
    },
    walState: (tenantId, timelineId) => {
      const state = store.walStates(tenantId, timelineId).get(id);
      return state === undefined ? null : { flushLsn: state.flushLsn, term: state.term };
    },
    stop: () => halt(true),
    kill: () => halt(false),
    start: async () => {
      if (closed) throw new Error(`safekeeper ${id} is closed`);
      if (life === null) await launch();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Answers nothing until the client hangs up (or says Terminate), then closes
 * the connection: a safekeeper that accepted a query and never replied.
 */
async function holdSilently<A>(
  conn: PgConnection<A>,
  silent: { connections: number },
): Promise<never> {
  silent.connections += 1;
  try {
    for (;;) {
      const message = await conn.readMessage();
      if (message === null || message.type === "X") break;
    }
  } finally {
    silent.connections -= 1;
  }
  throw new PgError("the client hung up on an unanswered query", { fatal: true });
}

/** The parameters of a `START_WAL_PULL (key 'value', …)` command. */
export interface WalPull {
  host: string;
  port: number;
  user: string;
  applicationName: string;
  startLsn: Lsn;
  instanceId?: string;
}

/** Parses `START_WAL_PULL (…)`; throws a {@link PgError} naming what is wrong. */
export function parseWalPull(text: string): WalPull {
  const match = /^START_WAL_PULL\s*\((.*)\)\s*;?\s*$/is.exec(text);
  if (!match) throw new PgError(`cannot parse START_WAL_PULL: ${text}`);
  const values = new Map<string, string>();
  const pattern = /\s*([a-z_]+)\s+'((?:[^']|'')*)'\s*(,|$)/iy;
  let position = 0;
  const body = match[1];
  while (position < body.length) {
    pattern.lastIndex = position;
    const option = pattern.exec(body);
    if (!option) throw new PgError(`cannot parse START_WAL_PULL options: ${body}`);
    values.set(option[1].toLowerCase(), option[2].replaceAll("''", "'"));
    position = pattern.lastIndex;
  }
  const required = (key: string) => {
    const value = values.get(key);
    if (value === undefined || value === "") throw new PgError(`START_WAL_PULL needs ${key}`);
    return value;
  };
  const port = Number(required("port"));
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new PgError(`START_WAL_PULL: invalid port ${values.get("port")}`);
  }
  let startLsn: Lsn;
  try {
    startLsn = parseLsn(required("start_lsn"));
  } catch {
    throw new PgError(`START_WAL_PULL: invalid start_lsn ${values.get("start_lsn")}`);
  }
  return {
    host: required("host"),
    port,
    user: required("user"),
    applicationName: required("application_name"),
    startLsn,
    instanceId: values.get("instance_id"),
  };
}

/** Reads `tenant_id`/`ztenantid` and `timeline_id`/`ztimelineid` from startup options. */
function timelineFromStartup(options: string): { tenantId?: string; timelineId?: string } {
  const timeline: { tenantId?: string; timelineId?: string } = {};
  for (const [key, value] of startupOptionPairs(options)) {
    if (key === "tenant_id" || key === "ztenantid") timeline.tenantId = parseId(key, value);
    if (key === "timeline_id" || key === "ztimelineid") timeline.timelineId = parseId(key, value);
  }
  return timeline;
}

function parseId(key: string, value: string): string {
  if (!isHexId(value)) {
    throw new PgError(`failed to parse ${key}=${value}`, { fatal: true });
  }
  return value.toLowerCase();
}
