/**
 * @module
 * One LSN lease from one pageserver, as compute_ctl asks for it (reference
 * neon-01 §4.3, neon-04 §A.6): a libpq connection with the storage token as
 * password, the simple query `lease lsn <tenant_shard_id> <timeline_id> <lsn>`,
 * and one row whose `valid_until` is the expiry in milliseconds since the Unix
 * epoch, or SQL NULL when the pageserver refuses (the LSN is behind its GC cutoff).
 */

import { Socket } from "node:net";
import pg from "pg";
import { formatLsn, type Lsn } from "../api/lsn.ts";
import { libpqClientConfig } from "./basebackup.ts";
import { closeClient } from "./_pg_client.ts";

/** How long one lease request (connect + query) may take by default. */
export const LEASE_TIMEOUT_MS = 10_000;

/** What to lease, and how to ask. */
export interface LeaseLsnRequest {
  /** The tenant, with the shard suffix when sharded: see {@link tenantShardId}. */
  tenantShardId: string;
  timelineId: string;
  lsn: Lsn;
  /** Storage JWT, sent as the libpq password (replaces any in the URL). */
  authToken?: string;
  /** Bound on connect + query; {@link LEASE_TIMEOUT_MS} by default. */
  timeoutMs?: number;
  /** Aborts the request. */
  signal?: AbortSignal;
}

/** A pageserver did not answer a lease request within the time allowed. */
export class LeaseTimeoutError extends Error {
  constructor(libpqUrl: string, timeoutMs: number) {
    super(`pageserver ${libpqUrl} did not answer lease lsn within ${timeoutMs} ms`);
    this.name = "LeaseTimeoutError";
  }
}

/**
 * The tenant shard id as the pageserver spells it: the bare tenant id when
 * `shardCount` is 0 (an unsharded tenant), else `<tenant>-<NN><CC>`, shard
 * number and count as two lower-case hex digits each.
 */
export function tenantShardId(tenantId: string, shardNumber: number, shardCount: number): string {
  if (shardCount === 0) return tenantId;
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  return `${tenantId}-${hex(shardNumber)}${hex(shardCount)}`;
}

/**
 * The exact query compute_ctl sends, trailing space included:
 * `lease lsn <tenant_shard_id> <timeline_id> <lsn> `.
 */
export function leaseLsnCommand(
  request: Pick<LeaseLsnRequest, "tenantShardId" | "timelineId" | "lsn">,
): string {
  return `lease lsn ${request.tenantShardId} ${request.timelineId} ${formatLsn(request.lsn)} `;
}

/**
 * Asks the pageserver at `libpqUrl` for a lease on `request.lsn`. Returns its
 * expiry, or `null` when the pageserver refused it. Rejects with the server's
 * message on an ErrorResponse, on connection errors, on a malformed reply, on
 * abort, and after `timeoutMs` ({@link LeaseTimeoutError}).
 */
export async function leaseLsn(libpqUrl: string, request: LeaseLsnRequest): Promise<Date | null> {
  const timeoutMs = request.timeoutMs ?? LEASE_TIMEOUT_MS;
  const { signal } = request;
  signal?.throwIfAborted();
  const socket = new Socket();
  const client = new pg.Client({
    ...libpqClientConfig(libpqUrl, { password: request.authToken, applicationName: "compute_ctl" }),
    stream: () => socket,
  });
  client.on("error", () => {}); // errors surface through connect() and query()
  const { promise: stopped, reject: stop } = Promise.withResolvers<never>();
  const timer = setTimeout(() => stop(new LeaseTimeoutError(libpqUrl, timeoutMs)), timeoutMs);
  const onAbort = () => stop(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const work = (async () => {
    await client.connect();
    const result = await client.query<Record<string, unknown>>(leaseLsnCommand(request));
    return validUntil(libpqUrl, result.rows);
  })();
  work.catch(() => {});
  let answered = false;
  try {
    const expiry = await Promise.race([work, stopped]);
    answered = true;
    return expiry;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    await closeClient(client, socket, { graceful: answered });
  }
}

function validUntil(libpqUrl: string, rows: readonly Record<string, unknown>[]): Date | null {
  if (rows.length === 0) throw new Error(`pageserver ${libpqUrl}: empty lease lsn response`);
  const value = rows[0].valid_until;
  if (value === null) return null;
  if (typeof value !== "string" || !/^\d+$/.test(value)) {
    throw new Error(
      `pageserver ${libpqUrl}: valid_until is not milliseconds: ${JSON.stringify(value)}`,
    );
  }
  return new Date(Number(value));
}
