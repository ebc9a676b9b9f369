/**
 * @module
 * The client side of a PostgreSQL replication connection, as small as a fake
 * safekeeper needs: connect over TCP with `replication=true`, trust or
 * cleartext-password login, simple queries (`IDENTIFY_SYSTEM`,
 * `CREATE_REPLICATION_SLOT`), and the CopyBoth stream `START_REPLICATION` opens.
 *
 * Why not `npm:pg`: a walreceiver must read CopyData while it writes standby
 * status updates on the same socket, and must be able to drop the connection at
 * once (a killed safekeeper); a few framed messages over `Deno.connect` do both
 * without adapting a Node stream. With `replication: false` the same client
 * opens a normal session (the emulated Neon extension's pagestream probe).
 */

import { concatBytes, createByteReader, cstring, frame, int32, splitCStrings } from "./_wire.ts";

const PROTOCOL_V3 = 196608;
const MAX_MESSAGE_LENGTH = 256 * 1024 * 1024;
const decoder = new TextDecoder();

/** An ErrorResponse from the server; `code` is its SQLSTATE. */
export class PgServerError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = "PgServerError";
    this.code = code;
  }
}

/** Options of {@linkcode connectReplication}. */
export interface ReplicationConnectOptions {
  host: string;
  port: number;
  user: string;
  applicationName: string;
  /** `options` startup parameter, e.g. `-c timeline_id=… tenant_id=…`. */
  options?: string;
  /** Sent when the server asks for a cleartext password. */
  password?: string;
  /** Gives up connecting (and logging in) after this long; default 5 s. */
  connectTimeoutMs?: number;
  /** False opens a normal session (no `replication` parameter); default true. */
  replication?: boolean;
  /** The `database` startup parameter; default `replication`, or the user for a normal session. */
  database?: string;
}

/** What a simple query returned: column names, text rows and the command tag. */
export interface QueryResult {
  columns: string[];
  rows: (string | null)[][];
  tag: string;
}

/** One open replication connection. `close()` drops it at once. */
export interface ReplicationConnection extends Disposable {
  query(sql: string): Promise<QueryResult>;
  /** Sends `sql` (a `START_REPLICATION …`) and resolves once CopyBoth has begun. */
  startCopyBoth(sql: string): Promise<void>;
  /** The next CopyData payload of the stream; null once the server ended it. */
  readCopyData(): Promise<Uint8Array | null>;
  sendCopyData(payload: Uint8Array): Promise<void>;
  readonly closed: boolean;
  close(): void;
}

/**
 * Opens a physical replication connection (`replication=true`, unless the
 * options ask for a normal session) and logs in.
 * Rejects with {@linkcode PgServerError} when the server refuses.
 */
export async function connectReplication(
  options: ReplicationConnectOptions,
): Promise<ReplicationConnection> {
  const timeoutMs = options.connectTimeoutMs ?? 5_000;
  const socket = await withTimeout(
    Deno.connect({ hostname: options.host, port: options.port }),
    timeoutMs,
    `connect to ${options.host}:${options.port}`,
    (conn) => conn.close(),
  );
  const connection = createConnection(socket);
  try {
    await withTimeout(login(connection, options), timeoutMs, "replication login");
    return connection;
  } catch (error) {
    connection.close();
    throw error;
  }
}

interface Message {
  type: string;
  body: Uint8Array;
}

interface Internals extends ReplicationConnection {
  write(bytes: Uint8Array): Promise<void>;
  readMessage(): Promise<Message | null>;
}

