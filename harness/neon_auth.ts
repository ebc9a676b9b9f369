/**
 * @module
 * Neon's storage authentication (reference neon-04 §A.1): the libpq password is
 * an EdDSA JWT whose claims name a scope and, for the `tenant` scope, the
 * tenant. The fake pageserver and safekeepers check it at login
 * ({@linkcode jwtAuthenticator}) and per command ({@linkcode checkTenantPermission}).
 */

import { importJWK, type JWK, jwtVerify } from "jose";
import { PgError } from "./pgwire.ts";

/** Scopes Neon's claims may carry (reference §A.1). */
export const NEON_SCOPES = [
  "tenant",
  "tenantendpoint",
  "pageserverapi",
  "safekeeperdata",
  "generations_api",
  "admin",
  "infra",
  "scrubber",
  "controller_peer",
] as const;

/** The claims of a Neon storage JWT. */
export interface NeonClaims {
  scope: (typeof NEON_SCOPES)[number];
  tenant_id?: string;
  endpoint_id?: string;
}

/** The message Neon sends for every JWT failure, at login or per command. */
export const JWT_ERROR_MESSAGE = "JWT authentication error";

/**
 * Returns an `authenticate` callback for `startPgServer` that verifies the
 * password as an EdDSA (Ed25519) JWT signed by `publicKey` and returns its claims.
 * A bad token, an unknown scope, or a `tenant` scope without `tenant_id` is refused
 * with ErrorResponse `JWT authentication error` (XX000) and a disconnect.
 */
export function jwtAuthenticator(
  publicKey: CryptoKey | JWK,
): (password: string) => Promise<NeonClaims> {
  const key = publicKey instanceof CryptoKey
    ? Promise.resolve(publicKey)
    : importJWK(publicKey, "EdDSA");
  return async (password) => {
    try {
      const { payload } = await jwtVerify(password, await key, {
        algorithms: ["EdDSA", "Ed25519"],
      });
      return claimsFromPayload(payload);
    } catch {
      throw new PgError(JWT_ERROR_MESSAGE, { fatal: true });
    }
  };
}

function claimsFromPayload(payload: Record<string, unknown>): NeonClaims {
  const { scope, tenant_id: tenantId, endpoint_id: endpointId } = payload;
  if (!NEON_SCOPES.includes(scope as NeonClaims["scope"])) throw new Error("bad scope");
  if (tenantId !== undefined && typeof tenantId !== "string") throw new Error("bad tenant_id");
  if (scope === "tenant" && tenantId === undefined) throw new Error("tenant scope without id");
  const claims: NeonClaims = { scope: scope as NeonClaims["scope"] };
  if (tenantId !== undefined) claims.tenant_id = tenantId;
  if (typeof endpointId === "string" && endpointId !== "") claims.endpoint_id = endpointId;
  return claims;
}

/**
 * Throws ErrorResponse `JWT authentication error` unless `claims` may act on
 * `tenantId`: a `tenant` scope with that id, or the service's own super-scope
 * (`pageserverapi` for pageservers, `safekeeperdata` for safekeepers). With no
 * claims (trust mode) everything is allowed.
 */
export function checkTenantPermission(
  claims: NeonClaims | undefined,
  tenantId: string,
  superScope: NeonClaims["scope"],
): void {
  if (claims === undefined || claims.scope === superScope) return;
  if (claims.scope === "tenant" && claims.tenant_id === tenantId) return;
  throw new PgError(JWT_ERROR_MESSAGE);
}
