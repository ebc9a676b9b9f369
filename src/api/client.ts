/**
 * @module
 * A typed client for both HTTP servers of a compute: one method per route,
 * an optional bearer token for the external server, answers validated with
 * the same zod schemas the servers use, and every non-2xx answer (or a body
 * that does not match) thrown as a {@link ComputeApiError} carrying the status
 * and the body.
 *
 * ```ts
 * const api = createComputeClient({ externalUrl: "http://127.0.0.1:3080", token });
 * const { status } = await api.status();
 * ```
 */

import type { z } from "zod";
import {
  type CatalogObjects,
  catalogObjectsSchema,
  type ComputeInsights,
  computeInsightsSchema,
  type ExtensionInstallRequest,
  type ExtensionInstallResponse,
  extensionInstallResponseSchema,
  type SetRoleGrantsRequest,
  type SetRoleGrantsResponse,
  setRoleGrantsResponseSchema,
} from "./catalog.ts";
import type { configurationRequestSchema } from "./config.ts";
import type { FailpointConfig } from "./failpoints.ts";
import {
  type LfcOffloadState,
  lfcOffloadStateSchema,
  type LfcPrewarmState,
  lfcPrewarmStateSchema,
} from "./lfc.ts";
import { type promoteConfigSchema, type PromoteState, promoteStateSchema } from "./promote.ts";
import {
  type ComputeMetrics,
  computeMetricsSchema,
  type ComputeStatusResponse,
  computeStatusResponseSchema,
  errorBodySchema,
  type TerminateMode,
  type TerminateResponse,
  terminateResponseSchema,
} from "./responses.ts";

/** A failed call: a non-2xx answer, or a 2xx one whose body is not what the route promises. */
export class ComputeApiError extends Error {
  override name = "ComputeApiError";
  constructor(
    /** `METHOD /path` of the call. */
    readonly request: string,
    /** The HTTP status. */
    readonly status: number,
    /** The body: parsed JSON when it was JSON, else the text. */
    readonly body: unknown,
    message: string,
  ) {
    super(message);
  }

  /** The `error` field of a `{"error": …}` body, if that is what came back. */
  get errorMessage(): string | undefined {
    const parsed = errorBodySchema.safeParse(this.body);
    return parsed.success ? parsed.data.error : undefined;
  }
}

/** Options of {@link createComputeClient}. */
export interface ComputeClientOptions {
  /** Base URL of the external server, e.g. `http://127.0.0.1:3080`. */
  externalUrl: string;
  /** Base URL of the internal server; the internal methods throw without it. */
  internalUrl?: string;
  /** JWT sent as `Authorization: Bearer …` to the external server. */
  token?: string;
  /** Sent as `x-request-id` on every call when given. */
  requestId?: () => string;
  /** Abort a call after this long; default: wait as long as the route blocks. */
  timeoutMs?: number;
  /** The `fetch` to use (tests may wrap it). */
  fetch?: typeof fetch;
}

/** The body `/configure` takes, as sent (LSNs as strings). */
export type ConfigurationRequestInput = z.input<typeof configurationRequestSchema>;
/** The body `/promote` takes, as sent (`wal_flush_lsn` as `"X/Y"`). */
export type PromoteConfigInput = z.input<typeof promoteConfigSchema>;

/** What `/terminate` answered: the LSN, and whether the compute had already stopped (201). */
export interface TerminateResult extends TerminateResponse {
  alreadyTerminated: boolean;
}

