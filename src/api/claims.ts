/**
 * @module
 * Claims of the JWTs that authorise calls to the external HTTP server. Unknown
 * claims (`exp`, `iat`, `sub`, …) are ignored; any scope other than the admin one
 * and an `aud` that is not an array make the token invalid (a 401), as in Neon.
 */

import { z } from "zod";

/** The audience an admin token must carry in its `aud` array. */
export const COMPUTE_AUDIENCE = "compute";

/** The only scope that exists. */
export const ADMIN_SCOPE = "compute_ctl:admin";

export const computeClaimsSchema = z.object({
  compute_id: z.string().nullish(),
  scope: z.literal(ADMIN_SCOPE).nullish(),
  aud: z.array(z.string()).nullish(),
});
export type ComputeClaims = z.infer<typeof computeClaimsSchema>;
