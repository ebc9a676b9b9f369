/**
 * @module
 * The Local File Cache functions of the Neon extension: `neon.prewarm_local_cache(bytea)`
 * and `neon.get_prewarm_info()` to load a saved state, `neon.get_local_cache_state()`
 * to export one. Vanilla Postgres has no `neon` schema, so there these fail
 * with Postgres's own error, which the caller reports. Errors read as a cause
 * chain: `<what we were doing>: <why it failed>`.
 */

import pg from "pg";
import { errorMessage } from "../log.ts";
import { clientConfig } from "./connect.ts";

/** `application_name` of these sessions. */
export const LFC_APPLICATION_NAME = "compute_ctl:lfc";

/** What `neon.get_prewarm_info()` reports after a prewarm. */
export interface PrewarmInfo {
  total: number;
  prewarmed: number;
  skipped: number;
}

function withContext(context: string, error: unknown): Error {
  return new Error(`${context}: ${errorMessage(error)}`, { cause: error });
}

async function connect(connstr: string): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(connstr, { applicationName: LFC_APPLICATION_NAME }));
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw withContext("connecting to postgres", error);
  }
  return client;
}

/**
 * Loads a (decompressed) LFC state into Postgres and reads the prewarm counts.
 * When `signal` aborts during the load, the query is cancelled and the result
 * is `"cancelled"`.
 */
export async function loadLfcState(
  connstr: string,
  state: Uint8Array,
  signal?: AbortSignal,
): Promise<PrewarmInfo | "cancelled"> {
  const client = await connect(connstr);
  try {
    const pid = (await client.query<{ pid: number }>("SELECT pg_catalog.pg_backend_pid() AS pid"))
      .rows[0].pid;
    const cancel = () => {
      withCancelSession(connstr, pid).catch(() => {});
    };
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      await client.query("select neon.prewarm_local_cache($1)", [state]);
    } catch (error) {
      if (signal?.aborted) return "cancelled";
      throw withContext("loading LFC state into postgres", error);
    } finally {
      signal?.removeEventListener("abort", cancel);
    }
    if (signal?.aborted) return "cancelled";
    let row: unknown[];
    try {
      const result = await client.query({
        text: "select * from neon.get_prewarm_info()",
        rowMode: "array",
      });
      row = (result.rows[0] as unknown[] | undefined) ?? [];
    } catch (error) {
      throw withContext("querying prewarm info", error);
    }
    // Like the reference, a missing or unreadable column counts as 0.
    const count = (index: number) => Number(row[index] ?? 0) || 0;
    return { total: count(0), prewarmed: count(1), skipped: count(2) };
  } finally {
    await client.end().catch(() => {});
  }
}

async function withCancelSession(connstr: string, pid: number): Promise<void> {
  const client = await connect(connstr);
  try {
    await client.query("SELECT pg_catalog.pg_cancel_backend($1)", [pid]);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Exports the LFC state: its bytes, or null when the cache is empty. */
export async function readLfcState(connstr: string): Promise<Uint8Array | null> {
  const client = await connect(connstr);
  try {
    let value: unknown;
    try {
      const result = await client.query({
        text: "select neon.get_local_cache_state()",
        rowMode: "array",
      });
      value = (result.rows[0] as unknown[] | undefined)?.[0];
    } catch (error) {
      throw withContext("querying LFC state", error);
    }
    if (value === null || value === undefined) return null;
    if (!(value instanceof Uint8Array)) {
      throw new Error("deserializing LFC state: expected bytea");
    }
    return value;
  } finally {
    await client.end().catch(() => {});
  }
}
