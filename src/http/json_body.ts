/**
 * @module
 * Reading a JSON request body the way the reference's extractor does: 415
 * without a JSON content type, 413 over 2 MiB, 400 for a body that cannot be
 * read to its end (broken chunked framing, a connection closed early) or for
 * malformed JSON, 422 for JSON of the wrong shape, each worded as in
 * `rejections.ts` (an `{"error"}` body, lower-cased, unless the route asks for
 * axum's plain text).
 */

import type { Context } from "hono";
import type { z } from "zod";
import { formatIssues } from "../api/spec.ts";
import { errorMessage } from "../log.ts";
import { bodyRejection, rejection, type RejectionStyle } from "./rejections.ts";

/** The reference framework's default request body limit. */
export const BODY_LIMIT_BYTES = 2 * 1024 * 1024;

/** Options of {@link readJsonBody}. */
export interface ReadJsonBodyOptions {
  /** How refusals are answered; default `json`. */
  style?: RejectionStyle;
  /** Default {@link BODY_LIMIT_BYTES}. */
  limit?: number;
}

function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const mime = value.split(";")[0].trim().toLowerCase();
  return mime === "application/json" ||
    (mime.startsWith("application/") && mime.endsWith("+json"));
}

/**
 * The body's bytes, or null once it is over `limit`. A body that breaks off is
 * a 400 `Failed to buffer the request body: <why>`, as axum words it.
 */
async function readLimited(
  request: Request,
  limit: number,
  style: RejectionStyle,
): Promise<Uint8Array | null> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > limit) return null;
  if (request.body === null) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of request.body) {
      size += chunk.byteLength;
      if (size > limit) return null;
      chunks.push(chunk);
    }
  } catch (error) {
    throw rejection(400, `Failed to buffer the request body: ${errorMessage(error)}`, style);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/**
 * V8's `JSON.parse` message without the input it quotes (`Unexpected token 'x',
 * "…": xyz…"… is not valid JSON` → `Unexpected token in JSON`): the body may
 * carry a secret, and the message is both answered and logged.
 */
function withoutQuotedInput(message: string): string {
  return message.replace(
    /^Unexpected token .*, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s,
    "Unexpected token in JSON",
  );
}

/**
 * Reads and validates the body of `c` against `schema`; throws an `HttpError`
 * with the reference's status and message on any failure.
 */
export async function readJsonBody<S extends z.ZodType>(
  c: Context,
  schema: S,
  { style = "json", limit = BODY_LIMIT_BYTES }: ReadJsonBodyOptions = {},
): Promise<z.infer<S>> {
  if (!isJsonContentType(c.req.header("content-type"))) throw bodyRejection(415, style);
  const bytes = await readLimited(c.req.raw, limit, style);
  if (bytes === null) throw bodyRejection(413, style);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    // Lower-cased in both styles: serde's messages, which these stand for, are.
    throw bodyRejection(400, style, withoutQuotedInput(errorMessage(error)).toLowerCase());
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw bodyRejection(422, style, formatIssues(parsed.error));
  return parsed.data;
}
