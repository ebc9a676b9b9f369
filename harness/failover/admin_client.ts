/**
 * @module
 * The harness admin API as a failover run (or anyone) calls it: plain HTTP to
 * the fake control plane's `/harness/…` routes, errors as {@linkcode AdminError}
 * carrying the status and the `{"error": …}` text.
 */

import type { JsonObject } from "../control_plane.ts";

/** A non-2xx answer of the admin API. */
export class AdminError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "AdminError";
  }
}

/** One compute as `cluster.json` describes it. */
export interface ComputeEntry {
  id: string;
  tenant_id: string;
  timeline_id: string;
  postgres: string;
  external_http: string;
  internal_http: string;
  config_path: string;
  tokens: { compute: string; admin: string };
}

/** The parts of `cluster.json` a run reads. */
export interface ClusterState {
  control_plane: { url: string };
  pageservers: { id: number; libpq: string; http: string }[];
  safekeepers: { id: number; address: string }[];
  computes: ComputeEntry[];
}

/** Typed calls to the admin API at `baseUrl` (the control plane's URL). */
export function adminClient(baseUrl: string) {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const response = await fetch(`${baseUrl}/harness/${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
      let message = text;
      try {
        message = JSON.parse(text).error ?? text;
      } catch {
        // not JSON: keep the text
      }
      throw new AdminError(
        response.status,
        `${method} /harness/${path}: ${response.status} ${message}`,
      );
    }
    return JSON.parse(text) as T;
  };
  return {
    state: () => call<ClusterState>("GET", "state"),
    pageserver: (id: number, action: "stop" | "start" | "kill") =>
      call<JsonObject>("POST", `pageservers/${id}/${action}`),
    safekeeper: (id: number, action: "stop" | "start" | "kill") =>
      call<JsonObject>("POST", `safekeepers/${id}/${action}`),
    compute: (id: string, action: "stop" | "start" | "kill") =>
      call<JsonObject>("POST", `computes/${encodeURIComponent(id)}/${action}`),
    addCompute: (body: { mode: "Replica" } | { mode: "Static"; lsn: string }) =>
      call<ComputeEntry>("POST", "computes", body),
    migrate: (tenantId: string, to: number, notify: boolean) =>
      call<JsonObject>("POST", `tenants/${tenantId}/migrate`, { to, notify }),
  };
}

export type AdminClient = ReturnType<typeof adminClient>;
