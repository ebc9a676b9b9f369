/**
 * The verified-token cache (`src/http/token_cache.ts`) on its own, with the
 * clock passed in: hits, first-in-first-out eviction, `exp` plus leeway and
 * the TTL of tokens without `exp`, a key set change emptying it. Then through
 * the JWT middleware: a token sent again is not verified again, a tampered
 * token, a token of another key set and a failed one are never served from
 * the cache.
 */

import assert from "node:assert/strict";
import type { ComputeClaims } from "../../src/api/claims.ts";
import { EXP_LEEWAY_SECONDS, jwtAuth } from "../../src/http/auth.ts";
import { buildApp, type Route } from "../../src/http/server.ts";
import {
  createTokenCache,
  DEFAULT_NO_EXP_TTL_SECONDS,
  type TokenCache,
} from "../../src/http/token_cache.ts";
import { createJwtIssuer } from "../../harness/jwt.ts";

const NOW = 1_750_000_000;
const LEEWAY = 60;
const KEYS = "key set 1";
const claimsOf = (computeId: string): ComputeClaims => ({ compute_id: computeId });

Deno.test("a token set is served back with its claims until it expires", () => {
  const cache = createTokenCache({ expLeewaySeconds: LEEWAY });
  const claims = claimsOf("c1");
  cache.set("t1", KEYS, { claims, exp: NOW + 10 }, NOW);
  assert.equal(cache.get("t1", KEYS, NOW), claims);
  assert.equal(cache.get("t1", KEYS, NOW + 10 + LEEWAY), claims);
  assert.equal(cache.get("t1", KEYS, NOW + 10 + LEEWAY + 1), undefined);
  assert.equal(cache.size, 0, "an expired entry is removed when found");
  assert.equal(cache.get("t1", KEYS, NOW), undefined);
});

Deno.test("a token without exp is served for the TTL only", () => {
  const cache = createTokenCache({ expLeewaySeconds: LEEWAY });
  cache.set("t1", KEYS, { claims: claimsOf("c1") }, NOW);
  assert.ok(cache.get("t1", KEYS, NOW + DEFAULT_NO_EXP_TTL_SECONDS));
  assert.equal(cache.get("t1", KEYS, NOW + DEFAULT_NO_EXP_TTL_SECONDS + 1), undefined);

  const short = createTokenCache({ expLeewaySeconds: LEEWAY, noExpTtlSeconds: 5 });
  short.set("t1", KEYS, { claims: claimsOf("c1") }, NOW);
  assert.ok(short.get("t1", KEYS, NOW + 5));
  assert.equal(short.get("t1", KEYS, NOW + 6), undefined);
});

Deno.test("a token already past exp plus leeway is not stored", () => {
  const cache = createTokenCache({ expLeewaySeconds: LEEWAY });
  cache.set("t1", KEYS, { claims: claimsOf("c1"), exp: NOW - LEEWAY - 1 }, NOW);
  assert.equal(cache.size, 0);
});

Deno.test("the token stored first is evicted past maxEntries", () => {
  const cache = createTokenCache({ expLeewaySeconds: LEEWAY, maxEntries: 2 });
  cache.set("a", KEYS, { claims: claimsOf("a") }, NOW);
  cache.set("b", KEYS, { claims: claimsOf("b") }, NOW);
  assert.ok(cache.get("a", KEYS, NOW));
  cache.set("c", KEYS, { claims: claimsOf("c") }, NOW);
  assert.equal(cache.size, 2);
  assert.equal(cache.get("a", KEYS, NOW), undefined);
  assert.ok(cache.get("b", KEYS, NOW));
  assert.ok(cache.get("c", KEYS, NOW));
  cache.set("b", KEYS, { claims: claimsOf("b") }, NOW); // stored again: now the newest
  cache.set("d", KEYS, { claims: claimsOf("d") }, NOW);
  assert.equal(cache.get("c", KEYS, NOW), undefined);
  assert.ok(cache.get("b", KEYS, NOW));
  for (let i = 0; i < 100; i++) cache.set(`t${i}`, KEYS, { claims: claimsOf("x") }, NOW);
  assert.equal(cache.size, 2);
});

