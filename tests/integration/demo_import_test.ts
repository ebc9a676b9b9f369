/**
 * `deno task demo --import SOURCE_URL`: the demo runs fast_import against the
 * source first and starts its compute on the imported timeline, so the
 * compute's `neondb` answers what the source answers; SIGINT still stops
 * everything with exit code 0.
 */

import assert from "node:assert/strict";
import { REPO_ROOT } from "../../harness/cluster.ts";
import { startLocalPostgres } from "../_support/local_postgres.ts";
import { FAST_IMPORT_MISSING, populateSource, snapshot } from "../_support/fast_import.ts";
import { eventually, within } from "./_helpers.ts";

Deno.test({
  name: "deno task demo --import: the compute serves the imported database",
  ignore: FAST_IMPORT_MISSING !== undefined,
  fn: async () => {
    await using source = await startLocalPostgres();
    await populateSource(source.connstr);
    const expected = await snapshot(source.connstr);
    const dir = await Deno.makeTempDir({ prefix: "demo-import-test-" });
    const demo = new Deno.Command(Deno.execPath(), {
      args: ["task", "demo", "--dir", dir, "--import", source.connstr],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = Promise.all([
      new Response(demo.stdout).text(),
      new Response(demo.stderr).text(),
    ]);
    let stopped = false;
    try {
      const clusterJsonPath = `${dir}/cluster.json`;
      await eventually(
        () => Deno.stat(clusterJsonPath).then(() => true, () => false),
        "cluster.json written",
        180_000,
      );
      const json = JSON.parse(await Deno.readTextFile(clusterJsonPath));
      const [compute] = json.computes;
      const neondb = compute.postgres.replace(/\/postgres$/, "/neondb");
      assert.deepEqual(await snapshot(neondb), expected);

      demo.kill("SIGINT");
      stopped = true;
      const { code } = await within(demo.status, 60_000, "demo exit after SIGINT");
      const [stdout, stderr] = await output;
      assert.equal(code, 0, `${stdout}\n${stderr}`);
      assert.match(stdout, /importing the source database with fast_import/);
      assert.match(stdout, /pg_restore done: \d+ of \d+ items restored, 4 of 4 tables/);
      assert.match(
        stdout,
        new RegExp(`imported into timeline ${compute.tenant_id}/${compute.timeline_id}`),
      );
      assert.ok(stdout.includes(`psql '${neondb}'  (imported)`), stdout);
    } finally {
      if (!stopped) demo.kill("SIGTERM");
      await demo.status;
      await output;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
