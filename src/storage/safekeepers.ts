/**
 * @module
 * compute_ctl's fast check whether the safekeepers are already in sync
 * (reference neon-01 §2.7, neon-04 §B.1): ask every safekeeper `TIMELINE_STATUS`
 * concurrently, each attempt bounded by 100 ms, stop once a quorum has answered or
 * a quorum has failed, and call the timeline synced iff the quorum's answers all
 * know the timeline and agree on one LSN for both `flush_lsn` and `commit_lsn`
 * ({@link checkSafekeepersQuorum} also says why, when they are not).
 * {@link withSafekeeperClient} is the libpq session this check and the vanilla
 * WAL-source announcement (`wal_source.ts`) share.
 */

import { Socket } from "node:net";
import pg from "pg";
import { closeClient } from "./_pg_client.ts";
import { formatLsn, type Lsn, parseLsn } from "../api/lsn.ts";
import { vanillaQuorumSize } from "../api/safekeeper_names.ts";
import { errorMessage } from "../log.ts";

/** What one safekeeper reports for a timeline. */
export interface TimelineStatus {
  flushLsn: Lsn;
  commitLsn: Lsn;
}

/** How to reach a safekeeper for one timeline, as compute_ctl does. */
export interface SafekeeperConnectOptions {
  tenantId: string;
  timelineId: string;
  /** Storage JWT, sent as the libpq password. */
  authToken?: string;
  /** Aborts the request(s). */
  signal?: AbortSignal;
}

/** Options of {@link timelineStatus} and {@link checkSafekeepersSynced}. */
export interface TimelineStatusOptions extends SafekeeperConnectOptions {
  /** Bound on one safekeeper's connect + query; 100 ms by default. */
  timeoutMs?: number;
}

/** A safekeeper did not answer within the time allowed. */
export class SafekeeperTimeoutError extends Error {
  constructor(address: string, timeoutMs: number, command = "TIMELINE_STATUS") {
    super(`safekeeper ${address} did not answer ${command} within ${timeoutMs} ms`);
    this.name = "SafekeeperTimeoutError";
  }
}

/** ⌊n/2⌋ + 1: how many safekeepers make a quorum (the same majority in vanilla mode). */
export function quorumSize(safekeeperCount: number): number {
  return vanillaQuorumSize(safekeeperCount);
}

/**
 * The quorum rule of compute_ctl, as a pure function of the replies that arrived
 * (`null` = the safekeeper does not know the timeline) and the number of
 * safekeepers: synced iff at least a quorum replied, every reply knows the
 * timeline, all `commit_lsn` are equal, all `flush_lsn` are equal and commit ==
 * flush. Returns that LSN, or `null` for "not synced".
 */
export function decideSynced(
  replies: readonly (TimelineStatus | null)[],
  safekeeperCount: number,
): Lsn | null {
  if (replies.length < quorumSize(safekeeperCount)) return null;
  let lsn: Lsn | null = null;
  for (const reply of replies) {
    if (reply === null || reply.flushLsn !== reply.commitLsn) return null;
    if (lsn === null) lsn = reply.commitLsn;
    else if (reply.commitLsn !== lsn) return null;
  }
  return lsn;
}

/** One safekeeper's reply to `TIMELINE_STATUS` (`null`: it does not know the timeline). */
export interface SafekeeperReply {
  address: string;
  status: TimelineStatus | null;
}

/** One safekeeper that gave no reply, and why (a timeout, a refused connection, an error). */
export interface SafekeeperFailure {
  address: string;
  error: string;
}

/**
 * Why {@link decideSynced} found the replies not synced, in words naming the
 * safekeepers: too few answered (with each failure), one does not know the
 * timeline, one's commit LSN lags its flush LSN, or they disagree.
 */
export function explainNotSynced(
  replies: readonly SafekeeperReply[],
  failures: readonly SafekeeperFailure[],
  safekeeperCount: number,
): string {
  const quorum = quorumSize(safekeeperCount);
  if (replies.length < quorum) {
    const why = failures.map(({ address, error }) =>
      error.includes(address) ? error : `safekeeper ${address}: ${error}`
    );
    return `only ${replies.length} of ${safekeeperCount} safekeepers answered TIMELINE_STATUS ` +
      `(a quorum is ${quorum})${why.length > 0 ? `: ${why.join("; ")}` : ""}`;
  }
  const unknown = replies.find((reply) => reply.status === null);
  if (unknown) return `safekeeper ${unknown.address} does not know the timeline`;
  const known = replies.map(({ address, status }) => ({ address, ...status! }));
  const lagging = known.find((reply) => reply.commitLsn !== reply.flushLsn);
  if (lagging) {
    return `safekeeper ${lagging.address} has commit_lsn ${formatLsn(lagging.commitLsn)} ` +
      `behind flush_lsn ${formatLsn(lagging.flushLsn)}`;
  }
  return "safekeepers disagree: " +
    known.map(({ address, flushLsn }) => `${address} at ${formatLsn(flushLsn)}`).join(", ");
}

/**
 * Splits `host:port` (or `[v6]:port`) as found in `safekeeper_connstrings`.
 * Throws on a missing or invalid port.
 */
