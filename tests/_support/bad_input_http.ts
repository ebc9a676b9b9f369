/**
 * @module
 * A raw HTTP/1.1 client for hostile requests: the request target goes out
 * byte for byte (`/a/../b`, `%2F`, `%00` are not normalised as `fetch` would),
 * any method, headers and body bytes, optionally chunked, and the answer is
 * read from the socket until the server closes it. The body is written while
 * the answer is read, so a server that answers before reading everything
 * (a 413) is still heard.
 */

/** One request as it goes on the wire. */
export interface RawRequest {
  method: string;
  /** The request target, sent verbatim. */
  target: string;
  /** Header lines in order; `host` and `connection: close` are added first. */
  headers?: readonly (readonly [string, string])[];
  body?: Uint8Array;
  /** Send the body with `transfer-encoding: chunked` instead of `content-length`. */
  chunked?: boolean;
}

/** Bytes sent exactly as given (a whole request, framing included), for malformed HTTP. */
export interface VerbatimRequest {
  verbatim: Uint8Array;
  /** The method, so a `HEAD` answer is read without a body. */
  method: string;
}

/** An answer as read from the socket. */
export interface RawAnswer {
  status: number;
  headers: Headers;
  body: Uint8Array;
  /** The body as UTF-8 text. */
  text: string;
}

/** The server closed the connection without a complete answer. */
export class NoAnswerError extends Error {
  override name = "NoAnswerError";
}

const encoder = new TextEncoder();
const CHUNK_BYTES = 64 * 1024;

/**
 * Sends `request` to `127.0.0.1:port` on a fresh connection (with `host` and
 * `connection: close` first, then its headers and framing) and returns the answer.
 */
export function rawRequest(
  port: number,
  request: RawRequest | VerbatimRequest,
): Promise<RawAnswer> {
  if ("verbatim" in request) return exchange(port, slices(request.verbatim), request.method);
  const head = [`${request.method} ${request.target} HTTP/1.1`, `host: 127.0.0.1:${port}`];
  head.push("connection: close");
  for (const [name, value] of request.headers ?? []) head.push(`${name}: ${value}`);
  const body = request.body;
  if (body !== undefined) {
    head.push(request.chunked ? "transfer-encoding: chunked" : `content-length: ${body.length}`);
  }
  return exchange(port, [
    encoder.encode(head.join("\r\n") + "\r\n\r\n"),
    ...(body === undefined ? [] : request.chunked ? chunkedParts(body) : slices(body)),
  ], request.method);
}

async function exchange(port: number, parts: Uint8Array[], method: string): Promise<RawAnswer> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    // A server that answers early may close before taking the whole body, and
    // the write then fails (a broken pipe) while, or even after, the answer is
    // read: the failure is caught from the start, and the answer decides.
    const writing = writeAll(conn, parts).catch(() => {});
    const bytes = await readAll(conn);
    await writing;
    return parseAnswer(bytes, method.toUpperCase() === "HEAD");
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

function slices(body: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (let offset = 0; offset < body.length; offset += CHUNK_BYTES) {
    parts.push(body.subarray(offset, offset + CHUNK_BYTES));
  }
  return parts;
}

function chunkedParts(body: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (const slice of slices(body)) {
    parts.push(encoder.encode(`${slice.length.toString(16)}\r\n`), slice, encoder.encode("\r\n"));
  }
  parts.push(encoder.encode("0\r\n\r\n"));
  return parts;
}

async function writeAll(conn: Deno.Conn, parts: readonly Uint8Array[]): Promise<void> {
  for (const part of parts) {
    for (let written = 0; written < part.length;) {
      written += await conn.write(part.subarray(written));
    }
  }
}

async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const buffer = new Uint8Array(CHUNK_BYTES);
  while (true) {
    let read: number | null;
    try {
      read = await conn.read(buffer);
    } catch (error) {
      // A reset after a complete answer still leaves that answer usable.
      if (size > 0 && error instanceof Deno.errors.ConnectionReset) break;
      throw error;
    }
    if (read === null) break;
    chunks.push(buffer.slice(0, read));
    size += read;
  }
  return concat(chunks, size);
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/**
 * Parses a complete HTTP/1.1 answer (status line, headers, then a sized or
 * chunked body; none for a `HEAD` request).
 */
export function parseAnswer(bytes: Uint8Array, head = false): RawAnswer {
  const text = new TextDecoder("latin1").decode(bytes);
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) throw new NoAnswerError(`no complete answer (${bytes.length} bytes read)`);
  const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!match) throw new NoAnswerError(`not an HTTP status line: ${JSON.stringify(statusLine)}`);
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  let body = bytes.subarray(end + 4);
  if (head) body = body.subarray(0, 0);
  else if (headers.get("transfer-encoding")?.toLowerCase() === "chunked") body = unchunk(body);
  else if (headers.has("content-length")) {
    const length = Number(headers.get("content-length"));
    if (body.length < length) {
      throw new NoAnswerError(`body cut short: ${body.length} of ${length} bytes`);
    }
    body = body.subarray(0, length);
  }
  return { status: Number(match[1]), headers, body, text: new TextDecoder().decode(body) };
}

function unchunk(bytes: Uint8Array): Uint8Array {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let offset = 0;
  while (true) {
    const lineEnd = indexOfCrlf(bytes, offset);
    if (lineEnd < 0) throw new NoAnswerError("chunked body cut short");
    const length = parseInt(new TextDecoder().decode(bytes.subarray(offset, lineEnd)), 16);
    if (!Number.isFinite(length)) throw new NoAnswerError("bad chunk size");
    offset = lineEnd + 2;
    if (length === 0) return concat(chunks, size);
    if (offset + length > bytes.length) throw new NoAnswerError("chunk cut short");
    chunks.push(bytes.subarray(offset, offset + length));
    size += length;
    offset += length + 2;
  }
}

function indexOfCrlf(bytes: Uint8Array, from: number): number {
  for (let i = from; i + 1 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10) return i;
  }
  return -1;
}
