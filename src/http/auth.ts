/**
 * @module
 * JWT authorisation of the external HTTP server, as Neon's `authorize.rs`
 * (reference neon-02 §2): bearer tokens verified against the JWK set of
 * `compute_ctl_config.jwks`, tried key by key with `kid` ignored; EdDSA, or
 * only RS256 when any key declares `alg: RS256`; `exp` checked with 60 s of
 * leeway when present, `nbf` never; then the admin-scope/audience or
 * compute-id check. `INSTANCE_ID` (Hadron) switches the whole check off.
 * A token verified once is served from a {@linkcode TokenCache} until its
 * `exp` (`token_cache.ts`); the claims check runs on every request.
 */

import type { MiddlewareHandler } from "hono";
import { compactVerify, type CryptoKey as JoseKey, importJWK, type JWK } from "jose";
import {
  ADMIN_SCOPE,
  COMPUTE_AUDIENCE,
  type ComputeClaims,
  computeClaimsSchema,
} from "../api/claims.ts";
import type { ComputeCtlConfig } from "../api/config.ts";
import { errorMessage, getLogger } from "../log.ts";
import { jsonError } from "./errors.ts";
import { createTokenCache, type TokenCache, type VerifiedToken } from "./token_cache.ts";

const log = getLogger("http");

/** The algorithms a key set can select. */
export type JwtAlgorithm = "EdDSA" | "RS256";

/** How far in the past `exp` may lie, in seconds (jsonwebtoken's default leeway). */
export const EXP_LEEWAY_SECONDS = 60;

/** The messages of every refusal, with their status codes. */
export const AUTH_ERRORS = {
  badHeader: { status: 400, message: "invalid authorization token" },
  verifyFailed: { status: 401, message: "failed to verify authorization token" },
  missingAudience: { status: 401, message: "missing audience in authorization token claims" },
  invalidAudience: { status: 401, message: "invalid audience in authorization token claims" },
  missingComputeId: { status: 403, message: "missing compute_id in authorization token claims" },
  invalidComputeId: { status: 403, message: "invalid compute ID in authorization token claims" },
} as const;

/** One of {@link AUTH_ERRORS}. */
export type AuthError = (typeof AUTH_ERRORS)[keyof typeof AUTH_ERRORS];

/** Options of {@link jwtAuth}. */
export interface JwtAuthOptions {
  /** `compute_ctl_config.jwks`, read once: keys never rotate while the process lives. */
  jwks: ComputeCtlConfig["jwks"];
  /** This compute's `--compute-id`, which non-admin tokens must name. */
  computeId: string;
  /** The `INSTANCE_ID` environment variable; when defined (even empty) nothing is checked. */
  instanceId?: string;
  /** The current time in seconds since the epoch; for tests. */
  nowSeconds?: () => number;
  /** Where verified tokens are kept; default a new cache of this middleware's own. */
  tokenCache?: TokenCache;
}

/** What a successful check leaves on the context (no handler reads it, as in Neon). */
export type AuthEnv = { Variables: { claims: ComputeClaims } };

/**
 * Returns the hono middleware guarding the external routes marked `auth`: it
 * answers 400/401/403 with `{"error": …}` as in neon-02 §2.4, or lets the
 * request through with the token's claims in `c.var.claims`.
 */
export function jwtAuth(options: JwtAuthOptions): MiddlewareHandler<AuthEnv> {
  const { computeId, instanceId, nowSeconds = () => Math.floor(Date.now() / 1000) } = options;
  if (instanceId !== undefined) {
    log.info("INSTANCE_ID is set: the external HTTP server does not check authorization tokens");
    return async (_c, next) => await next();
  }
  const algorithm = jwksAlgorithm(options.jwks.keys);
  const keys = importVerificationKeys(options.jwks.keys, algorithm);
  const keySet = keySetId(options.jwks.keys, algorithm);
  const cache = options.tokenCache ?? createTokenCache({ expLeewaySeconds: EXP_LEEWAY_SECONDS });
  return async (c, next) => {
    const token = bearerToken(c.req.header("authorization"));
    if (token === undefined) return refuse(AUTH_ERRORS.badHeader);
    const now = nowSeconds();
    let claims = cache.get(token, keySet, now);
    if (claims === undefined) {
      const verified = await verifyToken(token, await keys, algorithm, now);
      if (verified === undefined) return refuse(AUTH_ERRORS.verifyFailed);
      cache.set(token, keySet, verified, now);
      claims = verified.claims;
    }
    const problem = checkClaims(claims, computeId);
    if (problem) return refuse(problem);
    c.set("claims", claims);
    await next();
  };
}

function refuse({ status, message }: AuthError): Response {
  return jsonError(status, message);
}

/** What identifies a key set for the token cache: the algorithm and every key's public part. */
function keySetId(keys: readonly JWK[], algorithm: JwtAlgorithm): string {
  return JSON.stringify([algorithm, keys.map(publicPart)]);
}

