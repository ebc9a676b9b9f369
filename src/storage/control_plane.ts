/**
 * @module
 * The control-plane spec client: `GET {uri}/compute/api/v2/computes/{id}/spec`
 * with `Authorization: Bearer <token>`, retried like Neon's `compute_ctl`
 * (3 attempts, 100 ms apart; only 502, 503, transport errors and undecodable
 * bodies are retried), turned into the same `ComputeConfig` a `--config` file holds.
 */

import { sleep } from "../_async.ts";
import { type ComputeConfig, controlPlaneSpecResponseSchema } from "../api/config.ts";
import { formatIssues } from "../api/spec.ts";
import { errorMessage } from "../log.ts";

/** The `http_status` label used when no HTTP response arrived. */
export const UNKNOWN_HTTP_STATUS = "unknown";

/** Thrown when the config cannot be obtained; `retryable` tells why the loop stopped. */
export class ControlPlaneError extends Error {
  constructor(message: string, readonly retryable: boolean, options?: ErrorOptions) {
    super(message, options);
    this.name = "ControlPlaneError";
  }
}

/** Options of {@linkcode fetchComputeConfig}. */
export interface FetchComputeConfigOptions {
  /** `--control-plane-uri`, concatenated as is (a trailing `/` yields `//compute/…`, as in Neon). */
  baseUri: string;
  computeId: string;
  /** `NEON_CONTROL_PLANE_TOKEN`; absent or empty still sends `Bearer `. */
  token?: string;
  /** Called once per attempt with the `http_status` label (`"200 OK"`, `"unknown"`, …). */
  onAttempt?: (httpStatus: string) => void;
  fetchImpl?: typeof fetch;
  attempts?: number;
  retryDelayMs?: number;
  /** The pause between attempts (default: `sleep` of `_async.ts`); replaceable for tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Per-attempt time limit, like reqwest's blocking-client default. */
  requestTimeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Fetches this compute's config from the control plane. `status: "empty"` yields
 * a config without spec (the compute waits for `/configure`); `"attached"` must
 * carry a spec. Throws {@linkcode ControlPlaneError} after a non-retryable answer
 * or once every attempt failed.
 */
export async function fetchComputeConfig(
  {
    baseUri,
    computeId,
    token = "",
    onAttempt,
    fetchImpl = fetch,
    attempts = 3,
    retryDelayMs = 100,
    sleep: pause = sleep,
    requestTimeoutMs = 30_000,
    signal,
  }: FetchComputeConfigOptions,
): Promise<ComputeConfig> {
  const url = `${baseUri}/compute/api/v2/computes/${computeId}/spec`;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await pause(retryDelayMs, signal);
    try {
      return await fetchOnce(url, token, fetchImpl, requestTimeoutMs, signal, onAttempt);
    } catch (error) {
      if (!(error instanceof ControlPlaneError) || !error.retryable) throw error;
      lastError = error;
    }
  }
  throw new ControlPlaneError(
    "Exhausted all attempts to retrieve the config from the control plane",
    false,
    { cause: lastError },
  );
}

async function fetchOnce(
  url: string,
  token: string,
  fetchImpl: typeof fetch,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  onAttempt: ((httpStatus: string) => void) | undefined,
): Promise<ComputeConfig> {
  const timeout = AbortSignal.timeout(timeoutMs);
  let response: Response;
  let body: string;
  try {
    // fetch trims the trailing space of an empty token's `Bearer `; HTTP parsers strip it anyway.
    response = await fetchImpl(url, {
      headers: { Authorization: `Bearer ${token}` },
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  } catch (error) {
    signal?.throwIfAborted();
    onAttempt?.(UNKNOWN_HTTP_STATUS);
    throw new ControlPlaneError(`could not reach the control plane: ${errorMessage(error)}`, true, {
      cause: error,
    });
  }
  onAttempt?.(httpStatusLabel(response.status));
  try {
    body = await response.text();
  } catch (error) {
    signal?.throwIfAborted();
    throw new ControlPlaneError(
      `could not read the control plane response: ${errorMessage(error)}`,
      true,
      {
        cause: error,
      },
    );
  }
  if (response.status === 502 || response.status === 503) {
    throw new ControlPlaneError(
      `control plane responded with ${httpStatusLabel(response.status)}`,
      true,
    );
  }
  if (response.status !== 200) {
    throw new ControlPlaneError(
      `control plane responded with ${httpStatusLabel(response.status)}: ${body}`,
      false,
    );
  }
  return decodeConfig(body);
}

function decodeConfig(body: string): ComputeConfig {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    throw new ControlPlaneError(
      `could not decode the control plane response: ${errorMessage(error)}`,
      true,
    );
  }
  const parsed = controlPlaneSpecResponseSchema.safeParse(json);
  if (!parsed.success) {
    throw new ControlPlaneError(
      `could not decode the control plane response: ${formatIssues(parsed.error)}`,
      true,
    );
  }
  const { status, spec, compute_ctl_config } = parsed.data;
  if (status === "attached" && spec == null) {
    throw new ControlPlaneError("compute is attached, but spec is empty", false);
  }
  return { spec, compute_ctl_config };
}

/**
 * Renders a status code the way Rust's `http::StatusCode` displays it: the code,
 * a space and the canonical reason phrase (`"503 Service Unavailable"`), or
 * `"<unknown status code>"` for codes without one. Metric labels depend on it.
 */
export function httpStatusLabel(status: number): string {
  return `${status} ${CANONICAL_REASONS[status] ?? "<unknown status code>"}`;
}

const CANONICAL_REASONS: Readonly<Record<number, string>> = {
  100: "Continue",
  101: "Switching Protocols",
  102: "Processing",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  207: "Multi-Status",
  208: "Already Reported",
  226: "IM Used",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  305: "Use Proxy",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Payload Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  418: "I'm a teapot",
  421: "Misdirected Request",
  422: "Unprocessable Entity",
  423: "Locked",
  424: "Failed Dependency",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  451: "Unavailable For Legal Reasons",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  506: "Variant Also Negotiates",
  507: "Insufficient Storage",
  508: "Loop Detected",
  510: "Not Extended",
  511: "Network Authentication Required",
};
