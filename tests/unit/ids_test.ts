/** Tenant and timeline ids (`src/api/ids.ts`): 32 hex digits, either case, stored lower-case. */

import assert from "node:assert/strict";
import { hexIdSchema, isHexId } from "../../src/api/ids.ts";

const ID = "b0554b632bd4d547a63b86c3630317e8";

Deno.test("isHexId: 32 hex digits of either case, nothing else", () => {
  assert.ok(isHexId(ID));
  assert.ok(isHexId(ID.toUpperCase()));
  for (const bad of ["", ID.slice(1), `${ID}0`, `${ID.slice(1)}g`, ` ${ID}`, `${ID}\n`]) {
    assert.ok(!isHexId(bad), JSON.stringify(bad));
  }
});

Deno.test("hexIdSchema lower-cases and names the field in its error", () => {
  assert.equal(hexIdSchema("tenant id").parse(ID.toUpperCase()), ID);
  const result = hexIdSchema("timeline id").safeParse("xyz");
  assert.ok(!result.success);
  assert.equal(result.error.issues[0].message, "invalid timeline id: expected 32 hex characters");
});
