/**
 * @module
 * Whether Postgres accepts connections, asked in-process the way libpq's
 * `PQping` (and so `pg_isready`) decides, for installs without `pg_isready`:
 * send a startup packet and read the first answer. An authentication request
 * or any error other than "cannot connect now" (SQLSTATE 57P03: starting up,
 * shutting down, or in recovery without hot standby) means the server is up
 * and accepting connections; 57P03 means it is rejecting them; no connection,
 * no answer in time, or an answer that is neither means no response. As with
 * `pg_isready`, the server needs no password for this and gives the attempt
 * no connection slot of its own.
 */

/** `pg_isready`'s three outcomes: exit codes 0, 1 and 2. */
export type PingState = "accepting" | "rejecting" | "no_response";

/** The outcome, with what the server (or the socket) said. */
export interface PingResult {
  state: PingState;
  /** The server's message, or why nothing was heard. */
  detail?: string;
}

/** Where and as whom to ask. */
export interface PingTarget {
  /** Host name or address, or a unix-socket directory (`/…`); default `localhost`. */
  host?: string;
  port: number;
  user: string;
  database: string;
}

/** `pg_isready`'s default: three seconds to connect and hear back. */
export const PING_TIMEOUT_MS = 3_000;

/** SQLSTATE `cannot_connect_now`. */
const CANNOT_CONNECT_NOW = "57P03";

/** Protocol 3.0. */
const PROTOCOL_VERSION = 196608;

/** The startup message for `target`: length, protocol version, then name/value pairs. Pure. */
export function startupMessage({ user, database }: Pick<PingTarget, "user" | "database">) {
  const encoder = new TextEncoder();
  const pairs = encoder.encode(
    `user\0${user}\0database\0${database}\0application_name\0compute_ctl:liveness\0\0`,
  );
  const message = new Uint8Array(8 + pairs.length);
  const view = new DataView(message.buffer);
  view.setInt32(0, message.length);
  view.setInt32(4, PROTOCOL_VERSION);
  message.set(pairs, 8);
  return message;
}

/**
 * What the first message of the server's answer means, or undefined when
 * `bytes` does not hold a complete message yet. Notices and protocol
 * negotiation are skipped. Pure.
 */
export function classifyAnswer(bytes: Uint8Array): PingResult | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset + 5 <= bytes.length) {
    const type = String.fromCharCode(bytes[offset]);
    const length = view.getInt32(offset + 1);
    const end = offset + 1 + length;
    if (length < 4) return { state: "no_response", detail: "malformed answer" };
    if (end > bytes.length) return undefined;
    if (type === "R") return { state: "accepting" };
    if (type === "E") {
      const fields = errorFields(bytes.subarray(offset + 5, end));
      const detail = fields.get("M");
      return fields.get("C") === CANNOT_CONNECT_NOW
        ? { state: "rejecting", detail }
        : { state: "accepting", detail };
    }
    if (type !== "N" && type !== "v") {
      return { state: "no_response", detail: `unexpected message ${JSON.stringify(type)}` };
    }
    offset = end;
  }
  return undefined;
}

/** Whether the first message (after notices) is AuthenticationOk. */
function isAuthenticationOk(bytes: Uint8Array): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset + 9 <= bytes.length) {
    const type = String.fromCharCode(bytes[offset]);
    if (type === "R") return view.getInt32(offset + 5) === 0;
    if (type !== "N" && type !== "v") return false;
    offset += 1 + view.getInt32(offset + 1);
  }
  return false;
}

/** The fields of an ErrorResponse body: code letter → text. */
function errorFields(body: Uint8Array): Map<string, string> {
  const fields = new Map<string, string>();
  const decoder = new TextDecoder();
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const code = String.fromCharCode(body[offset]);
    const end = body.indexOf(0, offset + 1);
    if (end < 0) break;
    fields.set(code, decoder.decode(body.subarray(offset + 1, end)));
    offset = end + 1;
  }
  return fields;
}

/**
 * Asks the Postgres at `target` whether it accepts connections, within
 * `timeoutMs`. Never throws: a failure to connect is `no_response`.
 */
export async function pingPostgres(
  target: PingTarget,
  { timeoutMs = PING_TIMEOUT_MS }: { timeoutMs?: number } = {},
): Promise<PingResult> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<PingResult>((resolve) => {
    timer = setTimeout(
      () => resolve({ state: "no_response", detail: `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
  let finished = false;
  let open: Deno.Conn | undefined;
  const asked = (async (): Promise<PingResult> => {
    let conn: Deno.Conn;
    try {
      conn = await connect(target);
    } catch (error) {
      return { state: "no_response", detail: (error as Error).message };
    }
    open = conn;
    try {
      // A connection made after the timeout is closed unused.
      return finished ? { state: "no_response" } : await ask(conn, target);
    } finally {
      closeQuietly(conn);
    }
  })();
  try {
    return await Promise.race([asked, timedOut]);
  } finally {
    finished = true;
    clearTimeout(timer);
    // Ends a read still waiting for the server.
    closeQuietly(open);
  }
}

function connect({ host, port }: PingTarget): Promise<Deno.Conn> {
  if (host?.startsWith("/")) {
    return Deno.connect({
      transport: "unix",
      path: `${host.replace(/\/+$/, "")}/.s.PGSQL.${port}`,
    });
  }
  return Deno.connect({ hostname: host ?? "localhost", port });
}

async function ask(conn: Deno.Conn, target: PingTarget): Promise<PingResult> {
  try {
    await writeAll(conn, startupMessage(target));
    let received = new Uint8Array(0);
    const chunk = new Uint8Array(4096);
    while (true) {
      const read = await conn.read(chunk);
      if (read === null) {
        return { state: "no_response", detail: "the server closed the connection" };
      }
      const grown = new Uint8Array(received.length + read);
      grown.set(received);
      grown.set(chunk.subarray(0, read), received.length);
      received = grown;
      const answer = classifyAnswer(received);
      if (answer === undefined) continue;
      // Authenticated at once (trust): end the session cleanly. A password request is left
      // unanswered, as libpq leaves it without a password: the server ends quietly at EOF.
      if (isAuthenticationOk(received)) await writeAll(conn, TERMINATE).catch(() => {});
      return answer;
    }
  } catch (error) {
    return { state: "no_response", detail: (error as Error).message };
  }
}

/** The Terminate message. */
const TERMINATE = new Uint8Array([0x58, 0, 0, 0, 4]);

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // already closed
  }
}
