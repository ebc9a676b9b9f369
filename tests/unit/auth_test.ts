/**
 * The JWT middleware against an in-memory hono app: every branch of neon-02
 * §2.4 (400/401/403 and their messages), key selection (every key tried, kid
 * ignored, unusable keys skipped, RS256 sets), the `exp` leeway, and the
 * `INSTANCE_ID` bypass.
 */

import assert from "node:assert/strict";
import { CompactSign, importPKCS8, SignJWT } from "jose";
import type { ComputeCtlConfig } from "../../src/api/config.ts";
import {
  bearerToken,
  EXP_LEEWAY_SECONDS,
  importVerificationKeys,
  jwksAlgorithm,
  jwtAuth,
} from "../../src/http/auth.ts";
import { buildApp, type Route } from "../../src/http/server.ts";
import { base64UrlEncode, createJwtIssuer, type JwtIssuer } from "../../harness/jwt.ts";
import { assertRequestId } from "../_support/http.ts";

const COMPUTE_ID = "compute-1";
const NOW = 1_750_000_000;

const routes: Route[] = [
  { method: "GET", path: "/status", auth: true, handler: (c) => c.json({ status: "running" }) },
  { method: "GET", path: "/metrics", auth: false, handler: (c) => c.text("up 1\n") },
];

const ed = await createJwtIssuer();
const otherEd = await createJwtIssuer();
const rsa = await createJwtIssuer({ algorithm: "RS256" });

type Jwks = ComputeCtlConfig["jwks"];

function jwksOf(...keys: Record<string, unknown>[]): Jwks {
  return { keys: keys.map((key) => ({ kty: String(key.kty), ...key })) };
}

function appFor(jwks: Jwks, instanceId?: string) {
  const auth = jwtAuth({ jwks, computeId: COMPUTE_ID, instanceId, nowSeconds: () => NOW });
  return buildApp(routes, { name: "auth-test", auth });
}

const defaultApp = appFor(jwksOf(ed.publicJwk));

async function get(
  authorization: string | undefined,
  { app = defaultApp, path = "/status" }: { app?: ReturnType<typeof appFor>; path?: string } = {},
): Promise<Response> {
  const headers = new Headers({ "x-request-id": "req-1" });
  if (authorization !== undefined) headers.set("authorization", authorization);
  return await app.fetch(new Request(`http://compute${path}`, { headers }));
}

async function assertRefused(response: Response, status: number, message: string) {
  assert.equal(response.status, status);
  assert.equal(response.headers.get("content-type"), "application/json");
  assert.equal(response.headers.get("x-request-id"), "req-1");
  assert.deepEqual(await response.json(), { error: message });
}

async function assertAllowed(response: Response) {
  const text = await response.text();
  assert.equal(response.status, 200, text);
  assert.deepEqual(JSON.parse(text), { status: "running" });
}

const bearer = (token: string) => `Bearer ${token}`;

function unsigned(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const encode = (value: unknown) =>
    base64UrlEncode(new TextEncoder().encode(JSON.stringify(value)));
  return `${encode(header)}.${encode(claims)}.`;
}

Deno.test("a missing Authorization header is 400 invalid authorization token", async () => {
  await assertRefused(await get(undefined), 400, "invalid authorization token");
});

Deno.test("a scheme other than Bearer is 400, the scheme's case does not matter", async () => {
  const token = await ed.signComputeToken(COMPUTE_ID);
  await assertRefused(await get("Basic YWxpY2U6c2VjcmV0"), 400, "invalid authorization token");
  await assertRefused(await get(`Token ${token}`), 400, "invalid authorization token");
  await assertRefused(await get("Bearer"), 400, "invalid authorization token");
  await assertRefused(await get(token), 400, "invalid authorization token");
  await assertAllowed(await get(`bearer ${token}`));
  await assertAllowed(await get(`BEARER ${token}`));
});

Deno.test("bearerToken: one space after the scheme, visible ASCII only", () => {
  assert.equal(bearerToken("Bearer abc"), "abc");
  assert.equal(bearerToken("bEaReR a.b.c"), "a.b.c");
  assert.equal(bearerToken("Bearer  abc"), " abc");
  assert.equal(bearerToken("Bearerabc"), undefined);
  assert.equal(bearerToken("Bearer"), undefined);
  assert.equal(bearerToken("Bearer ab\u00e9"), undefined);
  assert.equal(bearerToken(undefined), undefined);
});

