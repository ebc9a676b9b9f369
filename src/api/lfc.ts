/**
 * @module
 * The Local File Cache (LFC) operations' states as `/lfc/prewarm` and
 * `/lfc/offload` report them: tagged unions keyed on `status` (snake_case),
 * with timings in whole milliseconds.
 */

import { z } from "zod";

const u32 = z.number().int().min(0).max(0xffff_ffff);
const i32 = z.number().int().min(-0x8000_0000).max(0x7fff_ffff);

/** `GET /lfc/prewarm`: where the last (or running) prewarm is. Starts at `not_prewarmed`. */
export const lfcPrewarmStateSchema = z.discriminatedUnion("status", [
  z.object({ status: z.literal("not_prewarmed") }),
  z.object({ status: z.literal("prewarming") }),
  z.object({
    status: z.literal("completed"),
    total: i32,
    prewarmed: i32,
    skipped: i32,
    state_download_time_ms: u32,
    uncompress_time_ms: u32,
    prewarm_time_ms: u32,
  }),
  z.object({ status: z.literal("failed"), error: z.string() }),
  /** Endpoint storage had no saved state (404). */
  z.object({ status: z.literal("skipped") }),
  z.object({ status: z.literal("cancelled") }),
]);
export type LfcPrewarmState = z.infer<typeof lfcPrewarmStateSchema>;

/** `GET /lfc/offload`: where the last (or running) offload is. Starts at `not_offloaded`. */
export const lfcOffloadStateSchema = z.discriminatedUnion("status", [
  z.object({ status: z.literal("not_offloaded") }),
  z.object({ status: z.literal("offloading") }),
  z.object({
    status: z.literal("completed"),
    state_query_time_ms: u32,
    compress_time_ms: u32,
    state_upload_time_ms: u32,
  }),
  z.object({ status: z.literal("failed"), error: z.string() }),
  /** Postgres returned no LFC state. */
  z.object({ status: z.literal("skipped") }),
]);
export type LfcOffloadState = z.infer<typeof lfcOffloadStateSchema>;

/** `POST /lfc/prewarm?from_endpoint=<id>`: prewarm from another endpoint's saved state. */
export const prewarmQuerySchema = z.object({ from_endpoint: z.string() });
