/**
 * @module
 * When a standby has replayed the WAL it was given. A hot standby accepts
 * connections as soon as it is consistent, which on vanilla storage comes
 * before it has replayed its basebackup's WAL (Neon's pageserver hands out
 * pages already at the LSN; ours hands out WAL to replay). A Static or Replica
 * compute is only `running` once its startup process has run out of WAL and
 * waits for more: then every record up to the basebackup LSN is visible.
 */

import { sleep } from "../_async.ts";
import { withClient } from "./connect.ts";

/** What the startup process waits on once it has replayed all the WAL it has. */
export const WAITING_FOR_WAL_EVENTS: ReadonlySet<string> = new Set([
  "RecoveryRetrieveRetryInterval", // no WAL source: polling pg_wal
  "RecoveryWalStream", // waiting for the walreceiver
]);

/** The standby did not catch up in time. */
export class StandbyReplayError extends Error {
  constructor(timeoutMs: number, lastEvent: string | null) {
    super(
      `the standby did not finish replaying its WAL within ${timeoutMs} ms ` +
        `(startup process wait event: ${lastEvent ?? "none"})`,
    );
    this.name = "StandbyReplayError";
  }
}

/**
 * Resolves once the startup process of the standby at `connstr` waits for WAL
 * (see {@link WAITING_FOR_WAL_EVENTS}); polls `pg_stat_activity` every
 * `pollMs`. Throws {@link StandbyReplayError} after `timeoutMs`.
 */
export async function waitForStandbyReplay(
  connstr: string,
  { timeoutMs = 60_000, pollMs = 50, signal }: {
    timeoutMs?: number;
    pollMs?: number;
    signal?: AbortSignal;
  } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await withClient(connstr, { applicationName: "compute_ctl:standby" }, async (client) => {
    let event: string | null = null;
    for (;;) {
      const { rows } = await client.query<{ wait_event: string | null }>(
        "SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'startup'",
      );
      // No startup process: recovery has ended, nothing left to replay.
      if (rows.length === 0) return;
      event = rows[0].wait_event;
      if (event !== null && WAITING_FOR_WAL_EVENTS.has(event)) return;
      if (Date.now() >= deadline) throw new StandbyReplayError(timeoutMs, event);
      await sleep(pollMs, signal);
    }
  });
}