export function parseSafekeeperAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new Error(`invalid safekeeper address ${JSON.stringify(address)}: need host:port`);
  }
  return { host: match[1] ?? match[2], port };
}

/**
 * Opens a libpq session to the safekeeper at `address` as compute_ctl does
 * (user and database `no_user`, options `-c timeline_id=<tl> tenant_id=<t>`,
 * password = auth token), runs `fn` on it, and always closes it. Rejects on
 * connection and server errors, with the signal's reason on abort, and with a
 * {@link SafekeeperTimeoutError} naming `command` once `timeoutMs` has passed.
 */
export async function withSafekeeperClient<T>(
  address: string,
  options: SafekeeperConnectOptions & { timeoutMs: number; command: string },
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const { host, port } = parseSafekeeperAddress(address);
  const { timeoutMs, signal } = options;
  signal?.throwIfAborted();
  const socket = new Socket();
  const client = new pg.Client({
    host,
    port,
    user: "no_user",
    database: "no_user",
    password: options.authToken,
    options: `-c timeline_id=${options.timelineId} tenant_id=${options.tenantId}`,
    ssl: false,
    connectionTimeoutMillis: 0,
    stream: () => socket,
  });
  client.on("error", () => {}); // errors surface through connect() and query()
  const { promise: stopped, reject: stop } = Promise.withResolvers<never>();
  const timer = setTimeout(
    () => stop(new SafekeeperTimeoutError(address, timeoutMs, options.command)),
    timeoutMs,
  );
  const onAbort = () => stop(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const work = (async () => {
    await client.connect();
    return await fn(client);
  })();
  work.catch(() => {});
  let answered = false;
  try {
    const result = await Promise.race([work, stopped]);
    answered = true;
    return result;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    await closeClient(client, socket, { graceful: answered });
  }
}

/**
 * Asks one safekeeper `TIMELINE_STATUS` (see {@link withSafekeeperClient}) and
 * returns its LSNs, or `null` when it does not know the timeline. Rejects on
 * connection errors, server errors, and after `timeoutMs`
 * ({@link SafekeeperTimeoutError}).
 */
export function timelineStatus(
  address: string,
  options: TimelineStatusOptions,
): Promise<TimelineStatus | null> {
  const command = "TIMELINE_STATUS";
  return withSafekeeperClient(
    address,
    { ...options, timeoutMs: options.timeoutMs ?? 100, command },
    async (client) => statusFromRows(address, (await client.query(command)).rows),
  );
}

function statusFromRows(
  address: string,
  rows: readonly Record<string, unknown>[],
): TimelineStatus | null {
  if (rows.length === 0) return null;
  const { flush_lsn: flush, commit_lsn: commit } = rows[0];
  if (typeof flush !== "string" || typeof commit !== "string") {
    throw new Error(`safekeeper ${address}: TIMELINE_STATUS row lacks flush_lsn/commit_lsn`);
  }
  return { flushLsn: parseLsn(flush), commitLsn: parseLsn(commit) };
}

/** What the quorum check found: the LSN a quorum agrees on, or why there is none. */
export type QuorumCheck = { lsn: Lsn } | { lsn: null; reason: string };

/**
 * compute_ctl's fast path: queries every safekeeper concurrently and returns the
 * LSN they agree on (see {@link decideSynced}), or `null` when they are not
 * synced or too many fail. Decides as soon as a quorum has answered or a quorum
 * has failed, then aborts the requests still running. Never rejects.
 */
export async function checkSafekeepersSynced(
  addresses: readonly string[],
  options: TimelineStatusOptions,
): Promise<Lsn | null> {
  return (await checkSafekeepersQuorum(addresses, options)).lsn;
}

/** {@link checkSafekeepersSynced}, saying why (see {@link explainNotSynced}) when not synced. */
export async function checkSafekeepersQuorum(
  addresses: readonly string[],
  options: TimelineStatusOptions,
): Promise<QuorumCheck> {
  const quorum = quorumSize(addresses.length);
  const controller = new AbortController();
  const abortAll = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", abortAll, { once: true });
  const replies: SafekeeperReply[] = [];
  const failures: SafekeeperFailure[] = [];
  const { promise: decided, resolve: decide } = Promise.withResolvers<QuorumCheck>();
  const conclude = () => {
    const lsn = decideSynced(replies.map((reply) => reply.status), addresses.length);
    decide(
      lsn !== null
        ? { lsn }
        : { lsn: null, reason: explainNotSynced(replies, failures, addresses.length) },
    );
  };
  const requests = addresses.map((address) =>
    timelineStatus(address, { ...options, signal: controller.signal }).then(
      (status) => {
        replies.push({ address, status });
        if (replies.length >= quorum) conclude();
      },
      (error) => {
        failures.push({ address, error: errorMessage(error) });
        if (failures.length >= quorum) conclude();
      },
    )
  );
  void Promise.all(requests).then(conclude);
  try {
    return await decided;
  } finally {
    controller.abort();
    options.signal?.removeEventListener("abort", abortAll);
    await Promise.all(requests);
  }
}
