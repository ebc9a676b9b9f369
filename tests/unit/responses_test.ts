import assert from "node:assert/strict";
import {
  COMPUTE_STATUSES,
  computeMetricsSchema,
  emptyComputeMetrics,
  statusDebug,
  statusDisplay,
} from "../../src/api/responses.ts";
import { computeClaimsSchema } from "../../src/api/claims.ts";
import { computeConfigSchema, controlPlaneSpecResponseSchema } from "../../src/api/config.ts";

Deno.test("all 11 statuses render in snake, kebab and Pascal case", () => {
  assert.equal(COMPUTE_STATUSES.length, 11);
  assert.equal(statusDisplay("termination_pending_fast"), "termination-pending-fast");
  assert.equal(statusDisplay("refresh_configuration_pending"), "refresh-configuration-pending");
  assert.equal(statusDisplay("empty"), "empty");
  assert.equal(statusDebug("configuration_pending"), "ConfigurationPending");
  assert.equal(statusDebug("empty"), "Empty");
});

Deno.test("metrics.json has the 13 fields, zero by default", () => {
  const metrics = emptyComputeMetrics();
  assert.equal(Object.keys(metrics).length, 13);
  assert.deepEqual(computeMetricsSchema.parse(metrics), metrics);
});

Deno.test("claims: only the admin scope exists and aud must be an array", () => {
  assert.ok(computeClaimsSchema.safeParse({ compute_id: "c", exp: 1 }).success);
  assert.ok(
    computeClaimsSchema.safeParse({ scope: "compute_ctl:admin", aud: ["compute"] }).success,
  );
  assert.equal(computeClaimsSchema.safeParse({ scope: "other" }).success, false);
  assert.equal(computeClaimsSchema.safeParse({ aud: "compute" }).success, false);
});

Deno.test("config wrappers: jwks is required, spec is optional", () => {
  assert.ok(computeConfigSchema.safeParse({ compute_ctl_config: { jwks: { keys: [] } } }).success);
  assert.equal(computeConfigSchema.safeParse({ spec: null }).success, false);
  const answer = controlPlaneSpecResponseSchema.parse({
    status: "empty",
    spec: null,
    compute_ctl_config: { jwks: { keys: [{ kty: "OKP", crv: "Ed25519", x: "abc" }] }, tls: null },
  });
  assert.equal(answer.status, "empty");
  assert.equal(answer.compute_ctl_config.jwks.keys[0].crv, "Ed25519");
});
