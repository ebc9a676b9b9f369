/**
 * @module
 * The write probe behind `POST /check_writability`: upsert row 1 of
 * `public.health_check` in the system database. A full disk (SQLSTATE 53100)
 * still counts as writable, as in Neon: the compute itself is fine, the
 * tenant is out of space.
 */

import { getLogger } from "../log.ts";
import { withClient } from "./connect.ts";

const log = getLogger("postgres");

/** The upsert; the table is created by the spec apply (CreateAvailabilityCheck). */
export const HEALTH_CHECK_UPSERT_SQL =
  "INSERT INTO public.health_check VALUES (1, pg_catalog.now()) " +
  "ON CONFLICT (id) DO UPDATE SET updated_at = pg_catalog.now()";

/** SQLSTATE `disk_full`. */
export const DISK_FULL = "53100";

/**
 * Runs the upsert as application `compute_ctl:availability_checker`. Resolves
 * when it succeeded or failed with `disk_full`; otherwise throws the driver's
 * error (or `expected 1 result, got N`).
 */
export async function upsertHealthCheck(connstr: string): Promise<void> {
  await withClient(
    connstr,
    { applicationName: "compute_ctl:availability_checker" },
    async (client) => {
      try {
        const result: unknown = await client.query(HEALTH_CHECK_UPSERT_SQL);
        const results = Array.isArray(result) ? result.length : 1;
        if (results !== 1) throw new Error(`expected 1 result, got ${results}`);
      } catch (error) {
        if ((error as { code?: string }).code !== DISK_FULL) throw error;
        log.warn("tenant disk is full; the write check counts as passed");
      }
    },
  );
}
