/**
 * @module
 * What the manager answers: compute statuses in their three renderings
 * (snake_case JSON, kebab-case display, PascalCase debug), the `/status` body,
 * the 13 startup metrics of `/metrics.json`, `/terminate`'s answer and the
 * `{"error": …}` body every failure uses.
 */

import { z } from "zod";

/** The 11 compute statuses, in their JSON (snake_case) form. */
export const COMPUTE_STATUSES = [
  "empty",
  "configuration_pending",
  "init",
  "running",
  "configuration",
  "failed",
  "termination_pending_fast",
  "termination_pending_immediate",
  "terminated",
  "refresh_configuration_pending",
  "refresh_configuration",
] as const;

export const computeStatusSchema = z.enum(COMPUTE_STATUSES);
export type ComputeStatus = z.infer<typeof computeStatusSchema>;

/** Kebab-case form used in logs, 412 messages and the `compute_ctl_up` label. */
export function statusDisplay(status: ComputeStatus): string {
  return status.replaceAll("_", "-");
}

/** PascalCase form (the Rust variant name) used in the `/refresh_configuration` 500 message. */
export function statusDebug(status: ComputeStatus): string {
  return status.split("_").map((word) => word[0].toUpperCase() + word.slice(1)).join("");
}

/** `GET /status` and the 200 body of `/configure`, keys in the reference order. */
export const computeStatusResponseSchema = z.object({
  start_time: z.string(),
  tenant: z.string().nullable(),
  timeline: z.string().nullable(),
  status: computeStatusSchema,
  last_active: z.string().nullable(),
  error: z.string().nullable(),
});
export type ComputeStatusResponse = z.infer<typeof computeStatusResponseSchema>;

const counter = z.number().int().min(0);

/** `GET /metrics.json`: startup timings and sizes, all present, zero before start-up. */
export const computeMetricsSchema = z.object({
  wait_for_spec_ms: counter,
  sync_sk_check_ms: counter,
  sync_safekeepers_ms: counter,
  pageserver_connect_micros: counter,
  basebackup_ms: counter,
  basebackup_bytes: counter,
  start_postgres_ms: counter,
  config_ms: counter,
  total_startup_ms: counter,
  load_ext_ms: counter,
  num_ext_downloaded: counter,
  largest_ext_size: counter,
  total_ext_download_size: counter,
});
export type ComputeMetrics = z.infer<typeof computeMetricsSchema>;

/** A `ComputeMetrics` with every field at zero. */
export function emptyComputeMetrics(): ComputeMetrics {
  return {
    wait_for_spec_ms: 0,
    sync_sk_check_ms: 0,
    sync_safekeepers_ms: 0,
    pageserver_connect_micros: 0,
    basebackup_ms: 0,
    basebackup_bytes: 0,
    start_postgres_ms: 0,
    config_ms: 0,
    total_startup_ms: 0,
    load_ext_ms: 0,
    num_ext_downloaded: 0,
    largest_ext_size: 0,
    total_ext_download_size: 0,
  };
}

/** `?mode=` of `/terminate`; `fast` when absent. */
export const terminateModeSchema = z.enum(["fast", "immediate"]);
export type TerminateMode = z.infer<typeof terminateModeSchema>;

/** `/terminate`'s answer: the flush LSN from the final safekeeper sync, or null. */
export const terminateResponseSchema = z.object({ lsn: z.string().nullable() });
export type TerminateResponse = z.infer<typeof terminateResponseSchema>;

/** The body of every error response. */
export const errorBodySchema = z.object({ error: z.string() });
export type ErrorBody = z.infer<typeof errorBodySchema>;