Deno.test("garbage, a wrong key, alg none and HS256 are 401 failed to verify", async () => {
  const claims = { compute_id: COMPUTE_ID };
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const hs256 = await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(secret);
  const app = appFor(jwksOf(ed.publicJwk, { kty: "oct", k: base64UrlEncode(secret) }));
  const cases = [
    "not-a-jwt",
    "a.b.c",
    await otherEd.signComputeToken(COMPUTE_ID),
    unsigned({ alg: "none", typ: "JWT" }, claims),
    unsigned({ alg: "EdDSA", typ: "JWT" }, claims),
    hs256,
    await rsa.signComputeToken(COMPUTE_ID),
  ];
  for (const token of cases) {
    await assertRefused(
      await get(bearer(token), { app }),
      401,
      "failed to verify authorization token",
    );
  }
  await assertRefused(await get("Bearer "), 400, "invalid authorization token");
});

Deno.test("a tampered payload is 401", async () => {
  const [header, , signature] = (await ed.signComputeToken("other")).split(".");
  const payload = base64UrlEncode(
    new TextEncoder().encode(JSON.stringify({ compute_id: COMPUTE_ID })),
  );
  await assertRefused(
    await get(bearer(`${header}.${payload}.${signature}`)),
    401,
    "failed to verify authorization token",
  );
});

Deno.test("exp: absent is fine, 60 s of leeway, nbf is not checked", async () => {
  const claims = { compute_id: COMPUTE_ID };
  await assertAllowed(await get(bearer(await ed.sign(claims))));
  await assertAllowed(await get(bearer(await ed.sign({ ...claims, exp: NOW + 3600 }))));
  await assertAllowed(await get(bearer(await ed.sign({ ...claims, exp: NOW - 30 }))));
  await assertAllowed(
    await get(bearer(await ed.sign({ ...claims, exp: NOW - EXP_LEEWAY_SECONDS }))),
  );
  await assertAllowed(await get(bearer(await ed.sign({ ...claims, exp: null }))));
  await assertRefused(
    await get(bearer(await ed.sign({ ...claims, exp: NOW - EXP_LEEWAY_SECONDS - 1 }))),
    401,
    "failed to verify authorization token",
  );
  await assertRefused(
    await get(bearer(await ed.sign({ ...claims, exp: "tomorrow" }))),
    401,
    "failed to verify authorization token",
  );
  await assertAllowed(await get(bearer(await ed.sign({ ...claims, nbf: NOW + 86_400 }))));
});

Deno.test("claims of the wrong shape are 401: unknown scope, aud as a string, bad compute_id", async () => {
  const cases: Record<string, unknown>[] = [
    { compute_id: COMPUTE_ID, scope: "compute_ctl:superuser" },
    { scope: "compute_ctl:admin", aud: "compute" },
    { compute_id: 42 },
    { compute_id: COMPUTE_ID, aud: [1] },
  ];
  for (const claims of cases) {
    await assertRefused(
      await get(bearer(await ed.sign(claims))),
      401,
      "failed to verify authorization token",
    );
  }
  for (const payload of ["[1,2]", '"compute"', "not json"]) {
    const token = await new CompactSign(new TextEncoder().encode(payload))
      .setProtectedHeader({ alg: "EdDSA" })
      .sign(await importPrivate(ed));
    await assertRefused(await get(bearer(token)), 401, "failed to verify authorization token");
  }
});

Deno.test("admin tokens: aud must contain compute; compute_id is not looked at", async () => {
  await assertAllowed(await get(bearer(await ed.signAdminToken())));
  await assertAllowed(
    await get(bearer(await ed.sign({ scope: "compute_ctl:admin", aud: ["x", "compute"] }))),
  );
  await assertAllowed(
    await get(
      bearer(await ed.sign({ scope: "compute_ctl:admin", aud: ["compute"], compute_id: "other" })),
    ),
  );
  await assertRefused(
    await get(bearer(await ed.sign({ scope: "compute_ctl:admin", compute_id: COMPUTE_ID }))),
    401,
    "missing audience in authorization token claims",
  );
  await assertRefused(
    await get(bearer(await ed.sign({ scope: "compute_ctl:admin", aud: [] }))),
    401,
    "invalid audience in authorization token claims",
  );
  await assertRefused(
    await get(bearer(await ed.sign({ scope: "compute_ctl:admin", aud: ["computes"] }))),
    401,
    "invalid audience in authorization token claims",
  );
});

