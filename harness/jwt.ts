/**
 * @module
 * The keys and tokens of the harness, as `neon_local` makes them (reference
 * neon-04 §C.6, neon-02 §2): one key pair per cluster, its public half as the
 * one JWK of every compute's `compute_ctl_config.jwks`, and tokens signed with
 * the private half: compute-scoped (`{compute_id}`) for most calls, admin
 * (`aud: ["compute"]`, scope `compute_ctl:admin`) for `/terminate`. Tokens carry
 * no `exp`, like neon_local's.
 *
 * ```ts
 * const jwt = await createJwtIssuer();
 * const token = await jwt.signComputeToken("compute-1");
 * ```
 */

import {
  type CryptoKey as JoseKey,
  exportJWK,
  exportPKCS8,
  exportSPKI,
  generateKeyPair,
  type JWTPayload,
  SignJWT,
} from "jose";
import { ADMIN_SCOPE, COMPUTE_AUDIENCE } from "../src/api/claims.ts";
import type { JsonObject } from "./control_plane.ts";

/** The signature algorithms the compute accepts. */
export type JwtAlgorithm = "EdDSA" | "RS256";

/** A key pair that signs tokens, and the JWK a compute verifies them with. */
export interface JwtIssuer {
  readonly algorithm: JwtAlgorithm;
  /** The public JWK for `compute_ctl_config.jwks.keys`. */
  readonly publicJwk: JsonObject;
  /** The private key, PKCS#8 PEM. */
  readonly privateKeyPem: string;
  /** A token for one compute: `{compute_id}`. */
  signComputeToken(computeId: string): Promise<string>;
  /** An admin token: `{aud: ["compute"], scope: "compute_ctl:admin", compute_id: null}`. */
  signAdminToken(): Promise<string>;
  /** A token with exactly `claims`, checked or not (e.g. an old `exp`, `aud` as a string). */
  sign(claims: Record<string, unknown>): Promise<string>;
}

/**
 * Generates a key pair and returns its issuer. EdDSA (the default) gives the
 * Ed25519 JWK neon_local writes (`kty` OKP, `crv` Ed25519, `alg` EdDSA, `use`
 * sig, `key_ops` [verify], `kid` = base64url SHA-256 of the raw public key);
 * RS256 a 2048-bit RSA JWK with `alg` RS256, whose presence switches a compute
 * to RS256 (its `kid` hashes the DER SubjectPublicKeyInfo).
 */
export async function createJwtIssuer(
  { algorithm = "EdDSA" }: { algorithm?: JwtAlgorithm } = {},
): Promise<JwtIssuer> {
  const { publicKey, privateKey } = await generateKeyPair(algorithm, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const keyBytes = algorithm === "EdDSA"
    ? base64UrlDecode(jwk.x!)
    : pemBody(await exportSPKI(publicKey));
  const publicJwk: JsonObject = algorithm === "EdDSA"
    ? { kty: "OKP", crv: "Ed25519", x: jwk.x }
    : { kty: "RSA", n: jwk.n, e: jwk.e };
  Object.assign(publicJwk, {
    alg: algorithm,
    use: "sig",
    key_ops: ["verify"],
    kid: base64UrlEncode(new Uint8Array(await crypto.subtle.digest("SHA-256", keyBytes))),
  });
  const privateKeyPem = await exportPKCS8(privateKey);
  const sign = (claims: Record<string, unknown>) =>
    signWith(privateKey, algorithm, claims as JWTPayload);
  return {
    algorithm,
    publicJwk,
    privateKeyPem,
    signComputeToken: (computeId) => sign({ compute_id: computeId }),
    signAdminToken: () => sign({ aud: [COMPUTE_AUDIENCE], scope: ADMIN_SCOPE, compute_id: null }),
    sign,
  };
}

function signWith(key: JoseKey, algorithm: JwtAlgorithm, claims: JWTPayload): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: algorithm, typ: "JWT" }).sign(key);
}

/** Base64url without padding, as JWKs and JWTs use it. */
export function base64UrlEncode(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

function base64UrlDecode(text: string): Uint8Array<ArrayBuffer> {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
}

function pemBody(pem: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(
    atob(pem.replace(/-----[^-]+-----/g, "").replace(/\s/g, "")),
    (char) => char.charCodeAt(0),
  );
}
