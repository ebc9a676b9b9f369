/**
 * @module
 * How a request whose body or query string cannot be read is refused, written
 * once for the handlers and for the OpenAPI document. The wording is axum's
 * (the reference's framework); Neon's own extractors send it as an
 * `{"error"}` body, lower-cased, while the few routes that use axum's
 * extractors directly (`/promote`'s body, `/terminate`'s and `/lfc/prewarm`'s
 * query string) answer it as plain text, unchanged.
 */

import { HttpError } from "./errors.ts";

/** `json`: `{"error": <lower-cased message>}`; `plain`: the message as `text/plain`. */
export type RejectionStyle = "json" | "plain";

/** The content type of a `plain` rejection. */
export const PLAIN_TEXT = "text/plain; charset=utf-8";

/** A refused body, by status: axum's message and what the OpenAPI document says. */
export interface BodyRejection {
  /** axum's wording; a detail, when there is one, follows after `: `. */
  message: string;
  /** The response's description in the OpenAPI document. */
  description: string;
}

/** Every way reading a JSON body can fail. */
export const BODY_REJECTIONS = {
  400: {
    message: "Failed to parse the request body as JSON",
    description: "Body is not valid JSON",
  },
  413: {
    message: "Failed to buffer the request body: length limit exceeded",
    description: "Body larger than 2 MiB",
  },
  415: {
    message: "Expected request with `Content-Type: application/json`",
    description: "Body without `Content-Type: application/json`",
  },
  422: {
    message: "Failed to deserialize the JSON body into the target type",
    description: "JSON of the wrong shape; the message names the field's path",
  },
} as const satisfies Record<number, BodyRejection>;

/** The statuses of {@link BODY_REJECTIONS}. */
export type BodyRejectionStatus = keyof typeof BODY_REJECTIONS;

/** `message` as an {@link HttpError} in `style`: lower-cased JSON, or plain text as it is. */
export function rejection(status: number, message: string, style: RejectionStyle): HttpError {
  return style === "json"
    ? new HttpError(status, message.toLowerCase())
    : new HttpError(status, message, true);
}

/** The refusal of a body with `status`, with `detail` after the message when given. */
export function bodyRejection(
  status: BodyRejectionStatus,
  style: RejectionStyle,
  detail?: string,
): HttpError {
  const { message } = BODY_REJECTIONS[status];
  return rejection(status, detail === undefined ? message : `${message}: ${detail}`, style);
}

/** The refusal of a query string: 400 `Failed to deserialize query string: <detail>`. */
export function queryRejection(detail: string, style: RejectionStyle): HttpError {
  return rejection(400, `Failed to deserialize query string: ${detail}`, style);
}