Deno.test("compute tokens: compute_id must be present and name this compute", async () => {
  await assertAllowed(await get(bearer(await ed.signComputeToken(COMPUTE_ID))));
  // aud is not checked for non-admin tokens
  await assertAllowed(await get(bearer(await ed.sign({ compute_id: COMPUTE_ID, aud: ["x"] }))));
  await assertRefused(
    await get(bearer(await ed.sign({}))),
    403,
    "missing compute_id in authorization token claims",
  );
  await assertRefused(
    await get(bearer(await ed.sign({ compute_id: null, aud: ["compute"] }))),
    403,
    "missing compute_id in authorization token claims",
  );
  await assertRefused(
    await get(bearer(await ed.signComputeToken("compute-2"))),
    403,
    "invalid compute ID in authorization token claims",
  );
});

Deno.test("every key is tried in order and kid is ignored", async () => {
  const app = appFor(jwksOf(otherEd.publicJwk, { ...ed.publicJwk, kid: "misleading" }));
  const token = await new SignJWT({ compute_id: COMPUTE_ID })
    .setProtectedHeader({ alg: "EdDSA", kid: String(otherEd.publicJwk.kid) })
    .sign(await importPrivate(ed));
  await assertAllowed(await get(bearer(token), { app }));
  await assertAllowed(await get(bearer(await otherEd.signComputeToken(COMPUTE_ID)), { app }));
});

Deno.test("keys that cannot be imported are skipped, also without a kid", async () => {
  const broken = [
    { kty: "OKP", crv: "Ed25519", x: "!!!" },
    { kty: "OKP", crv: "Ed25519" },
    { kty: "EC", crv: "P-256", x: "AAAA", y: "AAAA" },
    { kty: "weird" },
    { kty: "OKP", crv: "Ed25519", x: "AAAA", kid: "short" },
  ];
  const jwks = jwksOf(...broken, ed.publicJwk);
  assert.equal((await importVerificationKeys(jwks.keys, "EdDSA")).length, 1);
  const app = appFor(jwks);
  await assertAllowed(await get(bearer(await ed.signComputeToken(COMPUTE_ID)), { app }));
  await assertRefused(
    await get(bearer(await otherEd.signComputeToken(COMPUTE_ID)), { app }),
    401,
    "failed to verify authorization token",
  );
});

Deno.test("an empty key set refuses every token", async () => {
  const app = appFor({ keys: [] });
  await assertRefused(
    await get(bearer(await ed.signAdminToken()), { app }),
    401,
    "failed to verify authorization token",
  );
});

Deno.test("an RS256 key anywhere in the set makes RS256 the only algorithm", async () => {
  assert.equal(jwksAlgorithm([ed.publicJwk]), "EdDSA");
  assert.equal(jwksAlgorithm([{ kty: "RSA" }]), "EdDSA");
  assert.equal(jwksAlgorithm([ed.publicJwk, rsa.publicJwk]), "RS256");
  const app = appFor(jwksOf(ed.publicJwk, rsa.publicJwk));
  await assertAllowed(await get(bearer(await rsa.signComputeToken(COMPUTE_ID)), { app }));
  await assertAllowed(await get(bearer(await rsa.signAdminToken()), { app }));
  await assertRefused(
    await get(bearer(await ed.signComputeToken(COMPUTE_ID)), { app }),
    401,
    "failed to verify authorization token",
  );
  await assertRefused(
    await get(bearer(await rsa.signComputeToken("compute-2")), { app }),
    403,
    "invalid compute ID in authorization token claims",
  );
});

Deno.test("INSTANCE_ID, even empty, lets every request through", async () => {
  for (const instanceId of ["", "instance-7"]) {
    const app = appFor({ keys: [] }, instanceId);
    await assertAllowed(await get(undefined, { app }));
    await assertAllowed(await get("Basic xyz", { app }));
  }
});

Deno.test("routes registered without auth stay open", async () => {
  const response = await get(undefined, { path: "/metrics" });
  assert.equal(response.status, 200);
  assert.equal(await response.text(), "up 1\n");
  assert.equal(response.headers.get("x-request-id"), "req-1");
});

Deno.test("a failure without a client request id still carries a generated one", async () => {
  const response = await defaultApp.fetch(new Request("http://compute/status"));
  assertRequestId(response);
  assert.equal(response.status, 400);
  await response.body?.cancel();
});

function importPrivate(issuer: JwtIssuer) {
  return importPKCS8(issuer.privateKeyPem, issuer.algorithm);
}
