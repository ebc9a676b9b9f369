/**
 * @module
 * Hostile JWTs for the bad-input corpus, made by hand from a recipe so the
 * header, the signature and the payload can each be wrong on purpose: `alg:
 * none`, an HS256 token keyed with the trusted public key, another key's
 * signature, a payload swapped after signing, a flipped signature bit, a
 * 100 KB token.
 */

import { exportSPKI, importJWK } from "jose";
import type { JwtIssuer } from "../../harness/jwt.ts";
import { base64UrlEncode } from "../../harness/jwt.ts";
import type { JwtRecipe } from "./bad_input.ts";
import { substitute } from "./bad_input_expect.ts";

/** The keys a recipe can sign with. */
export interface JwtKeys {
  /** The key the compute trusts. */
  cluster: JwtIssuer;
  /** A key it does not know. */
  stranger: JwtIssuer;
}

const encoder = new TextEncoder();

function part(value: unknown): string {
  return base64UrlEncode(encoder.encode(JSON.stringify(value)));
}

function pemBytes(pem: string): Uint8Array<ArrayBuffer> {
  const body = pem.replace(/-----[^-]+-----/g, "").replace(/\s/g, "");
  return Uint8Array.from(atob(body), (char) => char.charCodeAt(0));
}

async function ed25519Signature(issuer: JwtIssuer, input: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "pkcs8",
    pemBytes(issuer.privateKeyPem),
    { name: "Ed25519" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("Ed25519", key, encoder.encode(input)));
}

async function hmacWithPublicKey(issuer: JwtIssuer, input: string): Promise<Uint8Array> {
  const publicKey = await importJWK(issuer.publicJwk, issuer.algorithm);
  if (publicKey instanceof Uint8Array) throw new Error("the public JWK imported as a secret");
  const secret = encoder.encode(await exportSPKI(publicKey));
  const key = await crypto.subtle.importKey(
    "raw",
    secret,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(input)));
}

const DEFAULT_HEADERS: Record<JwtRecipe["signWith"], Record<string, unknown>> = {
  cluster: { alg: "EdDSA", typ: "JWT" },
  stranger: { alg: "EdDSA", typ: "JWT" },
  "public-key-as-hmac": { alg: "HS256", typ: "JWT" },
  none: { alg: "none", typ: "JWT" },
};

/** The compact JWT a recipe describes; `vars` fill `{{…}}` placeholders in the claims. */
export async function makeJwt(
  recipe: JwtRecipe,
  keys: JwtKeys,
  vars: Record<string, string>,
): Promise<string> {
  const claims: Record<string, unknown> = JSON.parse(
    substitute(JSON.stringify(recipe.claims ?? { compute_id: "{{COMPUTE_ID}}" }), vars),
  );
  if (recipe.expiresIn !== undefined) {
    claims.exp = Math.floor(Date.now() / 1000) + recipe.expiresIn;
  }
  if (recipe.padBytes !== undefined) claims.pad = "x".repeat(recipe.padBytes);
  const input = `${part(recipe.header ?? DEFAULT_HEADERS[recipe.signWith])}.${part(claims)}`;
  let signature: Uint8Array;
  switch (recipe.signWith) {
    case "cluster":
      signature = await ed25519Signature(keys.cluster, input);
      break;
    case "stranger":
      signature = await ed25519Signature(keys.stranger, input);
      break;
    case "public-key-as-hmac":
      signature = await hmacWithPublicKey(keys.cluster, input);
      break;
    case "none":
      signature = new Uint8Array();
  }
  if (recipe.flipSignatureBit) signature[0] ^= 1;
  let [header, payload] = input.split(".");
  if (recipe.tamperClaims !== undefined) {
    payload = part(JSON.parse(substitute(JSON.stringify(recipe.tamperClaims), vars)));
  }
  return `${header}.${payload}.${base64UrlEncode(signature)}`;
}
