/**
 * @module
 * Vanilla storage mode's stand-in for the walproposer's `START_WAL_PUSH`: with
 * no `neon` extension in the compute's Postgres, the safekeepers fetch the WAL
 * themselves, as physical streaming-replication clients. The manager tells each
 * safekeeper where that Postgres is, which `application_name` to stream under
 * (the name `synchronous_standby_names` lists) and the LSN the compute's WAL
 * begins at, with the simple query `START_WAL_PULL (…)`, which is not a Neon
 * command. A start needs a quorum of safekeepers to accept, or no commit
 * would ever return.
 */

import { sleep } from "../_async.ts";
import { errorMessage } from "../log.ts";
import { formatLsn, type Lsn } from "../api/lsn.ts";
import { safekeeperStandbyName, vanillaQuorumSize } from "../api/safekeeper_names.ts";
import { type SafekeeperConnectOptions, withSafekeeperClient } from "./safekeepers.ts";

/** The command word, and the tag of the safekeeper's CommandComplete. */
export const WAL_PULL_COMMAND = "START_WAL_PULL";
/** Bound on one safekeeper's connect + `START_WAL_PULL`. */
export const DEFAULT_ANNOUNCE_TIMEOUT_MS = 1_000;
/** How long {@link announceWalSourceToQuorum} keeps retrying before giving up. */
export const DEFAULT_ANNOUNCE_DEADLINE_MS = 10_000;
/** First retry delay after a failed attempt; each next one is 1.5 times longer. */
export const DEFAULT_RETRY_BASE_DELAY_MS = 200;
const MAX_RETRY_DELAY_MS = 2_000;

/** Where the safekeepers connect to stream WAL: the compute's Postgres (from `--connstr`). */
export interface WalSourcePostgres {
  host: string;
  port: number;
  user: string;
}

/** Everything one `START_WAL_PULL` carries. */
export interface WalPullParams extends WalSourcePostgres {
  /** The safekeeper's standby name (`safekeeperStandbyName` of its spec entry). */
  applicationName: string;
  /** Where the compute's WAL begins: the LSN it started from. */
  startLsn: Lsn;
  /**
   * Tells this compute's WAL history apart from another one's that happens to
   * share address and start LSN (a restart that wrote nothing); see
   * {@link walHistoryId}.
   */
  instanceId?: string;
}

/** Random per manager process: a restarted compute is a new instance. */
const PROCESS_ID = crypto.randomUUID();

/**
 * The `instance_id` of the history that begins at `startLsn` in this manager
 * process: re-announcing it (a reconfigure) keeps the safekeepers' term, while
 * a new process or a promotion (another start LSN) opens a new one.
 */
export function walHistoryId(startLsn: Lsn): string {
  return `${PROCESS_ID}@${formatLsn(startLsn)}`;
}

/**
 * The query text of one announcement, e.g. `START_WAL_PULL (host '127.0.0.1',
 * port '55432', user 'cloud_admin', application_name 'safekeeper_127_0_0_1_5454',
 * start_lsn '0/169AD58')`: every value single-quoted, a `'` inside doubled.
 */
export function walPullCommand(params: WalPullParams): string {
  const options: [string, string][] = [
    ["host", params.host],
    ["port", String(params.port)],
    ["user", params.user],
    ["application_name", params.applicationName],
    ["start_lsn", formatLsn(params.startLsn)],
  ];
  if (params.instanceId !== undefined) options.push(["instance_id", params.instanceId]);
  const list = options.map(([name, value]) => `${name} '${value.replaceAll("'", "''")}'`);
  return `${WAL_PULL_COMMAND} (${list.join(", ")})`;
}

/** Options of {@link announceWalSource}. */
export interface WalSourceOptions extends SafekeeperConnectOptions {
  postgres: WalSourcePostgres;
  startLsn: Lsn;
  /** Bound on one attempt (connect + query); {@link DEFAULT_ANNOUNCE_TIMEOUT_MS} by default. */
  timeoutMs?: number;
}

/**
 * Sends `START_WAL_PULL` to the safekeeper at `address` (an entry of
 * `safekeeper_connstrings`, which also gives its standby name) over the same
 * kind of session `TIMELINE_STATUS` uses. Resolves once it answered
 * CommandComplete; rejects with its ErrorResponse, a connection error, the
 * signal's reason, or a `SafekeeperTimeoutError`.
 */