function createConnection(socket: Deno.TcpConn): Internals {
  socket.setNoDelay(true);
  const { readExact } = createByteReader(socket, 256 * 1024);
  let closed = false;

  const readMessage = async (): Promise<Message | null> => {
    const head = await readExact(5);
    if (head === null) return null;
    const length = new DataView(head.buffer).getInt32(1);
    if (length < 4 || length > MAX_MESSAGE_LENGTH) {
      throw new Error(`replication connection: invalid message length ${length}`);
    }
    const body = await readExact(length - 4);
    if (body === null) return null;
    return { type: String.fromCharCode(head[0]), body };
  };

  const write = async (bytes: Uint8Array) => {
    if (closed) throw new Error("replication connection is closed");
    for (let offset = 0; offset < bytes.length;) {
      offset += await socket.write(bytes.subarray(offset));
    }
  };

  const close = () => {
    if (closed) return;
    closed = true;
    try {
      socket.close();
    } catch {
      // already closed
    }
  };

  /** Reads until ReadyForQuery, collecting one result; throws the server's error. */
  const query = async (sql: string): Promise<QueryResult> => {
    await write(frame("Q", cstring(sql)));
    const result: QueryResult = { columns: [], rows: [], tag: "" };
    let failure: PgServerError | undefined;
    for (;;) {
      const message = await readMessage();
      if (message === null) throw new Error("replication connection closed during a query");
      switch (message.type) {
        case "T":
          result.columns = parseRowDescription(message.body);
          break;
        case "D":
          result.rows.push(parseDataRow(message.body));
          break;
        case "C":
          result.tag = splitCStrings(message.body)[0] ?? "";
          break;
        case "E":
          failure = parseError(message.body);
          break;
        case "Z":
          if (failure) throw failure;
          return result;
      }
    }
  };

  const startCopyBoth = async (sql: string) => {
    await write(frame("Q", cstring(sql)));
    for (;;) {
      const message = await readMessage();
      if (message === null) throw new Error("replication connection closed before streaming");
      if (message.type === "W") return;
      if (message.type === "E") {
        const error = parseError(message.body);
        // The server follows an error with ReadyForQuery; the caller closes anyway.
        throw error;
      }
    }
  };

  const readCopyData = async (): Promise<Uint8Array | null> => {
    for (;;) {
      const message = await readMessage();
      if (message === null) return null;
      if (message.type === "d") return message.body;
      if (message.type === "c" || message.type === "Z") return null;
      if (message.type === "E") throw parseError(message.body);
    }
  };

  return {
    query,
    startCopyBoth,
    readCopyData,
    sendCopyData: (payload) => write(frame("d", payload)),
    get closed() {
      return closed;
    },
    close,
    [Symbol.dispose]: close,
    write,
    readMessage,
  };
}

async function login(connection: Internals, options: ReplicationConnectOptions): Promise<void> {
  const replication = options.replication ?? true;
  const params: [string, string][] = [
    ["user", options.user],
    ["database", options.database ?? (replication ? "replication" : options.user)],
    ["application_name", options.applicationName],
  ];
  if (replication) params.push(["replication", "true"]);
  if (options.options) params.push(["options", options.options]);
  const body = concatBytes([
    int32(PROTOCOL_V3),
    ...params.flatMap(([key, value]) => [cstring(key), cstring(value)]),
    new Uint8Array([0]),
  ]);
  await connection.write(concatBytes([int32(body.length + 4), body]));
  for (;;) {
    const message = await connection.readMessage();
    if (message === null) throw new Error("server closed the connection during login");
    if (message.type === "E") throw parseError(message.body);
    if (message.type === "Z") return;
    if (message.type !== "R") continue;
    const code = new DataView(message.body.buffer).getInt32(0);
    if (code === 0) continue;
    if (code === 3 && options.password !== undefined) {
      await connection.write(frame("p", cstring(options.password)));
      continue;
    }
    throw new Error(`unsupported authentication request ${code} (only trust and cleartext)`);
  }
}

async function withTimeout<T>(
  work: Promise<T>,
  timeoutMs: number,
  what: string,
  onLate?: (value: T) => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`${what} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  work.then((value) => timedOut && onLate?.(value), () => {});
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function parseRowDescription(body: Uint8Array): string[] {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const count = view.getInt16(0);
  const columns: string[] = [];
  let offset = 2;
  for (let i = 0; i < count; i++) {
    const end = body.indexOf(0, offset);
    columns.push(decoder.decode(body.subarray(offset, end)));
    offset = end + 1 + 18;
  }
  return columns;
}

function parseDataRow(body: Uint8Array): (string | null)[] {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const count = view.getInt16(0);
  const values: (string | null)[] = [];
  let offset = 2;
  for (let i = 0; i < count; i++) {
    const length = view.getInt32(offset);
    offset += 4;
    if (length < 0) {
      values.push(null);
    } else {
      values.push(decoder.decode(body.subarray(offset, offset + length)));
      offset += length;
    }
  }
  return values;
}

function parseError(body: Uint8Array): PgServerError {
  let message = "unknown error";
  let code = "XX000";
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const field = String.fromCharCode(body[offset]);
    const end = body.indexOf(0, offset + 1);
    const value = decoder.decode(body.subarray(offset + 1, end));
    if (field === "M") message = value;
    if (field === "C") code = value;
    offset = end + 1;
  }
  return new PgServerError(message, code);
}
