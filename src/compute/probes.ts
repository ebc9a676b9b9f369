/**
 * @module
 * Health probes the HTTP API offers: the write check (`running` only), the
 * `pg_isready` liveness probe (in-process when the install has no
 * `pg_isready`) and the communicator's autoscaling metrics (any status; they
 * simply fail while Postgres is down).
 */

import { causeChain } from "../cause_chain.ts";
import { getLogger } from "../log.ts";
import { fetchAutoscalingMetrics } from "../postgres/communicator.ts";
import { upsertHealthCheck } from "../postgres/health_check.ts";
import { pgIsReady, probeTarget } from "../postgres/pg_isready.ts";
import { requireRunning } from "./catalog_api.ts";
import type { ComputeNode } from "./node.ts";

const log = getLogger("compute");

/** A response relayed from the communicator: status, content type (if any) and body. */
export interface RelayedResponse {
  status: number;
  contentType: string | null;
  body: ReadableStream<Uint8Array>;
}

/**
 * `/check_writability` (`running` only): upserts `public.health_check`.
 * Resolves `true`; a full disk counts as success. Throws the driver's error.
 */
export async function checkWritability(node: ComputeNode): Promise<true> {
  requireRunning(node);
  await upsertHealthCheck(node.settings.connstr);
  return true;
}

/**
 * `/hadron_liveness_probe`: `pg_isready` on the connstr's port (in-process
 * when the install has none). Resolves `"ok"`; throws `Failed to get the port
 * from the connection string`, `could not run \`<bin> --port <port>\``, or the
 * in-process check's `no response from Postgres at …` / `… rejects connections`.
 */
export async function livenessProbe(node: ComputeNode): Promise<"ok"> {
  const target = probeTarget(node.settings.connstr);
  try {
    await pgIsReady(node.settings.pgbin, target);
  } catch (error) {
    log.warn("liveness probe failed", { error: causeChain(error) });
    throw error;
  }
  return "ok";
}

/**
 * `/autoscaling_metrics`: the communicator's answer, relayed. Throws an error
 * whose message is the whole cause chain (the reference's `{:#}`).
 */
export async function autoscalingMetrics(node: ComputeNode): Promise<RelayedResponse> {
  const response = await fetchAutoscalingMetrics(node.settings.pgdata);
  return {
    status: response.status,
    contentType: response.headers.get("content-type") ?? null,
    body: response.body,
  };
}
