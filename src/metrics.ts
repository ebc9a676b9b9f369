/**
 * @module
 * The manager's Prometheus metrics: one registry of our own (no process or
 * runtime metrics), families with the reference's names, types, label names
 * and help texts, rendered in text format 0.0.4 with label vectors that have
 * no series left out. To add a family, declare it below in the reference's
 * order; `renderMetrics` picks it up.
 */

import { Counter, Gauge, Registry } from "prom-client";

/** The content type `/metrics` answers with. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4";

/** The registry every family below belongs to. */
export const registry = new Registry();

/** `BUILD_TAG` from the environment, `latest` when unset (or unreadable). */
export function buildTag(): string {
  try {
    return Deno.env.get("BUILD_TAG") || "latest";
  } catch {
    return "latest";
  }
}

/** `compute_ctl_up{build_tag,status}`: exactly one series, at 1, for the current status. */
export const computeCtlUp = new Gauge({
  name: "compute_ctl_up",
  help: "Whether compute_ctl is running",
  labelNames: ["build_tag", "status"] as const,
  registers: [registry],
});

/** `compute_ctl_cplane_requests_total{rpc,http_status}`: every control-plane attempt. */
export const cplaneRequests = new Counter({
  name: "compute_ctl_cplane_requests_total",
  help: "Total number of control plane requests made by compute_ctl by status",
  labelNames: ["rpc", "http_status"] as const,
  registers: [registry],
});

/** `compute_ctl_db_migration_failed_total{migration_id}`: failed built-in migrations. */
export const dbMigrationFailed = new Counter({
  name: "compute_ctl_db_migration_failed_total",
  help: "Total number of failed database migrations",
  labelNames: ["migration_id"] as const,
  registers: [registry],
});

/** `compute_pg_current_downtime_ms`: ms since Postgres last answered; 0 while it answers. */
export const pgCurrentDowntimeMs = new Gauge({
  name: "compute_pg_current_downtime_ms",
  help: "Non-cumulative duration of Postgres downtime in ms; resets after successful check",
  registers: [registry],
});

/** `compute_pg_downtime_ms_total`: cumulative ms of failed monitor checks. */
export const pgDowntimeMsTotal = new Counter({
  name: "compute_pg_downtime_ms_total",
  help: "Cumulative duration of Postgres downtime in ms",
  registers: [registry],
});

/** `pg_cctl_pagestream_request_errors_total`: every `POST /refresh_configuration`. */
export const pagestreamRequestErrors = new Counter({
  name: "pg_cctl_pagestream_request_errors_total",
  help: "Number of PageStream request errors reported by the postgres process",
  registers: [registry],
});

/** The only control-plane RPC the manager makes. */
export const CPLANE_RPC_GET_CONFIG = "GetConfig";

/**
 * Resets `compute_ctl_up` so that its one series is `{build_tag, status}` = 1.
 * `status` is the kebab-case display form (`configuration-pending`).
 */
export function setComputeUp(status: string, tag: string = buildTag()): void {
  computeCtlUp.reset();
  computeCtlUp.set({ build_tag: tag, status }, 1);
}

/**
 * Counts one control-plane request; `httpStatus` is the label the control-plane
 * client passes to its `onAttempt` (`"200 OK"`, `"unknown"`, …).
 */
export function countCplaneRequest(httpStatus: string): void {
  cplaneRequests.inc({ rpc: CPLANE_RPC_GET_CONFIG, http_status: httpStatus });
}

/**
 * Renders every family of `registry` in registration order, in Prometheus text
 * format 0.0.4, leaving out label vectors that have no series yet. Plain
 * counters and gauges always appear, at 0 before they are touched.
 */
export async function renderMetrics(from: Registry = registry): Promise<string> {
  const parts: string[] = [];
  for (const { name } of from.getMetricsAsArray()) {
    const metric = from.getSingleMetric(name);
    if (metric === undefined || (await metric.get()).values.length === 0) continue;
    parts.push(await from.getSingleMetricAsString(name));
  }
  return parts.length === 0 ? "" : `${parts.join("\n")}\n`;
}
