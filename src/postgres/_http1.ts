/**
 * @module
 * Just enough HTTP/1.1 client to talk to a local server over a byte stream
 * (the communicator's unix socket): send one request, parse the status line
 * and headers, and hand out the body framed by `Transfer-Encoding: chunked`,
 * `Content-Length`, or the end of the connection.
 */

/** A parsed response head. Header names are lower-cased; repeated headers keep the last value. */
export interface ResponseHead {
  status: number;
  headers: Map<string, string>;
}

/** The peer did not speak HTTP/1.x as expected. */
export class HttpProtocolError extends Error {
  override name = "HttpProtocolError";
}

const MAX_HEAD_BYTES = 64 * 1024;
const CRLF = new Uint8Array([13, 10]);
const HEAD_END = new Uint8Array([13, 10, 13, 10]);

/** The request text: method, path, `host`, a zero content length and no keep-alive. */
export function requestHead(method: string, path: string, host: string): string {
  return `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\ncontent-length: 0\r\n` +
    "connection: close\r\n\r\n";
}

/** Parses a response head (status line and header lines, without the blank line). */
export function parseResponseHead(text: string): ResponseHead {
  const [statusLine, ...lines] = text.split("\r\n");
  const match = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine);
  if (!match) throw new HttpProtocolError(`invalid status line ${JSON.stringify(statusLine)}`);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new HttpProtocolError(`invalid header line ${JSON.stringify(line)}`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(match[1]), headers };
}

/** How the body of a response with `head` is delimited. */
export type BodyFraming =
  | { kind: "none" }
  | { kind: "chunked" }
  | { kind: "length"; length: number }
  | { kind: "close" };

/** The framing rules of RFC 9112 §6.3 for a response to a GET. */
export function bodyFraming({ status, headers }: ResponseHead): BodyFraming {
  if ((status >= 100 && status < 200) || status === 204 || status === 304) return { kind: "none" };
  const encoding = headers.get("transfer-encoding");
  if (encoding !== undefined) {
    const last = encoding.split(",").map((part) => part.trim().toLowerCase()).at(-1);
    return last === "chunked" ? { kind: "chunked" } : { kind: "close" };
  }
  const length = headers.get("content-length");
  if (length !== undefined) {
    if (!/^\d+$/.test(length)) throw new HttpProtocolError(`invalid content-length ${length}`);
    return { kind: "length", length: Number(length) };
  }
  return { kind: "close" };
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Buffered reads from a connection. */
class Reader {
  #buffer = new Uint8Array(0);
  #eof = false;
  constructor(readonly conn: { read(p: Uint8Array): Promise<number | null> }) {}

  /** Reads more bytes into the buffer; false at end of stream. */
  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const chunk = new Uint8Array(16 * 1024);
    const n = await this.conn.read(chunk);
    if (n === null) {
      this.#eof = true;
      return false;
    }
    const joined = new Uint8Array(this.#buffer.length + n);
    joined.set(this.#buffer);
    joined.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = joined;
    return true;
  }

  #take(n: number): Uint8Array {
    const taken = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.slice(n);
    return taken;
  }

  /** Bytes up to (not including) `delimiter`, which is consumed. */
  async until(delimiter: Uint8Array, limit: number, what: string): Promise<Uint8Array> {
    let at: number;
    while ((at = indexOf(this.#buffer, delimiter)) < 0) {
      if (this.#buffer.length > limit) throw new HttpProtocolError(`${what} too long`);
      if (!(await this.#fill())) {
        throw new HttpProtocolError(`connection closed before the ${what} was complete`);
      }
    }
    const bytes = this.#take(at);
    this.#take(delimiter.length);
    return bytes;
  }

  /** Up to `max` bytes (at least one), or null at end of stream. */
  async some(max: number): Promise<Uint8Array | null> {
    if (this.#buffer.length === 0 && !(await this.#fill())) return null;
    return this.#take(Math.min(max, this.#buffer.length));
  }
}

/** A response: its head and its body as a stream (cancel it to drop the connection). */
export interface Http1Response extends ResponseHead {
  body: ReadableStream<Uint8Array>;
}

/**
 * Sends `GET path` on `conn` and reads the response head; the body is streamed
 * from `conn`, which is closed when the body ends, fails or is cancelled.
 * Interim (1xx) responses are skipped. Throws {@linkcode HttpProtocolError} or
 * the connection's error; the caller closes `conn` then.
 */
export async function http1Get(
  conn: Deno.Conn,
  path: string,
  host: string,
): Promise<Http1Response> {
  await writeAll(conn, new TextEncoder().encode(requestHead("GET", path, host)));
  const reader = new Reader(conn);
  let head: ResponseHead;
  do {
    const bytes = await reader.until(HEAD_END, MAX_HEAD_BYTES, "response head");
    head = parseResponseHead(new TextDecoder().decode(bytes));
  } while (head.status >= 100 && head.status < 200);
  const framing = bodyFraming(head);
  return { ...head, body: bodyStream(conn, reader, framing) };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function bodyStream(
  conn: Deno.Conn,
  reader: Reader,
  framing: BodyFraming,
): ReadableStream<Uint8Array> {
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch {
      // already closed
    }
  };
  const chunks = bodyChunks(reader, framing);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await chunks.next();
        if (next.done) {
          close();
          controller.close();
        } else {
          controller.enqueue(next.value);
        }
      } catch (error) {
        close();
        controller.error(error);
      }
    },
    cancel() {
      close();
    },
  });
}

async function* bodyChunks(reader: Reader, framing: BodyFraming): AsyncGenerator<Uint8Array> {
  const max = 64 * 1024;
  if (framing.kind === "none") return;
  if (framing.kind === "close") {
    let chunk: Uint8Array | null;
    while ((chunk = await reader.some(max)) !== null) yield chunk;
    return;
  }
  if (framing.kind === "length") {
    let left = framing.length;
    while (left > 0) {
      const chunk = await reader.some(Math.min(left, max));
      if (chunk === null) throw new HttpProtocolError("connection closed before the body ended");
      left -= chunk.length;
      yield chunk;
    }
    return;
  }
  while (true) {
    const line = new TextDecoder().decode(await reader.until(CRLF, 1024, "chunk size line"));
    const size = parseInt(line.split(";")[0].trim(), 16);
    if (Number.isNaN(size) || size < 0) {
      throw new HttpProtocolError(`invalid chunk size line ${JSON.stringify(line)}`);
    }
    if (size === 0) {
      // Trailers, up to the blank line that ends the message.
      while ((await reader.until(CRLF, MAX_HEAD_BYTES, "trailer")).length > 0) { /* skip */ }
      return;
    }
    let left = size;
    while (left > 0) {
      const chunk = await reader.some(Math.min(left, max));
      if (chunk === null) throw new HttpProtocolError("connection closed inside a chunk");
      left -= chunk.length;
      yield chunk;
    }
    const end = await reader.until(CRLF, 2, "chunk end");
    if (end.length !== 0) throw new HttpProtocolError("chunk data longer than its size");
  }
}