export async function announceWalSource(
  address: string,
  options: WalSourceOptions,
): Promise<void> {
  const query = walPullCommand({
    ...options.postgres,
    applicationName: safekeeperStandbyName(address),
    startLsn: options.startLsn,
    instanceId: walHistoryId(options.startLsn),
  });
  await withSafekeeperClient(address, {
    ...options,
    timeoutMs: options.timeoutMs ?? DEFAULT_ANNOUNCE_TIMEOUT_MS,
    command: WAL_PULL_COMMAND,
  }, async (client) => {
    await client.query(query);
  });
}

/** Options of {@link announceWalSourceToQuorum}. */
export interface WalSourceQuorumOptions extends WalSourceOptions {
  /** Stop retrying after this long; {@link DEFAULT_ANNOUNCE_DEADLINE_MS} by default. */
  deadlineMs?: number;
  /** First retry delay; {@link DEFAULT_RETRY_BASE_DELAY_MS} by default. */
  retryBaseDelayMs?: number;
  /**
   * One attempt at one safekeeper; {@link announceWalSource} by default. It must
   * settle soon after `signal` aborts (tests inject it to run without sockets).
   */
  announce?: (address: string, signal: AbortSignal) => Promise<void>;
}

/** Who accepted the announcement, and why the others did not (their last error). */
export interface WalSourceAnnouncement {
  accepted: string[];
  failed: { address: string; error: string }[];
}

/** Fewer than a quorum of safekeepers accepted `START_WAL_PULL` before the deadline. */
export class WalSourceQuorumError extends Error {
  constructor(readonly outcome: WalSourceAnnouncement, quorum: number) {
    const total = outcome.accepted.length + outcome.failed.length;
    const failures = outcome.failed.map(({ address, error }) => `${address}: ${error}`);
    super(
      `${WAL_PULL_COMMAND} accepted by ${outcome.accepted.length} of ${total} safekeepers, ` +
        `a quorum needs ${quorum}; ${failures.join("; ")}`,
    );
    this.name = "WalSourceQuorumError";
  }
}

/**
 * Announces the WAL source to every safekeeper at once, retrying each failed
 * one with back-off (200 ms × 1.5ⁿ, at most 2 s), until a quorum
 * (⌊n/2⌋ + 1) has accepted; then stops the attempts still running and returns
 * who accepted and who did not. Nothing keeps running once it has returned.
 * Throws {@link WalSourceQuorumError} when `deadlineMs` passes first, and the
 * signal's reason when `signal` aborts first. No addresses: nothing to do.
 */
export async function announceWalSourceToQuorum(
  addresses: readonly string[],
  options: WalSourceQuorumOptions,
): Promise<WalSourceAnnouncement> {
  options.signal?.throwIfAborted();
  if (addresses.length === 0) return { accepted: [], failed: [] };
  const quorum = vanillaQuorumSize(addresses.length);
  const deadlineMs = options.deadlineMs ?? DEFAULT_ANNOUNCE_DEADLINE_MS;
  const baseDelayMs = options.retryBaseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS;
  const announce = options.announce ??
    ((address: string, signal: AbortSignal) => announceWalSource(address, { ...options, signal }));

  const stop = new AbortController();
  const onAbort = () => stop.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const deadline = setTimeout(
    () => stop.abort(new Error(`no answer within the ${deadlineMs} ms deadline`)),
    deadlineMs,
  );
  const accepted = new Set<string>();
  const lastErrors = new Map<string, string>();

  const untilAccepted = async (address: string) => {
    for (let attempt = 0; !stop.signal.aborted; attempt++) {
      try {
        await announce(address, stop.signal);
        accepted.add(address);
        if (accepted.size >= quorum) stop.abort(new Error("a quorum accepted before it answered"));
        return;
      } catch (error) {
        // Once stopped, the rejection is the stop itself: a real earlier error says more.
        if (!stop.signal.aborted || !lastErrors.has(address)) {
          lastErrors.set(address, errorMessage(error));
        }
      }
      try {
        await sleep(Math.min(baseDelayMs * 1.5 ** attempt, MAX_RETRY_DELAY_MS), stop.signal);
      } catch {
        return;
      }
    }
  };
  try {
    await Promise.all(addresses.map(untilAccepted));
  } finally {
    clearTimeout(deadline);
    options.signal?.removeEventListener("abort", onAbort);
  }

  const outcome: WalSourceAnnouncement = {
    accepted: addresses.filter((address) => accepted.has(address)),
    failed: addresses.filter((address) => !accepted.has(address)).map((address) => ({
      address,
      error: lastErrors.get(address) ?? "not tried",
    })),
  };
  if (outcome.accepted.length >= quorum) return outcome;
  if (options.signal?.aborted) throw options.signal.reason;
  throw new WalSourceQuorumError(outcome, quorum);
}
