/**
 * @module
 * `POST /failpoints` (testing): a list of failpoint names with their `fail`
 * action strings (`"return(3)"`, `"50%sleep(100)->off"`, `"exit"`, …). The key
 * is `actions`, plural.
 */

import { z } from "zod";

/** One failpoint to configure. */
export const failpointConfigSchema = z.object({ name: z.string(), actions: z.string() });
export type FailpointConfig = z.infer<typeof failpointConfigSchema>;

/** The request body: applied in order; the first invalid entry stops the rest. */
export const configureFailpointsRequestSchema = z.array(failpointConfigSchema);