Deno.test("another key set empties the cache", () => {
  const cache = createTokenCache({ expLeewaySeconds: LEEWAY });
  cache.set("t1", KEYS, { claims: claimsOf("c1") }, NOW);
  assert.equal(cache.get("t1", "key set 2", NOW), undefined);
  assert.equal(cache.size, 0);
  assert.equal(cache.get("t1", KEYS, NOW), undefined, "going back does not bring it back");
});

// Through the middleware.

const COMPUTE_ID = "compute-1";
const routes: Route[] = [
  { method: "GET", path: "/status", auth: true, handler: (c) => c.json({ status: "running" }) },
];
const ed = await createJwtIssuer();
const otherEd = await createJwtIssuer();

/** A cache counting its hits, shared by the apps a test builds. */
function countingCache(): TokenCache & { hits: number } {
  const cache = createTokenCache({ expLeewaySeconds: EXP_LEEWAY_SECONDS });
  return {
    hits: 0,
    get(token, keySet, nowSeconds) {
      const claims = cache.get(token, keySet, nowSeconds);
      if (claims !== undefined) this.hits++;
      return claims;
    },
    set: (token, keySet, verified, nowSeconds) => cache.set(token, keySet, verified, nowSeconds),
    get size() {
      return cache.size;
    },
  };
}

function appWith(key: Record<string, unknown>, tokenCache: TokenCache, now = () => NOW) {
  const auth = jwtAuth({
    jwks: { keys: [{ kty: String(key.kty), ...key }] },
    computeId: COMPUTE_ID,
    nowSeconds: now,
    tokenCache,
  });
  return buildApp(routes, { name: "token-cache-test", auth });
}

async function status(app: ReturnType<typeof appWith>, token: string): Promise<number> {
  const response = await app.fetch(
    new Request("http://compute/status", { headers: { authorization: `Bearer ${token}` } }),
  );
  await response.body?.cancel();
  return response.status;
}

Deno.test("a token sent again is served from the cache, its claims still checked", async () => {
  const cache = countingCache();
  const app = appWith(ed.publicJwk, cache);
  const token = await ed.signComputeToken(COMPUTE_ID);
  assert.equal(await status(app, token), 200);
  assert.equal(cache.hits, 0);
  assert.equal(await status(app, token), 200);
  assert.equal(await status(app, token), 200);
  assert.equal(cache.hits, 2);
  assert.equal(cache.size, 1);

  const otherCompute = await ed.signComputeToken("compute-2");
  assert.equal(await status(app, otherCompute), 403);
  assert.equal(await status(app, otherCompute), 403, "a cached token still gets the claims check");
});

Deno.test("a cached token expires with its exp plus the leeway", async () => {
  const cache = countingCache();
  let now = NOW;
  const app = appWith(ed.publicJwk, cache, () => now);
  const token = await ed.sign({ compute_id: COMPUTE_ID, exp: NOW + 10 });
  assert.equal(await status(app, token), 200);
  now = NOW + 10 + EXP_LEEWAY_SECONDS;
  assert.equal(await status(app, token), 200);
  assert.equal(cache.hits, 1);
  now += 1;
  assert.equal(await status(app, token), 401);
  assert.equal(cache.hits, 1);
  assert.equal(cache.size, 0);
});

Deno.test("a tampered token is refused while the genuine one is cached", async () => {
  const cache = countingCache();
  const app = appWith(ed.publicJwk, cache);
  const token = await ed.signComputeToken(COMPUTE_ID);
  assert.equal(await status(app, token), 200);
  const [header, payload, signature] = token.split(".");
  const flipped = signature.slice(0, 5) + (signature[5] === "A" ? "B" : "A") + signature.slice(6);
  const forgedPayload = btoa(JSON.stringify({ compute_id: COMPUTE_ID, scope: null }))
    .replace(/=+$/, "");
  for (
    const tampered of [`${header}.${payload}.${flipped}`, `${header}.${forgedPayload}.${signature}`]
  ) {
    assert.equal(await status(app, tampered), 401);
  }
  assert.equal(cache.hits, 0);
  assert.equal(cache.size, 1, "failed verifications are not cached");
});

Deno.test("a token verified by one key set is not served to another", async () => {
  const cache = countingCache();
  const token = await ed.signComputeToken(COMPUTE_ID);
  assert.equal(await status(appWith(ed.publicJwk, cache), token), 200);
  assert.equal(await status(appWith(otherEd.publicJwk, cache), token), 401);
  assert.equal(cache.hits, 0);
  assert.equal(cache.size, 0);
});
