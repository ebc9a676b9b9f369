/**
 * @module
 * The walsender side of a fake safekeeper: `START_REPLICATION` streams the WAL
 * it holds as PostgreSQL's walsender does (CopyBoth, XLogData and keepalive
 * messages), to a replica compute up to the timeline's commit LSN, and to a peer
 * safekeeper catching up up to the end of the history it holds. The stream
 * follows new WAL until the client sends CopyDone or goes away.
 */

import { formatLsn, type Lsn, parseLsn } from "../src/api/lsn.ts";
import type { NeonClaims } from "./neon_auth.ts";
import { type PgConnection, PgError } from "./pgwire.ts";
import {
  decodeFrontendCopyData,
  encodeKeepalive,
  encodeXLogData,
  pgEpochMicros,
} from "./replication_codec.ts";
import { readWalRange, type TimelineWal } from "./safekeeper_wal.ts";
import type { TimelineStore } from "./timeline_store.ts";

/** The most WAL one XLogData message carries (PostgreSQL's MAX_SEND_SIZE). */
const MAX_SEND_BYTES = 128 * 1024;
const KEEPALIVE_MS = 1_000;

/** What {@linkcode sendWal} streams from. */
export interface SendWalContext {
  conn: PgConnection<NeonClaims>;
  /** The `START_REPLICATION …` text. */
  command: string;
  store: TimelineStore;
  tenantId: string;
  timelineId: string;
  dir: string;
  wal: TimelineWal;
  /** A peer safekeeper gets everything held; a replica only what is committed. */
  toPeer: boolean;
  /** Aborts when the safekeeper stops. */
  signal: AbortSignal;
}

/** Parses `START_REPLICATION [SLOT s] [PHYSICAL] X/Y [TIMELINE n]`; returns the start LSN. */
export function parseStartReplication(command: string): { startLsn: Lsn; timeline: number } {
  const match =
    /^START_REPLICATION\s+(?:SLOT\s+("[^"]*"|\S+)\s+)?(?:PHYSICAL\s+)?([0-9A-Fa-f]+\/[0-9A-Fa-f]+)(?:\s+TIMELINE\s+(\d+))?\s*;?$/i
      .exec(command.trim());
  if (!match) throw new PgError(`syntax error in ${command}`, { code: "42601" });
  return { startLsn: parseLsn(match[2]), timeline: match[3] === undefined ? 1 : Number(match[3]) };
}

/** Streams WAL until the client ends the stream; see the module doc. */
export async function sendWal(ctx: SendWalContext): Promise<void> {
  const { conn, store, tenantId, timelineId, wal } = ctx;
  const { startLsn, timeline } = parseStartReplication(ctx.command);
  if (timeline !== 1) {
    throw new PgError(`requested timeline ${timeline} is not in this server's history`);
  }
  const servableEnd = () => {
    const end = store.canonicalEnd(tenantId, timelineId, wal.state);
    if (ctx.toPeer) return end;
    const commit = store.commitLsn(tenantId, timelineId);
    return commit < end ? commit : end;
  };
  if (startLsn < wal.state.startLsn) {
    throw new PgError(
      `requested WAL segment for ${formatLsn(startLsn)} has already been removed`,
      { code: "58P01" },
    );
  }
  if (startLsn > servableEnd()) {
    throw new PgError(
      `requested starting point ${formatLsn(startLsn)} is ahead of the WAL flush position ` +
        `of this server ${formatLsn(servableEnd())}`,
    );
  }
  conn.sendCopyBothResponse();
  await conn.flush();

  const done = new AbortController();
  const stop = AbortSignal.any([done.signal, ctx.signal]);
  const reading = (async () => {
    try {
      for (;;) {
        const message = await conn.readMessage();
        if (message === null || message.type === "c" || message.type === "X") return;
        if (message.type === "d") decodeFrontendCopyData(message.body); // status / feedback
      }
    } finally {
      done.abort();
    }
  })();

  let position = startLsn;
  try {
    while (!stop.aborted) {
      const end = servableEnd();
      if (position < end) {
        const upTo = end - position > MAX_SEND_BYTES ? position + BigInt(MAX_SEND_BYTES) : end;
        const bytes = await readWalRange(ctx.dir, position, upTo);
        await conn.sendCopyData(encodeXLogData({
          dataStart: position,
          walEnd: end,
          sendTime: pgEpochMicros(),
          data: bytes,
        }));
        position = upTo;
        continue;
      }
      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(), KEEPALIVE_MS);
      try {
        await store.changed(tenantId, timelineId, AbortSignal.any([stop, timeout.signal]));
      } finally {
        clearTimeout(timer);
      }
      if (timeout.signal.aborted && !stop.aborted) {
        await conn.sendCopyData(encodeKeepalive({
          walEnd: end,
          sendTime: pgEpochMicros(),
          replyRequested: false,
        }));
      }
    }
  } catch (error) {
    if (!done.signal.aborted) throw error;
  } finally {
    done.abort();
  }
  await reading.catch(() => {});
  if (ctx.signal.aborted) throw new PgError("safekeeper is shutting down", { fatal: true });
  conn.sendCopyDone();
  conn.sendCommandComplete("START_REPLICATION");
}
