/** `src/api/catalog.ts`: the request bodies of the catalog routes. */

import assert from "node:assert/strict";
import { setRoleGrantsRequestSchema } from "../../src/api/catalog.ts";

Deno.test("privileges are an upper-case enum", () => {
  const base = { database: "db", schema: "public", role: "bob" };
  assert.ok(setRoleGrantsRequestSchema.safeParse({ ...base, privileges: ["USAGE"] }).success);
  assert.ok(!setRoleGrantsRequestSchema.safeParse({ ...base, privileges: ["usage"] }).success);
  assert.ok(!setRoleGrantsRequestSchema.safeParse({ ...base, privileges: ["ALL"] }).success);
  const parsed = setRoleGrantsRequestSchema.parse({
    role: "bob",
    privileges: ["CREATE"],
    schema: "s",
    database: "d",
    extra: 1,
  });
  assert.deepEqual(Object.keys(parsed), ["database", "schema", "privileges", "role"]);
});
