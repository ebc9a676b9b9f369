/** `src/postgres/grants.ts`: which schema privileges are missing and the one GRANT for them. */

import assert from "node:assert/strict";
import { grantSql, missingPrivileges } from "../../src/postgres/grants.ts";

Deno.test("missingPrivileges keeps request order, drops held and repeated ones", () => {
  assert.deepEqual(
    missingPrivileges(["USAGE", "CREATE", "USAGE"], new Set(["CREATE"])),
    ["USAGE"],
  );
  assert.deepEqual(missingPrivileges(["USAGE"], new Set(["USAGE", "CREATE"])), []);
  assert.deepEqual(missingPrivileges([], new Set()), []);
});

Deno.test("grantSql quotes schema and role; nothing to grant gives null", () => {
  assert.equal(
    grantSql(["USAGE", "CREATE"], `my "schema"`, "bob"),
    `GRANT USAGE, CREATE ON SCHEMA "my ""schema""" TO "bob"`,
  );
  assert.equal(grantSql([], "public", "bob"), null);
});
