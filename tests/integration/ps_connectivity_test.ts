/**
 * Ported from Neon's `test_hadron_ps_connectivity_metrics` (neon-04 §D.7): the
 * compute's pageserver stops serving its tenant behind the compute's back
 * (turned secondary, or lost entirely), so the emulated Neon extension's probe
 * is misrouted. Both sides count it: the pageserver's
 * `pageserver_misrouted_pagestream_requests_total` and the manager's
 * `pg_cctl_pagestream_request_errors_total`. Once the configuration names the
 * pageserver that has the tenant attached (`config.json` only, no
 * `/configure`), the compute heals onto it through `/refresh_configuration`
 * and both counters stop rising.
 *
 * Neon's test points the compute at the wrong pageserver with a reconfigure;
 * here the tenant moves away from the right one instead, which exercises the
 * same counters and also the healing the issue asks for.
 */

import assert from "node:assert/strict";
import { specPageserver, startCluster, withPageserver } from "../../harness/cluster.ts";
import type { Pageserver } from "../../harness/pageserver.ts";
import { eventually, metricValue, show } from "./_helpers.ts";

const MISROUTED_METRIC = "pageserver_misrouted_pagestream_requests_total";
const ERRORS_METRIC = "pg_cctl_pagestream_request_errors_total";
const CONNSTRING = "neon.pageserver_connstring";

Deno.test("misrouted to a secondary: both counters rise, the compute heals by itself", () =>
  misrouted((pageserver, tenant) => pageserver.setSecondary(tenant)));

Deno.test("misrouted to a pageserver without the tenant: both counters rise, it heals", () =>
  misrouted((pageserver, tenant) => pageserver.detach(tenant)));

async function misrouted(loseTenant: (pageserver: Pageserver, tenant: string) => void) {
  await using cluster = await startCluster({
    pageservers: 2,
    computes: [{ id: "ps-metrics", neonExtension: { intervalMs: 200, backoffMs: 200 } }],
  });
  const compute = cluster.compute("ps-metrics");
  const tenant = compute.tenantId;
  const extension = compute.neonExtension!;
  const [current, other] = cluster.pageservers;
  // Placement {"Attached": 1}: attached where the compute points, secondary on the other.
  other.setSecondary(tenant);
  assert.equal(await show(compute.postgresUrl, CONNSTRING), current.libpqUrl);
  const errors = async () => metricValue(await compute.metrics(), ERRORS_METRIC);
  await eventually(() => extension.probes >= 2, "the probe runs against the attached pageserver");
  assert.equal(await misroutedCount(current), 0);
  assert.equal(await misroutedCount(other), 0);
  assert.equal(await errors(), 0);

  // The tenant moves without telling the compute.
  other.attach(tenant);
  loseTenant(current, tenant);
  await eventually(
    async () => ((await misroutedCount(current)) ?? 0) > 0 && ((await errors()) ?? 0) > 0,
    "the pageserver's and the manager's counters rise",
  );

  // The control plane learns where the tenant lives; nobody calls /configure.
  await compute.updateConfig((config) => ({
    ...config,
    spec: withPageserver(config.spec!, specPageserver(other)),
  }));
  await eventually(
    async () => (await show(compute.postgresUrl, CONNSTRING)) === other.libpqUrl,
    "the compute heals onto the pageserver with the tenant attached",
  );

  // The loop is serial: two probes after Postgres names `other`, any earlier refresh is done.
  const healedAt = extension.probes;
  await eventually(() => extension.probes >= healedAt + 2, "probes after healing");
  const settled = {
    current: await misroutedCount(current),
    errors: await errors(),
    refreshes: extension.refreshes,
    probes: extension.probes,
  };
  await eventually(() => extension.probes >= settled.probes + 3, "more probes after healing");
  assert.equal(await misroutedCount(current), settled.current, "no more misrouted requests");
  assert.equal(await errors(), settled.errors, `${ERRORS_METRIC} stopped rising`);
  assert.equal(extension.refreshes, settled.refreshes, "no more refreshes");
  assert.equal(await misroutedCount(other), 0, "the attached pageserver saw no misrouted request");
  assert.doesNotMatch(await compute.readLog(), / path=\/configure /, "no /configure was sent");
}

/** `pageserver_misrouted_pagestream_requests_total` from the pageserver's `/metrics`. */
async function misroutedCount(pageserver: Pageserver): Promise<number | undefined> {
  const response = await fetch(`${pageserver.httpUrl}/metrics`);
  return metricValue(await response.text(), MISROUTED_METRIC);
}
