/**
 * @module
 * The server side of the PostgreSQL v3 wire protocol, as Neon's `postgres_backend`
 * speaks it (reference neon-04 §A.1): the fake pageserver and the fake safekeepers
 * are built on it.
 *
 * What it does: TCP on a loopback address, SSLRequest and GSSENCRequest answered
 * `N`, the StartupMessage, trust or cleartext-password authentication (the password
 * being a JWT, see {@link jwtAuthenticator}), Neon's ParameterStatus sets, the simple
 * query protocol, and Neon's *emulation* of the extended protocol (Parse remembers
 * the text, Describe answers ParameterDescription + NoData, Execute runs the
 * remembered text without ReadyForQuery, Sync answers ReadyForQuery). Query handlers
 * write RowDescription / DataRow / CommandComplete and CopyOut framing through
 * {@link PgConnection}; an error they throw becomes an ErrorResponse with exactly
 * the fields `S`, `C`, `M`.
 *
 * Why not `npm:pg-gateway`: its only stable release (0.2.4) is bound to Node
 * sockets, treats a GSSENCRequest as a StartupMessage, always adds a `V` field to
 * ErrorResponse and sends only `server_version` after authentication, so it cannot
 * reproduce Neon's bytes; the 0.3 line is still beta. This module is small and
 * written against Deno's own TCP API instead.
 */

import {
  type ByteReader,
  concatBytes,
  createByteReader,
  cstring,
  frame,
  splitCStrings,
} from "./_wire.ts";
import {
  authenticationMessage,
  dataRow,
  errorResponse,
  firstCString,
  parameterStatus,
  READY_FOR_QUERY,
  rowDescription,
} from "./_backend_messages.ts";
export { startupOptionPairs } from "./_wire.ts";

const SSL_REQUEST_CODE = 80877103;
const GSSENC_REQUEST_CODE = 80877104;
const CANCEL_REQUEST_CODE = 80877102;
const PROTOCOL_V3 = 196608;
const MAX_STARTUP_LENGTH = 10_000;
const MAX_MESSAGE_LENGTH = 64 * 1024 * 1024;
const READ_CHUNK = 64 * 1024;

/** ParameterStatus pairs Neon sends after a trust login (reference §A.1). */
export const TRUST_PARAMETER_STATUS: ReadonlyArray<readonly [string, string]> = [
  ["client_encoding", "UTF8"],
  ["integer_datetimes", "on"],
  ["server_version", "14.1"],
];

/** ParameterStatus pairs Neon sends after a JWT (cleartext password) login. */
export const PASSWORD_PARAMETER_STATUS: ReadonlyArray<readonly [string, string]> = [
  ["client_encoding", "UTF8"],
];

/** An error a handler throws to send an ErrorResponse with a chosen SQLSTATE. */
export class PgError extends Error {
  /** SQLSTATE, `XX000` (internal error) unless told otherwise. */
  readonly code: string;
  /** Close the connection after sending the error (no ReadyForQuery). */
  readonly fatal: boolean;

  constructor(message: string, options: { code?: string; fatal?: boolean } = {}) {
    super(message);
    this.name = "PgError";
    this.code = options.code ?? "XX000";
    this.fatal = options.fatal ?? false;
  }
}

/** StartupMessage parameters (`user`, `database`, `options`, `application_name`, …). */
export type StartupParameters = Readonly<Record<string, string>>;

/** One frontend message after startup: its type byte as a character, and its body. */
export interface FrontendMessage {
  type: string;
  body: Uint8Array;
}

/**
 * One client connection as a query handler sees it. `send*` methods queue a
 * message; queued messages go out on {@link PgConnection.flush}, on
 * {@link PgConnection.sendCopyData}, and after every frontend message handled.
 */
export interface PgConnection<A> {
  readonly startup: StartupParameters;
  /** What `authenticate` returned; `undefined` before login and in trust mode. */
  readonly auth: A | undefined;
  readonly remoteAddr: Deno.NetAddr;
  /** RowDescription of text columns, laid out as Neon's `RowDescriptor::text_col`. */
  sendRowDescription(columns: readonly string[]): void;
  /** DataRow; `null` is SQL NULL. */
  sendDataRow(values: readonly (string | null)[]): void;
  sendCommandComplete(tag: string): void;
  /** CopyOutResponse: overall format 0 (text), 0 columns. */
  sendCopyOutResponse(): void;
  /** CopyBothResponse: overall format 0 (text), 0 columns. */
  sendCopyBothResponse(): void;
  /** Queues one CopyData message and flushes, so producers feel backpressure. */
  sendCopyData(chunk: Uint8Array): Promise<void>;
  sendCopyDone(): void;
  flush(): Promise<void>;
  /** Reads the next frontend message (for CopyBoth sub-protocols); `null` at EOF. */
  readMessage(): Promise<FrontendMessage | null>;
  /** Closes the socket at once, mid-stream if need be: the client sees its connection end. */
  drop(): void;
}

/** Runs one query text; resolves when the response (minus ReadyForQuery) is queued. */
export type QueryHandler = (query: string) => Promise<void>;

