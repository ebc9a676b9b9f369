/**
 * @module
 * The manager's Prometheus metrics: one registry of our own with the
 * reference's 15 families (same names, types, label names and help texts, in
 * its order), then what the reference lacks: three `process_*` families and
 * per-route HTTP request counts and latencies. Rendered in text format 0.0.4
 * with label vectors that have no series left out. To add a family, declare it
 * below; `renderMetrics` picks it up.
 */

import process from "node:process";
import type * as PromClient from "prom-client";
// The four classes from their own files: prom-client's index also loads its
// push gateway (node:http, node:https), cluster aggregator (node:cluster) and
// default metrics (OpenTelemetry), which the manager never uses: ~16 ms of the
// ~140 ms its module graph took to load.
import RegistryClass from "prom-client/lib/registry.js";
import CounterClass from "prom-client/lib/counter.js";
import GaugeClass from "prom-client/lib/gauge.js";
import HistogramClass from "prom-client/lib/histogram.js";

const Registry = RegistryClass as unknown as typeof PromClient.Registry;
const Counter = CounterClass as unknown as typeof PromClient.Counter;
const Gauge = GaugeClass as unknown as typeof PromClient.Gauge;
const Histogram = HistogramClass as unknown as typeof PromClient.Histogram;

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

/**
 * `compute_installed_extensions{extension_name,version,owned_by_superuser}`:
 * how many databases have that extension at that version; series are never removed.
 */
export const installedExtensions = new Gauge({
  name: "compute_installed_extensions",
  help: "Number of databases where the version of extension is installed",
  labelNames: ["extension_name", "version", "owned_by_superuser"] as const,
  registers: [registry],
});

/** `compute_ctl_cplane_requests_total{rpc,http_status}`: every control-plane attempt. */
export const cplaneRequests = new Counter({
  name: "compute_ctl_cplane_requests_total",
  help: "Total number of control plane requests made by compute_ctl by status",
  labelNames: ["rpc", "http_status"] as const,
  registers: [registry],
});

/**
 * `compute_ctl_remote_ext_requests_total{http_status,filename}`: every remote
 * extension archive download (`"200 OK"`, `"unknown"` when nothing came back).
 */
export const remoteExtRequests = new Counter({
  name: "compute_ctl_remote_ext_requests_total",
  help:
    "Total number of requests made by compute_ctl to download extensions from S3 proxy by status",
  labelNames: ["http_status", "filename"] as const,
  registers: [registry],
});

/** `compute_ctl_db_migration_failed_total{migration_id}`: failed built-in migrations. */
export const dbMigrationFailed = new Counter({
  name: "compute_ctl_db_migration_failed_total",
  help: "Total number of failed database migrations",
  labelNames: ["migration_id"] as const,
  registers: [registry],
});

