/**
 * The spec helpers of `src/api/spec.ts`: option lookup as Neon's
 * `GenericOptionsSearch::find`, the spec's timeline and its JWKS roles.
 */

import assert from "node:assert/strict";
import {
  computeSpecSchema,
  findOption,
  type GenericOption,
  jwksRoleNames,
  specTimelineId,
} from "../../src/api/spec.ts";

const option = (name: string, value: string | null): GenericOption => ({
  name,
  value,
  vartype: "string",
});

Deno.test("findOption: the first option with the name decides, even when its value is null", () => {
  const options = [option("a", null), option("b", "1"), option("a", "later"), option("b", "2")];
  assert.equal(findOption(options, "a"), undefined, "a null first value hides later ones");
  assert.equal(findOption(options, "b"), "1");
  assert.equal(findOption(options, "c"), undefined);
  assert.equal(findOption([{ name: "d", vartype: "string" }, option("d", "x")], "d"), undefined);
  assert.equal(findOption(null, "a"), undefined);
  assert.equal(findOption(undefined, "a"), undefined);
  assert.equal(findOption([option("e", "")], "e"), "", "an empty value is a value");
});

const TIMELINE = "2414a61ffc94e428f14b5758fe308e13";

function spec(overrides: Record<string, unknown>) {
  return computeSpecSchema.parse({
    format_version: 1.0,
    suspend_timeout_seconds: -1,
    cluster: { roles: [], databases: [] },
    ...overrides,
  });
}

Deno.test("specTimelineId: timeline_id, else the first neon.timeline_id setting", () => {
  assert.equal(specTimelineId(spec({ timeline_id: TIMELINE.toUpperCase() })), TIMELINE);
  const settings = [option("neon.timeline_id", "from-settings"), option("neon.timeline_id", "x")];
  assert.equal(
    specTimelineId(spec({ cluster: { roles: [], databases: [], settings } })),
    "from-settings",
  );
  assert.equal(specTimelineId(spec({})), undefined);
});

Deno.test("jwksRoleNames: every role named by any local_proxy_config JWKS", () => {
  const jwks = (roles: string[]) => ({
    id: "k",
    jwks_url: "https://example.com/jwks",
    provider_name: "p",
    role_names: roles,
  });
  const names = jwksRoleNames(spec({
    local_proxy_config: { jwks: [jwks(["alice", "bob"]), jwks(["bob", "carol"])] },
  }));
  assert.deepEqual([...names].sort(), ["alice", "bob", "carol"]);
  assert.deepEqual([...jwksRoleNames(spec({}))], []);
});