/** Options of {@link startPgServer}. */
export interface PgServerOptions<A> {
  /** Loopback address to bind; `127.0.0.1` by default. */
  hostname?: string;
  /** `0` (the default) asks the OS for a free port. */
  port?: number;
  /**
   * When set, the server asks for a cleartext password and calls this with it
   * (trailing NUL stripped). Throw a {@link PgError} to refuse the login.
   */
  authenticate?: (password: string, startup: StartupParameters) => Promise<A>;
  /** Called once per connection after the StartupMessage; may throw a {@link PgError}. */
  handleConnection: (conn: PgConnection<A>) => QueryHandler;
}

/** A listening libpq server. */
export interface PgServer extends AsyncDisposable {
  readonly hostname: string;
  readonly port: number;
  /** Stops accepting, closes every connection and waits for their handlers. */
  close(): Promise<void>;
}

/**
 * Starts a libpq server on a loopback address and returns once it is listening;
 * call {@link PgServer.close} (or `await using`) to stop it.
 */
export function startPgServer<A>(options: PgServerOptions<A>): PgServer {
  const hostname = options.hostname ?? "127.0.0.1";
  const listener = Deno.listen({ hostname, port: options.port ?? 0, transport: "tcp" });
  const sockets = new Set<Deno.TcpConn>();
  const sessions = new Set<Promise<void>>();
  let closed = false;

  const acceptLoop = (async () => {
    try {
      for await (const socket of listener) {
        if (closed) {
          closeQuietly(socket);
          continue;
        }
        sockets.add(socket);
        const session = serveSocket(socket, options).finally(() => {
          sockets.delete(socket);
          sessions.delete(session);
        });
        sessions.add(session);
      }
    } catch {
      // The listener was closed.
    }
  })();

  const close = async () => {
    if (closed) return;
    closed = true;
    closeQuietly(listener);
    for (const socket of sockets) closeQuietly(socket);
    await acceptLoop;
    await Promise.allSettled([...sessions]);
  };

  return {
    hostname,
    port: (listener.addr as Deno.NetAddr).port,
    close,
    [Symbol.asyncDispose]: close,
  };
}

// ---------------------------------------------------------------------------
// Connection handling

async function serveSocket<A>(socket: Deno.TcpConn, options: PgServerOptions<A>): Promise<void> {
  const reader = createByteReader(socket, READ_CHUNK);
  const writer = createWriter(socket);
  try {
    socket.setNoDelay(true);
    const startup = await readStartup(reader, writer);
    if (startup === null) return;
    let auth: A | undefined;
    const conn = createConnection(startup, () => auth, socket, reader, writer);
    const handler = options.handleConnection(conn);
    if (options.authenticate) {
      auth = await passwordLogin(reader, writer, startup, options.authenticate);
    } else {
      writer.push(authenticationMessage(0));
      for (const [name, value] of TRUST_PARAMETER_STATUS) writer.push(parameterStatus(name, value));
      writer.push(READY_FOR_QUERY);
      await writer.flush();
    }
    await messageLoop(reader, writer, handler);
  } catch (error) {
    await sendFatal(writer, error);
  } finally {
    closeQuietly(socket);
  }
}

async function sendFatal(writer: Writer, error: unknown): Promise<void> {
  if (!(error instanceof PgError) || writer.broken) return;
  try {
    writer.push(errorResponse(error));
    await writer.flush();
  } catch {
    // The peer is gone.
  }
}

async function readStartup(reader: ByteReader, writer: Writer): Promise<StartupParameters | null> {
  for (;;) {
    const head = await reader.readExact(4);
    if (head === null) return null;
    const length = new DataView(head.buffer, head.byteOffset).getInt32(0);
    if (length < 8 || length > MAX_STARTUP_LENGTH) {
      throw new PgError("invalid startup packet length", { code: "08P01", fatal: true });
    }
    const body = await reader.readExact(length - 4);
    if (body === null) return null;
    const code = new DataView(body.buffer, body.byteOffset).getInt32(0);
    if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
      writer.push(new TextEncoder().encode("N"));
      await writer.flush();
      continue;
    }
    if (code === CANCEL_REQUEST_CODE) return null;
    if (code !== PROTOCOL_V3) {
      throw new PgError(`unsupported frontend protocol ${code >> 16}.${code & 0xffff}`, {
        code: "0A000",
        fatal: true,
      });
    }
    return parseStartupParameters(body.subarray(4));
  }
}

function parseStartupParameters(bytes: Uint8Array): StartupParameters {
  const strings = splitCStrings(bytes);
  const parameters: Record<string, string> = {};
  for (let i = 0; i + 1 < strings.length && strings[i] !== ""; i += 2) {
    parameters[strings[i]] = strings[i + 1];
  }
  return parameters;
}

