/**
 * @module
 * The `acked` table the durability tests write and read back: rows committed
 * one at a time (each acknowledged), the ids present, and the timeline a
 * compute runs on.
 */

import { type Lsn, parseLsn } from "../../src/api/lsn.ts";
import { query } from "../integration/_helpers.ts";

/** Inserts rows `from`…`from+count-1`, one commit each; returns the insert LSN after the last. */
export async function insertRows(url: string, from: number, count: number): Promise<Lsn> {
  for (let id = from; id < from + count; id++) {
    await query(url, "INSERT INTO acked (id, body) VALUES ($1, repeat('x', 200))", [id]);
  }
  const [row] = await query<{ lsn: string }>(
    url,
    "SELECT pg_current_wal_insert_lsn()::text AS lsn",
  );
  return parseLsn(row.lsn);
}

/** The ids in `acked`, in order. */
export async function ids(url: string): Promise<number[]> {
  const rows = await query<{ id: number }>(url, "SELECT id FROM acked ORDER BY id");
  return rows.map((row) => row.id);
}

/** The timeline of the compute's last checkpoint (1 unless something forked it). */
export async function timelineOf(url: string): Promise<number> {
  const [row] = await query<{ tli: number }>(
    url,
    "SELECT timeline_id AS tli FROM pg_control_checkpoint()",
  );
  return row.tli;
}

/** `[from, to)`. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}
