/**
 * @module
 * How a fake pageserver sends a basebackup it could compose (reference neon-04
 * §A.3): CopyOutResponse, the tar in CopyData messages, CopyDone and
 * CommandComplete `SELECT 1` — or, when the pageserver is armed with a
 * {@link BasebackupFault}, the same stream spoiled on purpose: broken off
 * after some bytes (or after the whole tar, before CopyDone, when it is
 * shorter), or ended with an ErrorResponse after the whole tar.
 */

import type { BasebackupFault } from "./faults.ts";
import { type PgConnection, PgError } from "./pgwire.ts";

/** The largest CopyData payload sent. */
const COPY_CHUNK = 64 * 1024;

/** The connection was dropped on purpose (a {@link BasebackupFault}); nothing more is sent. */
export class ConnectionDroppedError extends Error {
  constructor(bytes: number) {
    super(`basebackup connection dropped on purpose after ${bytes} bytes`);
    this.name = "ConnectionDroppedError";
  }
}

/**
 * Streams `tar` to the client as a COPY OUT, spoiled by `fault` when one is
 * given. Rejects with {@link ConnectionDroppedError} after a drop and with a
 * {@link PgError} (which the server sends as ErrorResponse) after the tar.
 */
export async function streamBasebackup<A>(
  conn: PgConnection<A>,
  tar: ReadableStream<Uint8Array>,
  fault: BasebackupFault | null,
): Promise<void> {
  const dropAfter = fault?.kind === "drop-after-bytes" ? fault.bytes : Infinity;
  let sent = 0;
  const drop = (): never => {
    conn.drop();
    throw new ConnectionDroppedError(sent);
  };
  conn.sendCopyOutResponse();
  await conn.flush();
  const reader = tar.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (let offset = 0; offset < value.length; offset += COPY_CHUNK) {
        const chunk = value.subarray(offset, Math.min(offset + COPY_CHUNK, value.length));
        const allowed = chunk.subarray(0, Math.min(chunk.length, dropAfter - sent));
        if (allowed.length > 0) await conn.sendCopyData(allowed);
        sent += allowed.length;
        if (sent >= dropAfter) drop();
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  if (fault?.kind === "drop-after-bytes") drop();
  if (fault?.kind === "error-after-tar") throw new PgError(fault.message);
  conn.sendCopyDone();
  conn.sendCommandComplete("SELECT 1");
}
