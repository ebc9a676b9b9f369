/**
 * @module
 * The activity monitor: every 500 ms while the compute is up, ask Postgres
 * whether anyone is using it and move `last_active` forward (neon-01 §4.1
 * steps 2–5: client backends, replication, subscriptions, autovacuum), and keep
 * the downtime metrics. The manager's own sessions (role `cloud_admin`) do not
 * count as activity.
 */

import { sleep } from "../_async.ts";
import pg from "pg";
import type { ComputeStatus } from "../api/responses.ts";
import { errorMessage, getLogger } from "../log.ts";
import { pgCurrentDowntimeMs, pgDowntimeMsTotal } from "../metrics.ts";
import { clientConfig } from "../postgres/connect.ts";
import type { ComputeState } from "./state.ts";

const log = getLogger("monitor");

/** The reference's monitor period. */
export const MONITOR_INTERVAL_MS = 500;

/**
 * Statuses in which Postgres is up and the monitor checks it: `failed` too,
 * which a failed reconfiguration leaves with Postgres serving its previous
 * configuration (after a failed start the node stops the monitor at once).
 */
export const MONITORED_STATUSES: readonly ComputeStatus[] = [
  "running",
  "failed",
  "configuration_pending",
  "configuration",
  "refresh_configuration_pending",
  "refresh_configuration",
];

const BACKENDS_SQL = `
  SELECT state, state_change
    FROM pg_catalog.pg_stat_activity
   WHERE backend_type = 'client backend'
     AND pid <> pg_catalog.pg_backend_pid()
     AND usename IS DISTINCT FROM 'cloud_admin'`;
const REPLICATION_SQL = `SELECT count(*)::int AS n FROM pg_catalog.pg_stat_replication
   WHERE application_name IS DISTINCT FROM 'walproposer'`;
const SUBSCRIPTIONS_SQL =
  `SELECT count(*)::int AS n FROM pg_catalog.pg_stat_subscription WHERE pid IS NOT NULL`;
const AUTOVACUUM_SQL = `SELECT count(*)::int AS n FROM pg_catalog.pg_stat_activity
   WHERE backend_type = 'autovacuum worker'`;

async function count(client: pg.Client, sql: string): Promise<number> {
  const result = await client.query<{ n: number }>(sql);
  return result.rows[0]?.n ?? 0;
}

/**
 * One check: returns the time of the latest activity it saw (now, when anything
 * is busy; else the newest idle backend's `state_change`), or null.
 */
export async function checkActivity(client: pg.Client): Promise<Date | null> {
  const now = new Date();
  const backends = await client.query<{ state: string | null; state_change: Date | null }>(
    BACKENDS_SQL,
  );
  let latestIdle: Date | null = null;
  for (const { state, state_change } of backends.rows) {
    if (state !== "idle") return now;
    if (state_change !== null && (latestIdle === null || state_change > latestIdle)) {
      latestIdle = state_change;
    }
  }
  if (await count(client, REPLICATION_SQL) > 0) return now;
  if (await count(client, SUBSCRIPTIONS_SQL) > 0) return now;
  if (await count(client, AUTOVACUUM_SQL) > 0) return now;
  return latestIdle;
}

/** Options for {@link runMonitor}. */
export interface MonitorOptions {
  connstr: string;
  state: ComputeState;
  intervalMs?: number;
}

/**
 * Runs until `signal` aborts: waits for a monitored status, checks activity,
 * updates `last_active` and the downtime metrics, sleeps, repeats. A failed
 * check closes the connection; the next check reconnects.
 */
export async function runMonitor(options: MonitorOptions, signal: AbortSignal): Promise<void> {
  const { connstr, state, intervalMs = MONITOR_INTERVAL_MS } = options;
  let client: pg.Client | null = null;
  let lastUp = Date.now();
  let lastChecked = Date.now();
  let down = false;
  const disconnect = async () => {
    const closing = client;
    client = null;
    await closing?.end().catch(() => {});
  };
  try {
    while (!signal.aborted) {
      if (!MONITORED_STATUSES.includes(state.status)) {
        await disconnect();
        await state.waitForStatus(MONITORED_STATUSES, signal);
        lastUp = lastChecked = Date.now();
      }
      try {
        if (client === null) {
          const fresh = new pg.Client(
            clientConfig(connstr, { applicationName: "compute_ctl:compute_monitor" }),
          );
          fresh.on("error", () => {});
          client = fresh;
          await fresh.connect();
        }
        const active = await checkActivity(client);
        if (active !== null) state.updateLastActive(active);
        if (down) log.info("postgres answers the activity monitor again");
        down = false;
        lastUp = Date.now();
        pgCurrentDowntimeMs.set(0);
      } catch (error) {
        if (signal.aborted) break;
        const now = Date.now();
        pgCurrentDowntimeMs.set(now - lastUp);
        pgDowntimeMsTotal.inc(Math.max(0, now - lastChecked));
        const fields = { error: errorMessage(error) };
        if (down) log.debug("activity check failed", fields);
        else log.warn("activity check failed", fields);
        down = true;
        await disconnect();
      }
      lastChecked = Date.now();
      await sleep(intervalMs, signal);
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  } finally {
    await disconnect();
  }
}