/** RS256 when any key of the set declares `alg: "RS256"`, EdDSA otherwise. */
export function jwksAlgorithm(keys: readonly Record<string, unknown>[]): JwtAlgorithm {
  return keys.some((key) => key.alg === "RS256") ? "RS256" : "EdDSA";
}

/**
 * Imports the public part of every key for `algorithm`, in order. A key that
 * cannot be imported is skipped with a warning naming its `kid` (or its
 * position when it has none).
 */
export async function importVerificationKeys(
  keys: readonly JWK[],
  algorithm: JwtAlgorithm,
): Promise<JoseKey[]> {
  if (keys.length === 0) {
    log.warn("the JWKS has no keys: every authenticated request will be refused");
  }
  const imported: JoseKey[] = [];
  for (const [index, jwk] of keys.entries()) {
    try {
      const key = await importJWK(publicPart(jwk), algorithm);
      if (key instanceof Uint8Array) {
        throw new Error(`kty ${jwk.kty} is not usable with ${algorithm}`);
      }
      imported.push(key);
    } catch (error) {
      const name = typeof jwk.kid === "string" ? `kid ${jwk.kid}` : `#${index} (no kid)`;
      log.warn(`skipping JWK ${name}: cannot use it for ${algorithm}: ${errorMessage(error)}`);
    }
  }
  return imported;
}

/**
 * The parameters jsonwebtoken's `DecodingKey::from_jwk` reads; `use`,
 * `key_ops`, `alg` and any private part play no role in verification.
 */
function publicPart(jwk: JWK): JWK {
  switch (jwk.kty) {
    case "OKP":
      return { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
    case "RSA":
      return { kty: jwk.kty, n: jwk.n, e: jwk.e };
    case "EC":
      return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
    default:
      return { kty: jwk.kty };
  }
}

/**
 * The token of an `Authorization: Bearer <token>` value (scheme in any case,
 * then one space), or undefined when the header is missing, is another scheme,
 * or holds anything but visible ASCII: all three are a 400.
 */
export function bearerToken(header: string | undefined): string | undefined {
  const scheme = "bearer ";
  if (header === undefined || header.length <= scheme.length) return undefined;
  if (header.slice(0, scheme.length).toLowerCase() !== scheme) return undefined;
  if (!/^[\t\x20-\x7e]*$/.test(header)) return undefined;
  return header.slice(scheme.length);
}

/**
 * The claims of `token` (and its `exp`) when some key verifies its signature
 * with `algorithm`, its `exp` (if any) is not more than the leeway in the
 * past, and its claims have the expected shape; undefined otherwise.
 */
export async function verifyToken(
  token: string,
  keys: readonly JoseKey[],
  algorithm: JwtAlgorithm,
  nowSeconds: number,
): Promise<VerifiedToken | undefined> {
  for (const key of keys) {
    let payload: Uint8Array;
    try {
      ({ payload } = await compactVerify(token, key, { algorithms: [algorithm] }));
    } catch (error) {
      log.debug(`token not verified by this key: ${errorMessage(error)}`);
      continue;
    }
    return parseClaims(payload, nowSeconds);
  }
  return undefined;
}

function parseClaims(payload: Uint8Array, nowSeconds: number): VerifiedToken | undefined {
  let claims: unknown;
  try {
    claims = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    log.debug("token payload is not JSON");
    return undefined;
  }
  if (typeof claims !== "object" || claims === null || Array.isArray(claims)) return undefined;
  const rawExp = (claims as { exp?: unknown }).exp;
  let exp: number | undefined;
  if (rawExp !== undefined && rawExp !== null) {
    if (typeof rawExp !== "number" || !Number.isFinite(rawExp)) {
      log.debug("token exp is not a number");
      return undefined;
    }
    if (rawExp < nowSeconds - EXP_LEEWAY_SECONDS) {
      log.debug("token expired", { exp: rawExp, now: nowSeconds });
      return undefined;
    }
    exp = rawExp;
  }
  const parsed = computeClaimsSchema.safeParse(claims);
  if (!parsed.success) {
    log.debug(`token claims have the wrong shape: ${parsed.error.message}`);
    return undefined;
  }
  return { claims: parsed.data, exp };
}

/**
 * Why verified `claims` do not authorise a request to compute `computeId`, or
 * undefined when they do: admin tokens need `"compute"` in `aud` (their
 * `compute_id` is not looked at), other tokens need this compute's id.
 */
export function checkClaims(claims: ComputeClaims, computeId: string): AuthError | undefined {
  if (claims.scope === ADMIN_SCOPE) {
    if (claims.aud == null) return AUTH_ERRORS.missingAudience;
    if (!claims.aud.includes(COMPUTE_AUDIENCE)) return AUTH_ERRORS.invalidAudience;
    return undefined;
  }
  if (claims.compute_id == null) return AUTH_ERRORS.missingComputeId;
  if (claims.compute_id !== computeId) return AUTH_ERRORS.invalidComputeId;
  return undefined;
}