/** `compute_audit_log_dir_size`: bytes of `<pgdata>/log/*log` while audit logging is on. */
export const auditLogDirSize = new Gauge({
  name: "compute_audit_log_dir_size",
  help: "Size of audit log directory in bytes",
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

/** `compute_ctl_lfc_prewarms_total`: every accepted prewarm (API or autoprewarm). */
export const lfcPrewarms = new Counter({
  name: "compute_ctl_lfc_prewarms_total",
  help: "Total number of LFC prewarms requested by compute_ctl or autoprewarm option",
  registers: [registry],
});

/** `compute_ctl_lfc_prewarm_errors_total`: prewarms that ended `failed`. */
export const lfcPrewarmErrors = new Counter({
  name: "compute_ctl_lfc_prewarm_errors_total",
  help: "Total number of LFC prewarm errors",
  registers: [registry],
});

/** `compute_ctl_lfc_offloads_total`: every offload attempt (API or periodic). */
export const lfcOffloads = new Counter({
  name: "compute_ctl_lfc_offloads_total",
  help:
    "Total number of LFC offloads requested by compute_ctl or lfc_offload_period_seconds option",
  registers: [registry],
});

/** `compute_ctl_lfc_offload_errors_total`: offloads that ended `failed`. */
export const lfcOffloadErrors = new Counter({
  name: "compute_ctl_lfc_offload_errors_total",
  help: "Total number of LFC offload errors",
  registers: [registry],
});

/** `pg_cctl_pagestream_request_errors_total`: every `POST /refresh_configuration`. */
export const pagestreamRequestErrors = new Counter({
  name: "pg_cctl_pagestream_request_errors_total",
  help: "Number of PageStream request errors reported by the postgres process",
  registers: [registry],
});

/** `pg_cctl_configure_statement_timeout_errors_total`: spec-apply statements cancelled (57014). */
export const configureStatementTimeoutErrors = new Counter({
  name: "pg_cctl_configure_statement_timeout_errors_total",
  help: "Number of compute configuration errors due to Postgres statement timeouts.",
  registers: [registry],
});

/**
 * `pg_cctl_attached{pg_compute_id,pg_instance_id,tenant_id,timeline_id}`: one
 * series at 1 for the spec installed in lakebase mode; see {@link setAttached}.
 */
export const pgCctlAttached = new Gauge({
  name: "pg_cctl_attached",
  help: "Compute node attached status (1 if attached)",
  labelNames: ["pg_compute_id", "pg_instance_id", "tenant_id", "timeline_id"] as const,
  registers: [registry],
});

// Beyond the reference: process metrics from Deno's own APIs (prom-client's
// default collectors read /proc, which the `compute` permission set cannot).

/** `process_resident_memory_bytes`, read at scrape time. */
export const processResidentMemory = new Gauge({
  name: "process_resident_memory_bytes",
  help: "Resident memory size in bytes.",
  registers: [registry],
  collect() {
    this.set(Deno.memoryUsage().rss);
  },
});

let cpuSecondsSeen = 0;

/** `process_cpu_seconds_total` (user + system), read at scrape time. */
export const processCpuSeconds = new Counter({
  name: "process_cpu_seconds_total",
  help: "Total user and system CPU time spent in seconds.",
  registers: [registry],
  collect() {
    const { user, system } = process.cpuUsage();
    const seconds = (user + system) / 1e6;
    if (seconds > cpuSecondsSeen) this.inc(seconds - cpuSecondsSeen);
    cpuSecondsSeen = Math.max(cpuSecondsSeen, seconds);
  },
});

/** `process_start_time_seconds`: when this process started, in Unix seconds. */
export const processStartTime = new Gauge({
  name: "process_start_time_seconds",
  help: "Start time of the process since unix epoch in seconds.",
  registers: [registry],
});
processStartTime.set(Math.round(performance.timeOrigin / 1000));

// Beyond the reference: HTTP request metrics, recorded by `http/server.ts`.

/** `compute_ctl_http_requests_total{server,route,method,status}`. */
export const httpRequests = new Counter({
  name: "compute_ctl_http_requests_total",
  help: "Total number of HTTP requests served by compute_ctl by server, route, method and status",
  labelNames: ["server", "route", "method", "status"] as const,
  registers: [registry],
});

/** `compute_ctl_http_request_duration_seconds{server,route,method,status}`. */
export const httpRequestDuration = new Histogram({
  name: "compute_ctl_http_request_duration_seconds",
  help: "Time compute_ctl took to answer HTTP requests, by server, route, method and status",
  labelNames: ["server", "route", "method", "status"] as const,
  // /configure and /terminate block until the compute gets there: keep going past 10 s.
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  registers: [registry],
});

/** The `route` label of a request that matched no route. */
export const UNMATCHED_ROUTE = "unmatched";

/** Records one answered request; `route` is the route table's path, not the raw URL. */
export function observeHttpRequest(
  labels: { server: string; route: string; method: string; status: number },
  seconds: number,
): void {
  const values = { ...labels, status: String(labels.status) };
  httpRequests.inc(values);
  httpRequestDuration.observe(values, seconds);
}

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
 * Resets `pg_cctl_attached` so that its one series names this compute and the
 * spec's tenant and timeline (lakebase mode, when a spec is installed).
 */
export function setAttached(ids: {
  computeId: string;
  instanceId: string;
  tenantId: string;
  timelineId: string;
}): void {
  pgCctlAttached.reset();
  pgCctlAttached.set({
    pg_compute_id: ids.computeId,
    pg_instance_id: ids.instanceId,
    tenant_id: ids.tenantId,
    timeline_id: ids.timelineId,
  }, 1);
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
export async function renderMetrics(from: PromClient.Registry = registry): Promise<string> {
  const parts: string[] = [];
  for (const { name } of from.getMetricsAsArray()) {
    // One collection per family (collecting runs its `collect`, e.g. reading
    // the process's memory): a family without series is only its `# HELP`
    // and `# TYPE` lines (prom-client escapes line breaks in help texts).
    const text = await from.getSingleMetricAsString(name);
    if (text.split("\n", 3).length > 2) parts.push(text);
  }
  return parts.length === 0 ? "" : `${parts.join("\n")}\n`;
}
