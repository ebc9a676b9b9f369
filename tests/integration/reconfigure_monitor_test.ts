/**
 * What Neon's `test_compute_reconfigure.py` and `test_compute_monitor.py`
 * check, on one running primary: a changed setting reaches Postgres through
 * `/configure` even with `skip_pg_catalog_updates`, and `compute_ctl_up`
 * still has one series; reordering `safekeeper_connstrings` changes
 * `neon.safekeepers` without a restart; and the monitor's downtime gauges
 * while the `postgres` database is gone and after it is back.
 */

import assert from "node:assert/strict";
import { type JsonObject, startCluster } from "../../harness/cluster.ts";
import { eventually, metricValue, query, show } from "./_helpers.ts";

const COMPUTE_CTL_CONFIG = { jwks: { keys: [] } };
const TEST_LOG_LINE_PREFIX = "%m [%p] [test_compute_reconfigure]: ";
const TEST_DB = "test_compute_monitor";

/** The sample lines of `name` (with or without labels) in Prometheus text. */
function samples(text: string, name: string): string[] {
  return text.split("\n").filter((line) =>
    line.startsWith(`${name}{`) || line.startsWith(`${name} `)
  );
}

Deno.test("reconfigure with skip_pg_catalog_updates, safekeeper order, monitor downtime", async (t) => {
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "reconf" }] });
  const compute = cluster.compute("reconf");
  const url = compute.postgresUrl;
  const configure = async (spec: JsonObject) => {
    const result = await compute.configure({ spec, compute_ctl_config: COMPUTE_CTL_CONFIG });
    assert.equal(result.status, 200, result.text);
    assert.equal(result.body.status, "running");
  };

  await t.step(
    "skip_pg_catalog_updates and a changed setting (test_compute_reconfigure)",
    async () => {
      assert.notEqual(await show(url, "log_line_prefix"), TEST_LOG_LINE_PREFIX);
      const postmaster = await compute.postmasterPid();
      await configure({
        ...compute.spec,
        skip_pg_catalog_updates: true,
        cluster: {
          ...(compute.spec.cluster as JsonObject),
          settings: [{ name: "log_line_prefix", vartype: "string", value: TEST_LOG_LINE_PREFIX }],
        },
      });
      // The reload is a SIGHUP: the postmaster takes it in asynchronously.
      await eventually(
        async () => (await show(url, "log_line_prefix")) === TEST_LOG_LINE_PREFIX,
        "log_line_prefix reloaded",
      );
      assert.equal(await compute.postmasterPid(), postmaster, "reconfigured, not restarted");

      const metrics = await compute.metrics();
      const up = samples(metrics, "compute_ctl_up");
      assert.equal(up.length, 1, `one compute_ctl_up sample, got ${up}`);
      const buildTag = Deno.env.get("BUILD_TAG") || "latest";
      assert.equal(
        metricValue(metrics, "compute_ctl_up", { status: "running", build_tag: buildTag }),
        1,
        up[0],
      );
    },
  );

  await t.step("reordered safekeeper_connstrings: new neon.safekeepers, no restart", async () => {
    const before = cluster.safekeepers.map((safekeeper) => safekeeper.address);
    assert.equal(await show(url, "neon.safekeepers"), before.join(","));
    const postmaster = await compute.postmasterPid();
    const reordered = [...before].reverse();
    assert.notDeepEqual(reordered, before);
    await configure({ ...compute.spec, safekeeper_connstrings: reordered });
    await eventually(
      async () => (await show(url, "neon.safekeepers")) === reordered.join(","),
      "neon.safekeepers reloaded in the new order",
    );
    assert.equal(await compute.postmasterPid(), postmaster, "same postmaster");
    assert.equal((await compute.status()).status, "running");
  });

  await t.step(
    "downtime gauges while the postgres database is gone (test_compute_monitor)",
    async () => {
      const admin = (database: string) => ({
        host: "127.0.0.1",
        port: compute.pgPort,
        user: "cloud_admin",
        database,
      });
      const gauges = async () => {
        const metrics = await compute.metrics();
        assert.equal(samples(metrics, "compute_pg_current_downtime_ms").length, 1, metrics);
        assert.equal(samples(metrics, "compute_pg_downtime_ms_total").length, 1, metrics);
        return {
          current: metricValue(metrics, "compute_pg_current_downtime_ms") ?? NaN,
          total: metricValue(metrics, "compute_pg_downtime_ms_total") ?? NaN,
        };
      };
      assert.equal((await gauges()).current, 0);

      await query(admin("postgres"), `CREATE DATABASE ${TEST_DB}`);
      await query(admin(TEST_DB), "DROP DATABASE postgres WITH (FORCE)");
      await eventually(async () => {
        const { current, total } = await gauges();
        return current > 0 && total > 0;
      }, "current and total downtime above 0");

      await query(admin(TEST_DB), "CREATE DATABASE postgres");
      let last = { current: NaN, total: NaN };
      await eventually(async () => {
        last = await gauges();
        return last.current === 0;
      }, "current downtime back to 0");
      assert.ok(last.total > 0, `total downtime stays above 0 (got ${last.total})`);
      assert.equal((await compute.status()).status, "running");
    },
  );
});
