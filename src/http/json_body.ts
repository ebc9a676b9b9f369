/**
 * @module
 * Reading a JSON request body the way the reference's extractor does: 415
 * without a JSON content type, 413 over 2 MiB, 400 for malformed JSON, 422 for
 * JSON of the wrong shape, each message lower-cased in an `{"error"}` body.
 */

import type { Context } from "hono";
import type { z } from "zod";
import { formatIssues } from "../api/spec.ts";
import { HttpError } from "./errors.ts";

/** The reference framework's default request body limit. */
export const BODY_LIMIT_BYTES = 2 * 1024 * 1024;

function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const mime = value.split(";")[0].trim().toLowerCase();
  return mime === "application/json" ||
    (mime.startsWith("application/") && mime.endsWith("+json"));
}

async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > limit) throw tooLarge();
  if (request.body === null) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge();
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

function tooLarge(): HttpError {
  return new HttpError(413, "failed to buffer the request body: length limit exceeded");
}

/**
 * Reads and validates the body of `c` against `schema`; throws {@link HttpError}
 * with the reference's status and (lower-cased) message on any failure.
 */
export async function readJsonBody<S extends z.ZodType>(
  c: Context,
  schema: S,
  limit: number = BODY_LIMIT_BYTES,
): Promise<z.infer<S>> {
  if (!isJsonContentType(c.req.header("content-type"))) {
    throw new HttpError(415, "expected request with `content-type: application/json`");
  }
  const bytes = await readLimited(c.req.raw, limit);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new HttpError(400, `failed to parse the request body as json: ${detail}`.toLowerCase());
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new HttpError(
      422,
      `failed to deserialize the json body into the target type: ${formatIssues(parsed.error)}`
        .toLowerCase(),
    );
  }
  return parsed.data;
}
