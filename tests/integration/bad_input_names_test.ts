/**
 * The hostile-name cases of the bad-input corpus (`fixtures/bad_input/names.json`)
 * against their own running compute: role, database, owner and setting names
 * with quotes, backslashes, `$$`, semicolons and SQL, NUL bytes, 63/64-byte
 * and 1 KiB names and unicode, through `/configure`, `/grants`, `/extensions`
 * and `/database_schema`. Names PostgreSQL accepts are applied exactly
 * (read back from the catalog as spelled, nothing else created); the others
 * are refused with the status unchanged and the catalog untouched.
 */

import { runHttpCorpus } from "../_support/bad_input_suite.ts";

Deno.test("bad-input corpus: hostile names are applied exactly or refused", async (t) => {
  await runHttpCorpus(t, ["names.json"], "hostile names");
});
