/**
 * `POST /refresh_configuration` (internal port): the manager re-reads
 * `config.json`; a new pageserver is applied without a restart and counted in
 * `pg_cctl_pagestream_request_errors_total`; unchanged pageserver info means no
 * reconfiguration at all, even if other parts of the spec changed.
 */

import assert from "node:assert/strict";
import {
  type JsonObject,
  specPageserver,
  startCluster,
  withPageserver,
} from "../../harness/cluster.ts";
import { metricValue, show, within } from "./_helpers.ts";

const ERRORS_METRIC = "pg_cctl_pagestream_request_errors_total";

Deno.test("refresh-configuration follows config.json to the other pageserver", async () => {
  await using cluster = await startCluster({ pageservers: 2, computes: [{ id: "refresh" }] });
  const compute = cluster.compute("refresh");
  const [first, second] = cluster.pageservers;
  const errors = async () => metricValue(await compute.metrics(), ERRORS_METRIC) ?? 0;
  assert.equal(await show(compute.postgresUrl, "neon.pageserver_connstring"), first.libpqUrl);
  const postmaster = await compute.postmasterPid();
  const errorsBefore = await errors();

  // Like `neon_local endpoint update-pageservers`, then the extension's call.
  await compute.updateConfig((config) => ({
    ...config,
    spec: withPageserver(config.spec!, specPageserver(second)),
  }));
  const refreshed = await compute.refreshConfiguration();
  assert.equal(refreshed.status, 200, refreshed.text);
  await compute.waitForStatus("running", 30_000);

  assert.equal(await show(compute.postgresUrl, "neon.pageserver_connstring"), second.libpqUrl);
  assert.equal(await compute.postmasterPid(), postmaster, "no restart");
  assert.ok((await errors()) > errorsBefore, `${ERRORS_METRIC} went up`);
});

Deno.test("refresh-configuration with unchanged pageserver info does not reconfigure", async () => {
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "same" }] });
  const compute = cluster.compute("same");
  const workMem = await show(compute.postgresUrl, "work_mem");
  const confBefore = await Deno.stat(`${compute.pgdata}/postgresql.conf`);
  const errorsBefore = metricValue(await compute.metrics(), ERRORS_METRIC) ?? 0;

  // Another setting changes in config.json, but the pageserver does not.
  await compute.updateConfig((config) => {
    const spec = config.spec!;
    const clusterSpec = spec.cluster as JsonObject;
    return {
      ...config,
      spec: {
        ...spec,
        cluster: {
          ...clusterSpec,
          settings: [{ name: "work_mem", value: "7MB", vartype: "string" }],
        },
      },
    };
  });
  const refreshed = await compute.refreshConfiguration();
  assert.equal(refreshed.status, 200, refreshed.text);
  await compute.waitForStatus("running", 30_000);

  assert.equal(await show(compute.postgresUrl, "work_mem"), workMem, "the setting was not applied");
  const confAfter = await Deno.stat(`${compute.pgdata}/postgresql.conf`);
  assert.equal(
    confAfter.mtime?.getTime(),
    confBefore.mtime?.getTime(),
    "postgresql.conf untouched",
  );
  assert.ok((metricValue(await compute.metrics(), ERRORS_METRIC) ?? 0) > errorsBefore);
});

Deno.test("the control plane says empty during a refresh: the manager exits", async () => {
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "detached", source: "control-plane" }],
  });
  const compute = cluster.compute("detached");
  await compute.updateConfig((config) => ({ ...config, spec: null }));
  const refreshed = await compute.refreshConfiguration();
  assert.equal(refreshed.status, 200, refreshed.text);
  const code = await within(compute.exited, 30_000, "manager exit once no longer attached");
  assert.notEqual(code, 0);
});