/** One method per route of the external and internal servers. */
export interface ComputeClient {
  // external, no auth
  /** `GET /metrics`: Prometheus text. */
  metrics(): Promise<string>;
  /** `GET /autoscaling_metrics`: the communicator's Prometheus text, passed through. */
  autoscalingMetrics(): Promise<string>;
  /** `GET /openapi.json`: the OpenAPI document of both servers. */
  openapi(): Promise<Record<string, unknown>>;
  // external, JWT
  /** `GET /status`. */
  status(): Promise<ComputeStatusResponse>;
  /** `GET /metrics.json`. */
  metricsJson(): Promise<ComputeMetrics>;
  /** `POST /configure`: resolves once the compute runs the spec. */
  configure(body: ConfigurationRequestInput): Promise<ComputeStatusResponse>;
  /** `POST /terminate[?mode=…]`: resolves once Postgres has stopped. */
  terminate(mode?: TerminateMode): Promise<TerminateResult>;
  /** `POST /check_writability`: true, or throws. */
  checkWritability(): Promise<true>;
  /** `GET /insights` (accepts Neon's double-encoded string too). */
  insights(): Promise<ComputeInsights>;
  /** `GET /dbs_and_roles`. */
  dbsAndRoles(): Promise<CatalogObjects>;
  /** `GET /database_schema?database=…`: `pg_dump --schema-only` text. */
  databaseSchema(database: string): Promise<string>;
  /** `POST /promote`: resolves with the `completed` state; a `failed` one is thrown (500). */
  promote(body: PromoteConfigInput): Promise<PromoteState>;
  /** `GET /lfc/prewarm`. */
  lfcPrewarmState(): Promise<LfcPrewarmState>;
  /** `POST /lfc/prewarm[?from_endpoint=…]`: accepted (202). */
  lfcPrewarm(fromEndpoint?: string): Promise<void>;
  /** `DELETE /lfc/prewarm`: accepted (202). */
  cancelLfcPrewarm(): Promise<void>;
  /** `GET /lfc/offload`. */
  lfcOffloadState(): Promise<LfcOffloadState>;
  /** `POST /lfc/offload`: accepted (202). */
  lfcOffload(): Promise<void>;
  /** `GET /hadron_liveness_probe`: `"ok"`, or throws. */
  livenessProbe(): Promise<"ok">;
  // internal
  /** `POST /refresh_configuration`. */
  refreshConfiguration(): Promise<void>;
  /** `POST /extension_server/{filename}[?is_library=true]`. */
  extensionServer(filename: string, options?: { isLibrary?: boolean }): Promise<void>;
  /** `POST /extensions`. */
  extensions(body: ExtensionInstallRequest): Promise<ExtensionInstallResponse>;
  /** `POST /grants`. */
  grants(body: SetRoleGrantsRequest): Promise<SetRoleGrantsResponse>;
  /** `POST /failpoints` (testing builds). */
  failpoints(body: FailpointConfig[]): Promise<void>;
}

interface Call {
  server: "external" | "internal";
  method: "GET" | "POST" | "DELETE";
  path: string;
  body?: unknown;
}

interface Answer {
  status: number;
  text: string;
  json: unknown;
}

