/**
 * The cluster runs the major it was asked for: `DEFAULT_PG_VERSION` (the
 * matrix sets it) picks the install, and the compute's Postgres reports that
 * major in `server_version_num`, whichever source (Debian or npm) served it.
 */

import assert from "node:assert/strict";
import { startCluster } from "../../harness/cluster.ts";
import { defaultPgMajor, locatePostgresOnce } from "../../harness/pg_locate.ts";
import { query } from "./_helpers.ts";

Deno.test("the compute runs the default major", async () => {
  const major = defaultPgMajor();
  const install = await locatePostgresOnce(major);
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "major" }] });
  assert.equal(cluster.pgbin, install.pgbin);
  const rows = await query<{ version: number }>(
    cluster.compute("major").postgresUrl,
    "SELECT current_setting('server_version_num')::int AS version",
  );
  assert.equal(Math.floor(rows[0].version / 10000), major);
});
