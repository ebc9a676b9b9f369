/**
 * @module
 * A fake Neon safekeeper's libpq side, as far as compute_ctl uses it (reference
 * neon-04 §B.1, B.2, B.5): the startup `options` carry `timeline_id=` and
 * `tenant_id=`, and `TIMELINE_STATUS` answers one row (`flush_lsn`, `commit_lsn`)
 * when the timeline exists. Both LSNs are the timeline's last LSN in the store
 * unless a test overrides them (to make safekeepers disagree, or forget the
 * timeline) with {@link Safekeeper.setStatusOverride}.
 */

import type { JWK } from "jose";
import { formatLsn, type Lsn } from "../src/api/lsn.ts";
import {
  checkTenantPermission,
  jwtAuthenticator,
  type NeonClaims,
  type PgConnection,
  PgError,
  startPgServer,
  startupOptionPairs,
} from "./pgwire.ts";
import type { TimelineStore } from "./timeline_store.ts";

const ID_PATTERN = /^[0-9a-f]{32}$/i;

/** Options of {@link startSafekeeper}. */
export interface SafekeeperOptions {
  id: number;
  store: TimelineStore;
  /** Ed25519 public key; when set, logins must present a JWT as password. */
  jwtPublicKey?: CryptoKey | JWK;
}

/** The LSNs a safekeeper reports for a timeline. */
export interface TimelineStatusOverride {
  flushLsn: Lsn;
  commitLsn: Lsn;
}

/** A running fake safekeeper. */
export interface Safekeeper extends AsyncDisposable {
  readonly id: number;
  readonly port: number;
  /** `127.0.0.1:PORT`, as an entry of the spec's `safekeeper_connstrings`. */
  readonly address: string;
  /**
   * Overrides what `TIMELINE_STATUS` reports for a timeline: LSNs to report them,
   * `null` to report the timeline as unknown (no row), `undefined` to go back to
   * the store's last LSN.
   */
  setStatusOverride(
    tenantId: string,
    timelineId: string,
    status: TimelineStatusOverride | null | undefined,
  ): void;
  close(): Promise<void>;
}

/** The tenant and timeline a connection's startup options named. */
interface ConnectionTimeline {
  tenantId?: string;
  timelineId?: string;
}

/**
 * Starts a fake safekeeper on a free loopback port serving the timelines of
 * `store`.
 */
export function startSafekeeper(options: SafekeeperOptions): Safekeeper {
  const overrides = new Map<string, TimelineStatusOverride | null>();
  const authenticate = options.jwtPublicKey ? jwtAuthenticator(options.jwtPublicKey) : undefined;
  const pg = startPgServer<NeonClaims>({
    authenticate,
    handleConnection: (conn) => {
      const timeline = timelineFromStartup(conn.startup.options ?? "");
      return (query) => handleQuery(conn, timeline, query, options.store, overrides);
    },
  });
  return {
    id: options.id,
    port: pg.port,
    address: `127.0.0.1:${pg.port}`,
    setStatusOverride: (tenantId, timelineId, status) => {
      const key = `${tenantId.toLowerCase()}/${timelineId.toLowerCase()}`;
      if (status === undefined) overrides.delete(key);
      else overrides.set(key, status);
    },
    close: () => pg.close(),
    [Symbol.asyncDispose]: () => pg.close(),
  };
}

/** Reads `tenant_id`/`ztenantid` and `timeline_id`/`ztimelineid` from startup options. */
function timelineFromStartup(options: string): ConnectionTimeline {
  const pairs = startupOptionPairs(options);
  const timeline: ConnectionTimeline = {};
  for (const [key, value] of pairs) {
    if (key === "tenant_id" || key === "ztenantid") timeline.tenantId = parseId(key, value);
    if (key === "timeline_id" || key === "ztimelineid") timeline.timelineId = parseId(key, value);
  }
  return timeline;
}

function parseId(key: string, value: string): string {
  if (!ID_PATTERN.test(value)) {
    throw new PgError(`failed to parse ${key}=${value}`, { fatal: true });
  }
  return value.toLowerCase();
}

function handleQuery(
  conn: PgConnection<NeonClaims>,
  timeline: ConnectionTimeline,
  query: string,
  store: TimelineStore,
  overrides: Map<string, TimelineStatusOverride | null>,
): Promise<void> {
  const text = query.trim();
  if (/^set\s/i.test(text)) {
    conn.sendCommandComplete("SELECT 1");
  } else if (/^TIMELINE_STATUS\b/.test(text)) {
    sendTimelineStatus(conn, timeline, store, overrides);
  } else {
    throw new PgError(`unsupported query: ${text}`);
  }
  return Promise.resolve();
}

function sendTimelineStatus(
  conn: PgConnection<NeonClaims>,
  timeline: ConnectionTimeline,
  store: TimelineStore,
  overrides: Map<string, TimelineStatusOverride | null>,
): void {
  const { tenantId, timelineId } = timeline;
  if (tenantId === undefined) throw new PgError("tenantid is required");
  if (timelineId === undefined) throw new PgError("timelineid is required");
  checkTenantPermission(conn.auth, tenantId, "safekeeperdata");
  const key = `${tenantId}/${timelineId}`;
  const status = overrides.has(key)
    ? overrides.get(key) ?? null
    : storeStatus(store, tenantId, timelineId);
  conn.sendRowDescription(["flush_lsn", "commit_lsn"]);
  if (status !== null) conn.sendDataRow([formatLsn(status.flushLsn), formatLsn(status.commitLsn)]);
  conn.sendCommandComplete("TIMELINE_STATUS");
}

function storeStatus(
  store: TimelineStore,
  tenantId: string,
  timelineId: string,
): TimelineStatusOverride | null {
  if (!store.hasTimeline(tenantId, timelineId)) return null;
  const lsn = store.lastLsn(tenantId, timelineId);
  return { flushLsn: lsn, commitLsn: lsn };
}