/** Builds a client; nothing is sent until a method is called. */
export function createComputeClient(options: ComputeClientOptions): ComputeClient {
  const doFetch = options.fetch ?? fetch;

  async function send(call: Call): Promise<Answer> {
    const base = call.server === "external" ? options.externalUrl : options.internalUrl;
    if (base === undefined) {
      throw new Error(`${call.method} ${call.path} needs the internal server's URL (internalUrl)`);
    }
    const headers = new Headers();
    if (call.server === "external" && options.token !== undefined) {
      headers.set("authorization", `Bearer ${options.token}`);
    }
    if (options.requestId) headers.set("x-request-id", options.requestId());
    if (call.body !== undefined) headers.set("content-type", "application/json");
    const response = await doFetch(`${base.replace(/\/+$/, "")}${call.path}`, {
      method: call.method,
      headers,
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
      signal: options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs),
    });
    const text = await response.text();
    let json: unknown = undefined;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      // not JSON: `text` has it
    }
    const answer = { status: response.status, text, json };
    if (response.status < 200 || response.status > 299) {
      const body = json ?? text;
      const detail = errorBodySchema.safeParse(body).success
        ? (body as { error: string }).error
        : text || "(empty body)";
      throw new ComputeApiError(
        `${call.method} ${call.path}`,
        response.status,
        body,
        `${call.method} ${call.path} answered ${response.status}: ${detail}`,
      );
    }
    return answer;
  }

  /** Sends `call` and returns its JSON body checked against `schema`. */
  async function json<S extends z.ZodType>(call: Call, schema: S): Promise<z.output<S>> {
    const answer = await send(call);
    return check(call, answer, schema, answer.json);
  }

  function check<S extends z.ZodType>(
    call: Call,
    answer: Answer,
    schema: S,
    value: unknown,
  ): z.output<S> {
    const parsed = schema.safeParse(value);
    if (parsed.success) return parsed.data;
    throw new ComputeApiError(
      `${call.method} ${call.path}`,
      answer.status,
      answer.json ?? answer.text,
      `${call.method} ${call.path} answered ${answer.status} with an unexpected body: ` +
        parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; "),
    );
  }

  async function text(call: Call): Promise<string> {
    return (await send(call)).text;
  }

  async function empty(call: Call): Promise<void> {
    await send(call);
  }

  const external = (method: Call["method"], path: string, body?: unknown): Call => ({
    server: "external",
    method,
    path,
    body,
  });
  const internal = (method: Call["method"], path: string, body?: unknown): Call => ({
    server: "internal",
    method,
    path,
    body,
  });

  return {
    metrics: () => text(external("GET", "/metrics")),
    autoscalingMetrics: () => text(external("GET", "/autoscaling_metrics")),
    openapi: async () => {
      const call = external("GET", "/openapi.json");
      const answer = await send(call);
      if (answer.json === null || typeof answer.json !== "object") {
        throw new ComputeApiError("GET /openapi.json", answer.status, answer.text, "not JSON");
      }
      return answer.json as Record<string, unknown>;
    },
    status: () => json(external("GET", "/status"), computeStatusResponseSchema),
    metricsJson: () => json(external("GET", "/metrics.json"), computeMetricsSchema),
    configure: (body) => json(external("POST", "/configure", body), computeStatusResponseSchema),
    terminate: async (mode) => {
      const call = external("POST", mode === undefined ? "/terminate" : `/terminate?mode=${mode}`);
      const answer = await send(call);
      const body = check(call, answer, terminateResponseSchema, answer.json);
      return { ...body, alreadyTerminated: answer.status === 201 };
    },
    checkWritability: async () => {
      const call = external("POST", "/check_writability");
      const answer = await send(call);
      if (answer.json !== true) {
        throw new ComputeApiError(
          "POST /check_writability",
          answer.status,
          answer.json ?? answer.text,
          `POST /check_writability answered ${answer.status} without \`true\``,
        );
      }
      return true;
    },
    insights: async () => {
      const call = external("GET", "/insights");
      const answer = await send(call);
      // Neon double-encodes: a JSON string holding the object.
      let value = answer.json;
      if (typeof value === "string") {
        try {
          value = JSON.parse(value);
        } catch {
          // left as is: the check below reports it
        }
      }
      return check(call, answer, computeInsightsSchema, value);
    },
    dbsAndRoles: () => json(external("GET", "/dbs_and_roles"), catalogObjectsSchema),
    databaseSchema: (database) =>
      text(external("GET", `/database_schema?database=${encodeURIComponent(database)}`)),
    promote: (body) => json(external("POST", "/promote", body), promoteStateSchema),
    lfcPrewarmState: () => json(external("GET", "/lfc/prewarm"), lfcPrewarmStateSchema),
    lfcPrewarm: (fromEndpoint) =>
      empty(external(
        "POST",
        fromEndpoint === undefined
          ? "/lfc/prewarm"
          : `/lfc/prewarm?from_endpoint=${encodeURIComponent(fromEndpoint)}`,
      )),
    cancelLfcPrewarm: () => empty(external("DELETE", "/lfc/prewarm")),
    lfcOffloadState: () => json(external("GET", "/lfc/offload"), lfcOffloadStateSchema),
    lfcOffload: () => empty(external("POST", "/lfc/offload")),
    livenessProbe: async () => {
      const call = external("GET", "/hadron_liveness_probe");
      const answer = await send(call);
      if (answer.json !== "ok") {
        throw new ComputeApiError(
          "GET /hadron_liveness_probe",
          answer.status,
          answer.json ?? answer.text,
          `GET /hadron_liveness_probe answered ${answer.status} without "ok"`,
        );
      }
      return "ok";
    },
    refreshConfiguration: () => empty(internal("POST", "/refresh_configuration")),
    extensionServer: (filename, { isLibrary } = {}) =>
      empty(internal(
        "POST",
        `/extension_server/${filename.split("/").map(encodeURIComponent).join("/")}` +
          (isLibrary === undefined ? "" : `?is_library=${isLibrary}`),
      )),
    extensions: (body) =>
      json(internal("POST", "/extensions", body), extensionInstallResponseSchema),
    grants: (body) => json(internal("POST", "/grants", body), setRoleGrantsResponseSchema),
    failpoints: (body) => empty(internal("POST", "/failpoints", body)),
  };
}
