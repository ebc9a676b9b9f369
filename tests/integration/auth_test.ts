/**
 * JWT auth of the external HTTP server against real computes in the harness
 * (neon-02 §2.4): the 400/401/403 matrix with the reference's messages, valid
 * compute and admin tokens, an RS256 key set, the open `/metrics`, the JWKS
 * arriving through the control plane, the `INSTANCE_ID` bypass, and
 * `x-request-id` on every answer.
 */

import assert from "node:assert/strict";
import { createJwtIssuer, type HttpResult, startCluster } from "../../harness/cluster.ts";
import { base64UrlEncode } from "../../harness/jwt.ts";
import { assertRequestId } from "../_support/http.ts";

const COMPUTE_ID = "auth-1";

function assertRefused(result: HttpResult, status: number, message: string) {
  assert.equal(result.status, status, result.text);
  assert.equal(result.headers.get("content-type"), "application/json");
  assert.deepEqual(result.body, { error: message });
  assertRequestId(result);
}

function assertRunning(result: HttpResult) {
  assert.equal(result.status, 200, result.text);
  assert.equal(result.body.status, "running");
  assertRequestId(result);
}

function unsignedToken(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const part = (value: unknown) => base64UrlEncode(new TextEncoder().encode(JSON.stringify(value)));
  return `${part(header)}.${part(claims)}.`;
}

Deno.test("auth on a real compute: the 400/401/403 matrix and valid tokens", async (t) => {
  await using cluster = await startCluster({
    pageservers: 1,
    safekeepers: 1,
    computes: [{ id: COMPUTE_ID }],
  });
  const compute = cluster.compute(COMPUTE_ID);
  const { jwt } = cluster;
  const status = (token: string | null, headers?: Record<string, string>) =>
    compute.request("GET", "/status", { token, headers });
  const verifyFailed = "failed to verify authorization token";

  await t.step("the JWKS in config.json is the cluster's Ed25519 key", async () => {
    const config = await compute.readConfig();
    assert.deepEqual(config.compute_ctl_config, { jwks: { keys: [jwt.publicJwk] } });
    const [key] = (config.compute_ctl_config.jwks as { keys: Record<string, unknown>[] }).keys;
    assert.equal(key.kty, "OKP");
    assert.equal(key.crv, "Ed25519");
    assert.equal(key.alg, "EdDSA");
    assert.equal(key.use, "sig");
    assert.deepEqual(key.key_ops, ["verify"]);
    assert.match(String(key.kid), /^[A-Za-z0-9_-]{43}$/);
    assert.match(String(key.x), /^[A-Za-z0-9_-]{43}$/);
  });

  await t.step("no Authorization header: 400", async () => {
    assertRefused(await status(null), 400, "invalid authorization token");
  });

  await t.step("a scheme other than Bearer: 400", async () => {
    const result = await status(null, { authorization: `Basic ${btoa("cloud_admin:x")}` });
    assertRefused(result, 400, "invalid authorization token");
  });

  await t.step("a garbage token: 401", async () => {
    assertRefused(await status("this.is-not.a-jwt"), 401, verifyFailed);
  });

  await t.step("a token signed with another key: 401", async () => {
    const stranger = await createJwtIssuer();
    assertRefused(await status(await stranger.signComputeToken(COMPUTE_ID)), 401, verifyFailed);
  });

  await t.step("an expired token (beyond the 60 s leeway): 401", async () => {
    const exp = Math.floor(Date.now() / 1000) - 120;
    assertRefused(await status(await jwt.sign({ compute_id: COMPUTE_ID, exp })), 401, verifyFailed);
  });

  await t.step("alg none: 401", async () => {
    const token = unsignedToken({ alg: "none", typ: "JWT" }, { compute_id: COMPUTE_ID });
    assertRefused(await status(token), 401, verifyFailed);
  });

  await t.step("an admin token without aud: 401 missing audience", async () => {
    const token = await jwt.sign({ scope: "compute_ctl:admin", compute_id: null });
    assertRefused(await status(token), 401, "missing audience in authorization token claims");
  });

  await t.step("an admin token with the wrong aud: 401 invalid audience", async () => {
    const token = await jwt.sign({ scope: "compute_ctl:admin", aud: ["control-plane"] });
    assertRefused(await status(token), 401, "invalid audience in authorization token claims");
  });

  await t.step("a token without compute_id: 403", async () => {
    assertRefused(
      await status(await jwt.sign({})),
      403,
      "missing compute_id in authorization token claims",
    );
  });

  await t.step("another compute's token: 403", async () => {
    const token = await jwt.signComputeToken("someone-else");
    assertRefused(await status(token), 403, "invalid compute ID in authorization token claims");
  });

  await t.step("a valid compute token: 200", async () => {
    assertRunning(await status(compute.tokens.compute));
  });

  await t.step("a valid admin token: 200", async () => {
    assertRunning(await status(compute.tokens.admin));
  });

  await t.step("/metrics without a token: 200", async () => {
    const result = await compute.request("GET", "/metrics", { token: null });
    assert.equal(result.status, 200, result.text);
    assert.match(result.text, /compute_ctl_up/);
    assertRequestId(result);
  });

  await t.step(
    "auth runs before the body is read: a bad /configure body is still 400 auth",
    async () => {
      const result = await compute.request("POST", "/configure", {
        token: null,
        body: "{not json",
      });
      assertRefused(result, 400, "invalid authorization token");
    },
  );

  await t.step("a client's x-request-id is echoed on failures and successes", async () => {
    const refused = await status(null, { "x-request-id": "auth-test-1" });
    assert.equal(refused.status, 400);
    assertRequestId(refused, "auth-test-1");
    const allowed = await status(compute.tokens.compute, { "x-request-id": "auth-test-2" });
    assert.equal(allowed.status, 200);
    assertRequestId(allowed, "auth-test-2");
  });
});

