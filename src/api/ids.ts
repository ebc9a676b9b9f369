/**
 * @module
 * Tenant and timeline ids as Neon writes them: 16 bytes as 32 hexadecimal
 * digits. Either case is accepted, as Neon's hex decoding accepts it; the
 * canonical form (what the manager stores and sends) is lower case.
 */

import { z } from "zod";

/**
 * 32 hexadecimal digits, either case. Spelled out without the `i` flag, since
 * JSON Schema (and so the OpenAPI document) has no regex flags.
 */
export const HEX_ID_PATTERN: RegExp = /^[0-9a-fA-F]{32}$/;

/** Whether `text` is a tenant or timeline id (32 hex digits, either case). */
export function isHexId(text: string): boolean {
  return HEX_ID_PATTERN.test(text);
}

/** zod: a tenant or timeline id, lower-cased; the error names `what` (`tenant id`). */
export function hexIdSchema(what: string) {
  return z.string().regex(HEX_ID_PATTERN, `invalid ${what}: expected 32 hex characters`)
    .transform((id) => id.toLowerCase());
}
