/**
 * @module
 * How failures become HTTP responses: `{"error": "<message>"}` with
 * `Content-Type: application/json` (plain text only where the reference's
 * framework answers in plain text), and the mapping from the compute's typed
 * errors to status codes.
 */

import { SpecError } from "../api/parsed_spec.ts";
import { ConfigurationFailedError, RefreshNotAllowedError } from "../compute/errors.ts";
import { InvalidStatusError } from "../compute/state.ts";
import { errorMessage, getLogger } from "../log.ts";

const log = getLogger("http");

/** An error that already knows its status code and body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Answer `text/plain; charset=utf-8` with the bare message instead of JSON. */
    readonly plainText = false,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** `{"error": message}` with `application/json`; the message is logged at error level. */
export function jsonError(status: number, message: string): Response {
  log.error(message, { status });
  return new Response(JSON.stringify({ error: message }), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** A bodyless response (`content-length: 0`, no content type). */
export function emptyResponse(status: number, headers: HeadersInit = {}): Response {
  return new Response(null, { status, headers });
}

/** The status code for one of the compute's errors; 500 for anything unexpected. */
export function statusFor(error: unknown): number {
  if (error instanceof HttpError) return error.status;
  if (error instanceof SpecError) return 400;
  if (error instanceof InvalidStatusError) return 412;
  if (error instanceof ConfigurationFailedError) return 500;
  if (error instanceof RefreshNotAllowedError) return 500;
  return 500;
}

/** Turns anything a handler threw into the response the reference would send. */
export function errorResponse(error: unknown): Response {
  const status = statusFor(error);
  const message = errorMessage(error);
  if (error instanceof HttpError && error.plainText) {
    log.error(message, { status });
    return new Response(message, {
      status,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }
  return jsonError(status, message);
}