Deno.test("auth on a real compute: an RS256 key set accepts only RS256 tokens", async () => {
  const rsa = await createJwtIssuer({ algorithm: "RS256" });
  await using cluster = await startCluster({
    pageservers: 1,
    safekeepers: 1,
    computes: [{ id: "rsa", jwt: rsa }],
  });
  const compute = cluster.compute("rsa");
  const keys = (await compute.readConfig()).compute_ctl_config.jwks as { keys: unknown[] };
  assert.deepEqual(keys.keys, [rsa.publicJwk]);
  assertRunning(
    await compute.request("GET", "/status", { token: await rsa.signComputeToken("rsa") }),
  );
  assertRunning(await compute.request("GET", "/status", { token: await rsa.signAdminToken() }));
  const eddsa = await cluster.jwt.signComputeToken("rsa");
  assertRefused(
    await compute.request("GET", "/status", { token: eddsa }),
    401,
    "failed to verify authorization token",
  );
});

Deno.test("auth on a real compute: the JWKS from the control plane, and the INSTANCE_ID bypass", async () => {
  await using cluster = await startCluster({
    pageservers: 1,
    safekeepers: 1,
    computes: [
      { id: "from-cp", source: "control-plane" },
      { id: "hadron", env: { INSTANCE_ID: "" } },
    ],
  });
  const fromCp = cluster.compute("from-cp");
  assertRunning(await fromCp.request("GET", "/status"));
  assertRefused(
    await fromCp.request("GET", "/status", { token: await cluster.jwt.signComputeToken("hadron") }),
    403,
    "invalid compute ID in authorization token claims",
  );

  const hadron = cluster.compute("hadron");
  assertRunning(await hadron.request("GET", "/status", { token: null }));
  assertRunning(await hadron.request("GET", "/status", { token: "garbage" }));
});

Deno.test("auth off in the harness: managers run with INSTANCE_ID, no token needed", async () => {
  await using cluster = await startCluster({
    pageservers: 1,
    safekeepers: 1,
    auth: false,
    computes: [{ id: "open" }],
  });
  assertRunning(await cluster.compute("open").request("GET", "/status", { token: null }));
});
