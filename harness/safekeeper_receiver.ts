/**
 * @module
 * How a fake safekeeper keeps its WAL copy of one timeline current, in a loop
 * that runs while the safekeeper runs:
 *
 * 1. Reconcile with the timeline's terms: WAL of an older term past the start of
 *    the next term was never acknowledged and is cut off
 *    ({@linkcode TimelineStore.canonicalEnd}); the copy then belongs to the
 *    newest term.
 * 2. Catch up from a peer safekeeper that holds more of the history, over a
 *    replication connection to the peer (what Neon's safekeepers do after being
 *    down) — when no compute can give the WAL.
 * 3. Stream from the term's compute: a physical replication client with its own
 *    slot on the compute and the `application_name` the compute's
 *    `synchronous_standby_names` lists, replying to every message with its
 *    write / flush / apply positions (reference neon-04 §E.2).
 *
 * The loop waits for the store to change (a new term, a peer's progress)
 * instead of polling, and stops when its signal aborts.
 */

import { formatLsn, type Lsn } from "../src/api/lsn.ts";
import { safekeeperStandbyName } from "../src/api/safekeeper_names.ts";
import {
  connectReplication,
  PgServerError,
  type ReplicationConnection,
} from "./replication_client.ts";
import {
  decodeBackendCopyData,
  encodeStandbyStatusUpdate,
  pgEpochMicros,
} from "./replication_codec.ts";
import type { TimelineWal } from "./safekeeper_wal.ts";
import type { TimelineStore } from "./timeline_store.ts";

/** The application_name prefix a safekeeper uses when it reads from a peer. */
export const PEER_APPLICATION_PREFIX = "safekeeper_recovery_";

const DUPLICATE_OBJECT = "42710";
const MAX_BACKOFF_MS = 1_000;

/** What the loop works on. */
export interface ReceiverContext {
  safekeeperId: number;
  /** This safekeeper's `host:port`. */
  address: string;
  store: TimelineStore;
  tenantId: string;
  timelineId: string;
  wal: TimelineWal;
  signal: AbortSignal;
  log(message: string): void;
}

/** Runs the loop until `ctx.signal` aborts; never rejects. */
export async function runWalReceiver(ctx: ReceiverContext): Promise<void> {
  let backoffMs = 50;
  while (!ctx.signal.aborted) {
    try {
      const progressed = await step(ctx);
      if (progressed) {
        backoffMs = 50;
        continue;
      }
    } catch (error) {
      if (ctx.signal.aborted) return;
      ctx.log(`receiver: ${(error as Error).message}`);
    }
    await waitForChange(ctx, backoffMs);
    backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
  }
}

/** One round; true when WAL arrived (so the next round starts at once). */
async function step(ctx: ReceiverContext): Promise<boolean> {
  const { wal } = ctx;
  const latest = await reconcile(ctx);
  const peer = aheadPeer(ctx);
  const source = latest.source;
  const needsPeer = source === null || wal.state.flushLsn < latest.startLsn;
  if (peer !== null && needsPeer) {
    const before = wal.state.flushLsn;
    await recoverFromPeer(ctx, peer.address, peer.end);
    return wal.state.flushLsn > before;
  }
  if (source === null) return false;
  const applicationName = latest.names.get(ctx.safekeeperId) ?? safekeeperStandbyName(ctx.address);
  const before = wal.state.flushLsn;
  try {
    await streamFromCompute(ctx, latest.term, { ...source, applicationName });
  } catch (error) {
    // WAL the compute no longer has: a peer may have it.
    if (peer !== null) await recoverFromPeer(ctx, peer.address, peer.end);
    throw error;
  }
  return wal.state.flushLsn > before;
}

/** Cuts off WAL the timeline's history does not have and adopts the newest term. */
async function reconcile(ctx: ReceiverContext) {
  const { store, tenantId, timelineId, wal } = ctx;
  const latest = store.terms(tenantId, timelineId).at(-1)!;
  const end = store.canonicalEnd(tenantId, timelineId, wal.state);
  if (end < wal.state.flushLsn) {
    ctx.log(`truncating WAL from ${formatLsn(wal.state.flushLsn)} to ${formatLsn(end)}`);
  }
  await wal.truncate(end);
  await wal.setTerm(latest.term);
  return latest;
}

/**
 * The running peer holding the most of the timeline's history beyond ours, if
 * any. A stopped or killed peer keeps its last reported state in the store but
 * cannot be read: choosing it would retry a dead address while a live peer
 * holds the same WAL.
 */
function aheadPeer(ctx: ReceiverContext): { address: string; end: Lsn } | null {
  const { store, tenantId, timelineId, wal } = ctx;
  const states = store.walStates(tenantId, timelineId);
  let best: { address: string; end: Lsn } | null = null;
  for (const sk of store.safekeepers()) {
    if (sk.id === ctx.safekeeperId || !sk.running) continue;
    const state = states.get(sk.id);
    if (state === undefined) continue;
    const end = store.canonicalEnd(tenantId, timelineId, state);
    if (end > wal.state.flushLsn && (best === null || end > best.end)) {
      best = { address: sk.address, end };
    }
  }
  return best;
}

