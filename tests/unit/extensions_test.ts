/** `src/postgres/extensions.ts`: the SQL that installs or updates an extension. */

import assert from "node:assert/strict";
import { extensionInstallSql } from "../../src/postgres/extensions.ts";

Deno.test("extensionInstallSql: nothing, ALTER … UPDATE TO, or CREATE … VERSION, all quoted", () => {
  assert.equal(extensionInstallSql("hstore", "1.8", "1.8"), null);
  assert.equal(
    extensionInstallSql("hstore", "1.8", "1.7"),
    `ALTER EXTENSION "hstore" UPDATE TO "1.8"`,
  );
  assert.equal(
    extensionInstallSql("hstore", "1.7", null),
    `CREATE EXTENSION IF NOT EXISTS "hstore" WITH SCHEMA public VERSION "1.7"`,
  );
  assert.equal(
    extensionInstallSql(`we"ird`, `1"; DROP`, null),
    `CREATE EXTENSION IF NOT EXISTS "we""ird" WITH SCHEMA public VERSION "1""; DROP"`,
  );
});
