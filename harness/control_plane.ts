/**
 * @module
 * A fake Neon control plane: the one endpoint `compute_ctl` calls,
 * `GET /compute/api/v2/computes/{compute_id}/spec`, answering each compute with
 * whatever the test set last: an empty (pooled) compute, an attached spec, a
 * bare HTTP error, or a body that does not decode. Unknown computes get 404.
 * {@linkcode ControlPlane.specFault} puts a fault (`faults.ts`) in front of a
 * compute's answer, for its next requests or until cleared.
 * Requests under `/harness/` go to the handler given to
 * {@linkcode ControlPlane.setAdminHandler} (the cluster's admin API).
 */

import { type ControlPlaneFault, type FaultSwitch, faultSwitch } from "./faults.ts";

/** A JSON object as the control plane sends it; left unchecked so tests can send bad specs. */
export type JsonObject = Record<string, unknown>;

/** The `compute_ctl_config` every answer carries unless the test gives one. */
export const DEFAULT_COMPUTE_CTL_CONFIG: JsonObject = Object.freeze({ jwks: { keys: [] } });

/** What the control plane answers for one compute. */
export type ControlPlaneAnswer =
  /** 200 `{status: "empty", spec: null, compute_ctl_config}`: a pooled compute. */
  | { kind: "empty"; computeCtlConfig?: JsonObject }
  /** 200 `{status: "attached", spec, compute_ctl_config}`; `spec: null` is allowed to test the error. */
  | { kind: "attached"; spec: JsonObject | null; computeCtlConfig?: JsonObject }
  /** A bare HTTP error, or a 200 whose body does not decode. */
  | ControlPlaneFault;

/** One request the control plane received for a compute. */
export interface ControlPlaneRequest {
  method: string;
  path: string;
  authorization: string | null;
}

/** Serves one request of the harness admin API. */
export type AdminHandler = (request: Request) => Response | Promise<Response>;

/** A running fake control plane; `close()` stops it. */
export interface ControlPlane extends AsyncDisposable {
  /** Base URI to pass as `--control-plane-uri`, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** Sets (or replaces) what `computeId` is answered from now on. */
  setAnswer(computeId: string, answer: ControlPlaneAnswer): void;
  /** Forgets a compute: its requests are answered 404 again. */
  removeAnswer(computeId: string): void;
  /** How many spec requests arrived for `computeId` (known or not). */
  requests(computeId: string): number;
  /** Every spec request for `computeId`, oldest first. */
  requestLog(computeId: string): readonly ControlPlaneRequest[];
  /**
   * The fault answered to `computeId`'s spec requests while it is armed, in
   * place of (and without changing) the answer set with {@linkcode setAnswer}.
   */
  specFault(computeId: string): FaultSwitch<ControlPlaneFault>;
  /** Serves every path under `/harness/` with `handler` from now on (null: 404 again). */
  setAdminHandler(handler: AdminHandler | null): void;
  close(): Promise<void>;
}

const SPEC_PATH = new URLPattern({ pathname: "/compute/api/v2/computes/:computeId/spec" });
const ADMIN_PREFIX = "/harness/";

/** Starts the fake control plane on a free loopback port. */
export function startControlPlane(
  { hostname = "127.0.0.1" }: { hostname?: string } = {},
): Promise<ControlPlane> {
  const answers = new Map<string, ControlPlaneAnswer>();
  const log = new Map<string, ControlPlaneRequest[]>();
  const faults = new Map<string, FaultSwitch<ControlPlaneFault>>();
  const specFault = (computeId: string) => {
    let fault = faults.get(computeId);
    if (fault === undefined) faults.set(computeId, fault = faultSwitch());
    return fault;
  };
  let adminHandler: AdminHandler | null = null;

  const handler = (request: Request): Response | Promise<Response> => {
    const url = new URL(request.url);
    if (adminHandler !== null && url.pathname.startsWith(ADMIN_PREFIX)) {
      return adminHandler(request);
    }
    const match = SPEC_PATH.exec({ pathname: url.pathname });
    if (!match || request.method !== "GET") {
      return Response.json({ error: `no route for ${request.method} ${url.pathname}` }, {
        status: 404,
      });
    }
    const computeId = decodeURIComponent(match.pathname.groups.computeId ?? "");
    const entries = log.get(computeId) ?? [];
    entries.push({
      method: request.method,
      path: url.pathname,
      authorization: request.headers.get("authorization"),
    });
    log.set(computeId, entries);
    const fault = faults.get(computeId)?.take();
    if (fault) return respond(fault);
    const answer = answers.get(computeId);
    if (!answer) {
      return Response.json({ error: `compute ${computeId} not found` }, { status: 404 });
    }
    return respond(answer);
  };

  const server = Deno.serve({ hostname, port: 0, onListen: () => {} }, handler);
  let closed: Promise<void> | undefined;
  const close = () => closed ??= server.shutdown();
  return Promise.resolve({
    url: `http://${hostname}:${server.addr.port}`,
    setAnswer: (computeId, answer) => void answers.set(computeId, answer),
    removeAnswer: (computeId) => void answers.delete(computeId),
    requests: (computeId) => log.get(computeId)?.length ?? 0,
    requestLog: (computeId) => [...(log.get(computeId) ?? [])],
    specFault,
    setAdminHandler: (next) => void (adminHandler = next),
    close,
    [Symbol.asyncDispose]: close,
  });
}

function respond(answer: ControlPlaneAnswer): Response {
  switch (answer.kind) {
    case "empty":
      return Response.json({
        status: "empty",
        spec: null,
        compute_ctl_config: answer.computeCtlConfig ?? DEFAULT_COMPUTE_CTL_CONFIG,
      });
    case "attached":
      return Response.json({
        status: "attached",
        spec: answer.spec,
        compute_ctl_config: answer.computeCtlConfig ?? DEFAULT_COMPUTE_CTL_CONFIG,
      });
    case "http-error":
      return new Response(answer.body ?? null, { status: answer.status });
    case "garbage":
      return new Response(answer.body ?? "this is not a control plane response", {
        headers: { "content-type": "application/json" },
      });
  }
}