async function recoverFromPeer(ctx: ReceiverContext, address: string, target: Lsn): Promise<void> {
  const [host, port] = splitAddress(address);
  const conn = await connectReplication({
    host,
    port,
    user: "safekeeper",
    applicationName: `${PEER_APPLICATION_PREFIX}${ctx.safekeeperId}`,
    options: `-c timeline_id=${ctx.timelineId} tenant_id=${ctx.tenantId}`,
    connectTimeoutMs: 2_000,
  });
  const stop = () => conn.close();
  ctx.signal.addEventListener("abort", stop, { once: true });
  try {
    await ctx.wal.truncate(ctx.wal.state.flushLsn);
    const from = ctx.wal.state.flushLsn;
    await conn.startCopyBoth(`START_REPLICATION PHYSICAL ${formatLsn(from)} TIMELINE 1`);
    while (ctx.wal.state.flushLsn < target) {
      const payload = await conn.readCopyData();
      if (payload === null) break;
      const message = decodeBackendCopyData(payload);
      if (message.tag === "w" && message.data.length > 0) {
        await ctx.wal.append(message.dataStart, message.data);
      }
    }
    ctx.log(
      `caught up from peer ${address}: ${formatLsn(from)} → ${formatLsn(ctx.wal.state.flushLsn)}`,
    );
  } finally {
    ctx.signal.removeEventListener("abort", stop);
    conn.close();
  }
}

interface ComputeSource {
  host: string;
  port: number;
  user: string;
  applicationName: string;
}

/**
 * Streams from the compute until the connection ends, the term changes or the
 * signal aborts. Throws when the compute cannot be reached or refuses.
 */
async function streamFromCompute(
  ctx: ReceiverContext,
  term: number,
  source: ComputeSource,
): Promise<void> {
  const { store, tenantId, timelineId, wal } = ctx;
  const conn = await connectReplication({
    host: source.host,
    port: source.port,
    user: source.user,
    applicationName: source.applicationName,
    connectTimeoutMs: 2_000,
  });
  const watch = new AbortController();
  const stop = () => conn.close();
  ctx.signal.addEventListener("abort", stop, { once: true });
  watch.signal.addEventListener("abort", stop, { once: true });
  void (async () => {
    while (!watch.signal.aborted) {
      await store.changed(tenantId, timelineId, watch.signal);
      if (store.terms(tenantId, timelineId).at(-1)!.term !== term) watch.abort();
    }
  })();
  try {
    const slot = `"${source.applicationName}"`;
    try {
      await conn.query(`CREATE_REPLICATION_SLOT ${slot} PHYSICAL RESERVE_WAL`);
    } catch (error) {
      if (!(error instanceof PgServerError && error.code === DUPLICATE_OBJECT)) throw error;
    }
    await wal.truncate(wal.state.flushLsn);
    const from = wal.state.flushLsn;
    await conn.startCopyBoth(
      `START_REPLICATION SLOT ${slot} PHYSICAL ${formatLsn(from)} TIMELINE 1`,
    );
    ctx.log(`streaming from ${source.host}:${source.port} at ${formatLsn(from)} (term ${term})`);
    await reply(conn, wal);
    for (;;) {
      const payload = await conn.readCopyData();
      if (payload === null) return;
      const message = decodeBackendCopyData(payload);
      if (message.tag === "w") {
        if (message.data.length > 0) await wal.append(message.dataStart, message.data);
        await reply(conn, wal);
      } else if (message.replyRequested) {
        await reply(conn, wal);
      }
    }
  } finally {
    watch.abort();
    ctx.signal.removeEventListener("abort", stop);
    conn.close();
  }
}

/** A standby status update: written up to what arrived, flushed and applied to the flush LSN. */
function reply(conn: ReplicationConnection, wal: TimelineWal): Promise<void> {
  if (conn.closed) return Promise.resolve();
  return conn.sendCopyData(encodeStandbyStatusUpdate({
    write: wal.receivedLsn,
    flush: wal.state.flushLsn,
    apply: wal.state.flushLsn,
    clientTime: pgEpochMicros(),
    replyRequested: false,
  })).catch(() => {});
}

async function waitForChange(ctx: ReceiverContext, timeoutMs: number): Promise<void> {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  const both = AbortSignal.any([ctx.signal, timeout.signal]);
  try {
    await ctx.store.changed(ctx.tenantId, ctx.timelineId, both);
  } finally {
    clearTimeout(timer);
  }
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(":");
  return [address.slice(0, colon).replace(/^\[|\]$/g, ""), Number(address.slice(colon + 1))];
}
