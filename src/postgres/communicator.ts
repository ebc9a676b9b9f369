/**
 * @module
 * The Neon communicator's control socket, `<pgdata>/neon-communicator.socket`:
 * an HTTP/1.1 server inside Postgres that `GET /autoscaling_metrics` proxies
 * to. A socket path of 100 bytes or more is reached through a short temporary
 * symlink, since unix socket addresses are limited to about 108 bytes. Vanilla
 * Postgres has no communicator, so there connecting fails.
 */

import { causeChain } from "../cause_chain.ts";
import { LN_BINARY } from "./files.ts";
import { http1Get, type Http1Response } from "./_http1.ts";

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

let symlinkCounter = 0;

/** Connects to the unix socket at `path`, through a temporary symlink if the path is long. */
export async function connectUnixSocket(path: string): Promise<Deno.UnixConn> {
  if (new TextEncoder().encode(path).length < MAX_DIRECT_SOCKET_PATH_BYTES) {
    return await Deno.connect({ transport: "unix", path });
  }
  const link = `${SYMLINK_DIR}/compute_ctl.short-socket.${Deno.pid}.${++symlinkCounter}`;
  await makeSymlink(path, link);
  try {
    return await Deno.connect({ transport: "unix", path: link });
  } finally {
    await Deno.remove(link).catch(() => {});
  }
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

/**
 * `GET /autoscaling_metrics` from the communicator of the Postgres in
 * `pgdata`: the response's status, headers and streamed body. Throws a
 * {@linkcode CommunicatorError} when connecting or the exchange fails.
 */
export async function fetchAutoscalingMetrics(pgdata: string): Promise<Http1Response> {
  let conn: Deno.UnixConn;
  try {
    conn = await connectUnixSocket(`${pgdata}/${COMMUNICATOR_SOCKET_NAME}`);
  } catch (error) {
    throw new CommunicatorError("connecting to communicator control socket", error);
  }
  try {
    return await http1Get(conn, "/autoscaling_metrics", "localhost");
  } catch (error) {
    conn.close();
    throw new CommunicatorError("fetching metrics from Postgres metrics service", error);
  }
}