async function passwordLogin<A>(
  reader: ByteReader,
  writer: Writer,
  startup: StartupParameters,
  authenticate: (password: string, startup: StartupParameters) => Promise<A>,
): Promise<A> {
  writer.push(authenticationMessage(3));
  await writer.flush();
  const message = await readMessage(reader);
  if (message === null) throw new PgError("connection closed during authentication");
  if (message.type !== "p") {
    throw new PgError(`expected password message, got '${message.type}'`, {
      code: "08P01",
      fatal: true,
    });
  }
  let body = message.body;
  if (body.length > 0 && body[body.length - 1] === 0) body = body.subarray(0, body.length - 1);
  const auth = await authenticate(new TextDecoder().decode(body), startup);
  writer.push(authenticationMessage(0));
  for (const [name, value] of PASSWORD_PARAMETER_STATUS) writer.push(parameterStatus(name, value));
  writer.push(READY_FOR_QUERY);
  await writer.flush();
  return auth;
}

function createConnection<A>(
  startup: StartupParameters,
  auth: () => A | undefined,
  socket: Deno.TcpConn,
  reader: ByteReader,
  writer: Writer,
): PgConnection<A> {
  return {
    startup,
    get auth() {
      return auth();
    },
    remoteAddr: socket.remoteAddr,
    sendRowDescription: (columns) => writer.push(rowDescription(columns)),
    sendDataRow: (values) => writer.push(dataRow(values)),
    sendCommandComplete: (tag) => writer.push(frame("C", cstring(tag))),
    sendCopyOutResponse: () => writer.push(frame("H", new Uint8Array([0, 0, 0]))),
    sendCopyBothResponse: () => writer.push(frame("W", new Uint8Array([0, 0, 0]))),
    sendCopyData: async (chunk) => {
      writer.push(frame("d", chunk));
      await writer.flush();
    },
    sendCopyDone: () => writer.push(frame("c", new Uint8Array(0))),
    flush: () => writer.flush(),
    readMessage: () => readMessage(reader),
    drop: () => closeQuietly(socket),
  };
}

/** What the message loop does after one frontend message. */
type Next = "continue" | "close";

async function messageLoop(
  reader: ByteReader,
  writer: Writer,
  handler: QueryHandler,
): Promise<void> {
  let preparedQuery = "";
  for (;;) {
    const message = await readMessage(reader);
    if (message === null) return;
    let next: Next = "continue";
    switch (message.type) {
      case "Q":
        next = await runQuery(handler, firstCString(message.body), writer);
        if (next === "continue") writer.push(READY_FOR_QUERY);
        break;
      case "P":
        preparedQuery = parseMessageQuery(message.body);
        writer.push(frame("1", new Uint8Array(0)));
        break;
      case "B":
        writer.push(frame("2", new Uint8Array(0)));
        break;
      case "D":
        writer.push(frame("t", new Uint8Array([0, 0])));
        writer.push(frame("n", new Uint8Array(0)));
        break;
      case "E":
        next = await runQuery(handler, preparedQuery, writer);
        break;
      case "S":
        writer.push(READY_FOR_QUERY);
        break;
      case "C":
        writer.push(frame("3", new Uint8Array(0)));
        break;
      case "H":
      case "d":
      case "c":
      case "f":
        break;
      case "X":
        return;
      default:
        throw new PgError(`unexpected message type '${message.type}'`, {
          code: "08P01",
          fatal: true,
        });
    }
    await writer.flush();
    if (next === "close") return;
  }
}

async function runQuery(handler: QueryHandler, query: string, writer: Writer): Promise<Next> {
  try {
    await handler(query);
    return "continue";
  } catch (error) {
    if (writer.broken) throw error;
    const pgError = error instanceof PgError
      ? error
      : new PgError(error instanceof Error ? error.message : String(error));
    writer.push(errorResponse(pgError));
    return pgError.fatal ? "close" : "continue";
  }
}

function parseMessageQuery(body: Uint8Array): string {
  const strings = splitCStrings(body);
  return strings[1] ?? "";
}

// ---------------------------------------------------------------------------
// Byte-level reading and writing

async function readMessage(reader: ByteReader): Promise<FrontendMessage | null> {
  const head = await reader.readExact(5);
  if (head === null) return null;
  const length = new DataView(head.buffer, head.byteOffset).getInt32(1);
  if (length < 4 || length > MAX_MESSAGE_LENGTH) {
    throw new PgError(`invalid message length ${length}`, { code: "08P01", fatal: true });
  }
  const body = await reader.readExact(length - 4);
  if (body === null) return null;
  return { type: String.fromCharCode(head[0]), body };
}

interface Writer {
  readonly broken: boolean;
  push(bytes: Uint8Array): void;
  flush(): Promise<void>;
}

function createWriter(socket: Deno.Conn): Writer {
  let queue: Uint8Array[] = [];
  let broken = false;
  return {
    get broken() {
      return broken;
    },
    push(bytes) {
      queue.push(bytes);
    },
    async flush() {
      if (queue.length === 0) return;
      const bytes = concatBytes(queue);
      queue = [];
      try {
        for (let offset = 0; offset < bytes.length;) {
          offset += await socket.write(bytes.subarray(offset));
        }
      } catch (error) {
        broken = true;
        throw error;
      }
    },
  };
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}
