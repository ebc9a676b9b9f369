/**
 * @module
 * `POST /promote`: the request (`PromoteConfig`: the spec the promoted compute
 * runs and the primary's last flushed LSN) and the answer (`PromoteState`).
 */

import { z } from "zod";
import { lsnSchema } from "./lsn.ts";
import { computeSpecSchema } from "./spec.ts";

const u32 = z.number().int().min(0).max(0xffff_ffff);

/** The request body; both fields required, the LSN as an `"X/Y"` string. */
export const promoteConfigSchema = z.object({
  spec: computeSpecSchema,
  wal_flush_lsn: lsnSchema,
});
export type PromoteConfig = z.infer<typeof promoteConfigSchema>;

/** The outcome: 200 with `completed`, 500 with `failed`. `not_promoted` is never answered. */
export const promoteStateSchema = z.discriminatedUnion("status", [
  z.object({ status: z.literal("not_promoted") }),
  z.object({
    status: z.literal("completed"),
    lsn_wait_time_ms: u32,
    pg_promote_time_ms: u32,
    reconfigure_time_ms: u32,
  }),
  z.object({ status: z.literal("failed"), error: z.string() }),
]);
export type PromoteState = z.infer<typeof promoteStateSchema>;
