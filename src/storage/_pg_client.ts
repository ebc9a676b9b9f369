/**
 * @module
 * Ending a storage-side libpq session (pageserver, safekeeper) without ever
 * hanging on a peer that stopped answering.
 */

import type { Socket } from "node:net";
import type pg from "pg";

/**
 * Ends `client`: politely (Terminate message) when `graceful`, otherwise by
 * destroying the socket first; either way the socket is gone within a second.
 */
export async function closeClient(
  client: pg.Client,
  socket: Socket,
  { graceful = true }: { graceful?: boolean } = {},
): Promise<void> {
  if (!graceful) socket.destroy();
  const timer = setTimeout(() => socket.destroy(), 1000);
  try {
    await client.end();
  } catch {
    // Already broken: the socket is destroyed below.
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}
