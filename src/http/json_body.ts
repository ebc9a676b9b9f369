/**
 * @module
 * Reading a JSON request body the way the reference's extractor does: 415
 * without a JSON content type, 413 over 2 MiB, 400 for malformed JSON, 422 for
 * JSON of the wrong shape, each worded as in `rejections.ts` (an `{"error"}`
 * body, lower-cased, unless the route asks for axum's plain text).
 */

import type { Context } from "hono";
import type { z } from "zod";
import { formatIssues } from "../api/spec.ts";
import { errorMessage } from "../log.ts";
import { bodyRejection, type RejectionStyle } from "./rejections.ts";

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

/** The body's bytes, or null once it is over `limit`. */
async function readLimited(request: Request, limit: number): Promise<Uint8Array | null> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > limit) return null;
  if (request.body === null) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.byteLength;
    if (size > limit) return null;
    chunks.push(chunk);
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
 * Reads and validates the body of `c` against `schema`; throws an `HttpError`
 * with the reference's status and message on any failure.
 */
export async function readJsonBody<S extends z.ZodType>(
  c: Context,
  schema: S,
  { style = "json", limit = BODY_LIMIT_BYTES }: ReadJsonBodyOptions = {},
): Promise<z.infer<S>> {
  if (!isJsonContentType(c.req.header("content-type"))) throw bodyRejection(415, style);
  const bytes = await readLimited(c.req.raw, limit);
  if (bytes === null) throw bodyRejection(413, style);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    // Lower-cased in both styles: serde's messages, which these stand for, are.
    throw bodyRejection(400, style, errorMessage(error).toLowerCase());
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw bodyRejection(422, style, formatIssues(parsed.error));
  return parsed.data;
}
