/**
 * @module
 * The Neon communicator's control socket, `<pgdata>/neon-communicator.socket`:
 * an HTTP/1.1 server inside Postgres that `GET /autoscaling_metrics` proxies
 * to, reached with `fetch` through a `Deno.createHttpClient` whose proxy is the
 * unix socket. A socket path of 100 bytes or more is reached through a short
 * temporary symlink, since unix socket addresses are limited to about 108
 * bytes. Vanilla Postgres has no communicator, so there connecting fails.
 */

import { causeChain } from "../cause_chain.ts";
import { LN_BINARY } from "./files.ts";

/** The socket's file name inside PGDATA. */
export const COMMUNICATOR_SOCKET_NAME = "neon-communicator.socket";

/** Paths at least this long (in bytes) are connected through a symlink. */
export const MAX_DIRECT_SOCKET_PATH_BYTES = 100;

/** Directory of the temporary symlinks. */
const SYMLINK_DIR = "/tmp";

/**
 * A failed exchange with the communicator. The message is the whole cause
 * chain joined by `": "` (what Rust prints with `{:#}`), e.g.
 * `connecting to communicator control socket: No such file or directory (os error 2)`.
 */
export class CommunicatorError extends Error {
  override name = "CommunicatorError";
  constructor(context: string, cause: unknown) {
    super(causeChain(new Error(context, { cause })), { cause });
  }
}

/** The communicator's answer: status, headers and the body as a stream. */
export interface CommunicatorResponse {
  status: number;
  headers: Headers;
  /** Ends (or is cancelled) → the HTTP client and its connection are closed. */
  body: ReadableStream<Uint8Array>;
}

let symlinkCounter = 0;

/**
 * A path to connect to the unix socket at `path` with: `path` itself when it is
 * short, else a temporary symlink to it, which disposing removes (once the
 * connection exists, the link is no longer needed).
 */
async function shortSocketPath(path: string): Promise<{ path: string } & AsyncDisposable> {
  if (new TextEncoder().encode(path).length < MAX_DIRECT_SOCKET_PATH_BYTES) {
    return { path, [Symbol.asyncDispose]: () => Promise.resolve() };
  }
  const link = `${SYMLINK_DIR}/compute_ctl.short-socket.${Deno.pid}.${++symlinkCounter}`;
  await makeSymlink(path, link);
  return { path: link, [Symbol.asyncDispose]: () => Deno.remove(link).catch(() => {}) };
}

/** `Deno.symlink`, or `ln -s` when Deno may not (it needs unscoped read and write). */
async function makeSymlink(target: string, link: string): Promise<void> {
  try {
    await Deno.symlink(target, link);
    return;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) throw error;
  }
  const ln = await new Deno.Command(LN_BINARY, {
    args: ["-s", "--", target, link],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!ln.success) {
    throw new Error(`could not link ${link} to ${target}: ${new TextDecoder().decode(ln.stderr)}`);
  }
}

/** What Deno's `fetch` reports inside its `TypeError`: hyper's stage and message. */
const HYPER_ERROR = /client error \((\w+)\): (.*)$/s;

/**
 * The reference's error for a failed `fetch`: hyper's own message (what Neon,
 * which uses hyper, prints) under `connecting to …` when no connection was
 * made, else under `fetching metrics from …`.
 */
function fetchError(error: unknown): CommunicatorError {
  const innermost = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const match = innermost instanceof Error ? HYPER_ERROR.exec(innermost.message) : null;
  if (match === null) {
    return new CommunicatorError("fetching metrics from Postgres metrics service", error);
  }
  const context = match[1] === "Connect"
    ? "connecting to communicator control socket"
    : "fetching metrics from Postgres metrics service";
  return new CommunicatorError(context, new Error(match[2]));
}

/** `body` passed through; `close` runs once it ends, fails or is cancelled. */
function closingWith(
  body: ReadableStream<Uint8Array> | null,
  close: () => void,
): ReadableStream<Uint8Array> {
  let closed = false;
  const closeOnce = () => {
    if (closed) return;
    closed = true;
    close();
  };
  const reader = body?.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await reader?.read() ?? { done: true as const, value: undefined };
        if (next.done) {
          closeOnce();
          controller.close();
        } else controller.enqueue(next.value);
      } catch (error) {
        closeOnce();
        controller.error(error);
      }
    },
    async cancel(reason) {
      try {
        await reader?.cancel(reason);
      } finally {
        closeOnce();
      }
    },
  });
}

/**
 * `GET /autoscaling_metrics` from the communicator of the Postgres in
 * `pgdata`: the response's status, headers and streamed body (the HTTP client
 * is closed with the body). Throws a {@linkcode CommunicatorError} when
 * connecting or the exchange fails.
 */
export async function fetchAutoscalingMetrics(pgdata: string): Promise<CommunicatorResponse> {
  const socket = `${pgdata}/${COMMUNICATOR_SOCKET_NAME}`;
  await using link = await shortSocketPath(socket).catch((error) => {
    throw new CommunicatorError("connecting to communicator control socket", error);
  });
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: link.path } });
  let response: Response;
  try {
    response = await fetch("http://localhost/autoscaling_metrics", { client });
  } catch (error) {
    client.close();
    throw fetchError(error);
  }
  return {
    status: response.status,
    headers: response.headers,
    body: closingWith(response.body, () => client.close()),
  };
}
