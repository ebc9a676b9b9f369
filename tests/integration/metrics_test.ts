/**
 * `/metrics` of a real compute manager through its lifecycle (empty →
 * configure → running → terminate), driven with the typed client: the text
 * passes the suite's own strict format check (`tests/_support/exposition_check.ts`)
 * and, as a step of its own, `promtool check metrics` where promtool is
 * installed (`.ci/run` installs Debian's `prometheus` package and sets
 * `REQUIRE_PROMTOOL=1`, so there the step fails instead of being ignored), every family of neon-02 §7 that applies to
 * this compute is there, `compute_ctl_up` has exactly one series at 1 that
 * matches `/status` after each step, the HTTP metrics count by route; and
 * `/openapi.json` is what `docs/openapi.json` holds.
 */

import assert from "node:assert/strict";
import { startCluster } from "../../harness/cluster.ts";
import { OPENAPI_PATH } from "../../harness/openapi.ts";
import {
  ComputeApiError,
  type ComputeClient,
  type ConfigurationRequestInput,
  createComputeClient,
} from "../../src/api/client.ts";
import { statusDisplay } from "../../src/api/responses.ts";
import { eventually, metricValue } from "./_helpers.ts";
import { expositionProblems } from "../_support/exposition_check.ts";

/**
 * The §7 families this compute exports: the plain counters and gauges always,
 * the label vectors that get a series here (`compute_installed_extensions`
 * after a primary starts, `compute_ctl_cplane_requests_total` for a compute
 * fed by the control plane). Not here, because nothing sets them on this
 * compute: `compute_ctl_remote_ext_requests_total` (no remote extensions),
 * `compute_ctl_db_migration_failed_total` (no failed migration) and
 * `pg_cctl_attached` (lakebase mode only).
 */
const NEON_FAMILIES = [
  "compute_ctl_up",
  "compute_installed_extensions",
  "compute_ctl_cplane_requests_total",
  "compute_audit_log_dir_size",
  "compute_pg_current_downtime_ms",
  "compute_pg_downtime_ms_total",
  "compute_ctl_lfc_prewarms_total",
  "compute_ctl_lfc_prewarm_errors_total",
  "compute_ctl_lfc_offloads_total",
  "compute_ctl_lfc_offload_errors_total",
  "pg_cctl_pagestream_request_errors_total",
  "pg_cctl_configure_statement_timeout_errors_total",
];

/** Families this implementation adds. */
const OWN_FAMILIES = [
  "process_resident_memory_bytes",
  "process_cpu_seconds_total",
  "process_start_time_seconds",
  "compute_ctl_http_requests_total",
  "compute_ctl_http_request_duration_seconds",
];

/**
 * Lint findings promtool reports that come from Neon's own metric names, which
 * we keep on purpose. Anything else it reports fails the test; a parse error
 * (exit 1) always does.
 */
const ACCEPTED_LINT = new Set([
  "compute_pg_current_downtime_ms metric names should not contain abbreviated units",
  "compute_pg_downtime_ms_total metric names should not contain abbreviated units",
]);

/** Whether promtool is on `PATH`. */
function promtoolInstalled(): boolean {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((dir) => dir !== "");
  return dirs.some((dir) => {
    try {
      return Deno.statSync(`${dir}/promtool`).isFile;
    } catch {
      return false;
    }
  });
}

/** The promtool step runs where promtool is, and everywhere `REQUIRE_PROMTOOL=1` says it must. */
const PROMTOOL_STEP = promtoolInstalled() || Deno.env.get("REQUIRE_PROMTOOL") === "1";

/**
 * Runs `promtool check metrics` on `text`: it must parse (exit 0, or 3 with
 * only {@link ACCEPTED_LINT} findings). Fails without promtool.
 */
async function promtoolCheck(text: string): Promise<void> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        "promtool is not installed: install Debian's `prometheus` package " +
          "(apt-get install prometheus; .ci/run does it)",
      );
    }
    throw error;
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  const findings = output.split("\n").map((line) => line.trim()).filter((line) => line !== "");
  const unexpected = findings.filter((line) => !ACCEPTED_LINT.has(line));
  const failed = `promtool check metrics (exit ${code}):\n${output}\n--- metrics ---\n${text}`;
  assert.ok(code === 0 || code === 3, failed);
  assert.deepEqual(unexpected, [], failed);
}

/** The families (`# TYPE` lines) in Prometheus text. */
function families(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1]);
}

/** The `compute_ctl_up` sample lines. */
function upSeries(text: string): string[] {
  return text.split("\n").filter((line) => line.startsWith("compute_ctl_up{"));
}

/**
 * Scrapes, checks the format, and checks that `compute_ctl_up` says what
 * `/status` says; the text is kept in `scraped` for the promtool step.
 */
async function checkStep(api: ComputeClient, step: string, scraped: string[]): Promise<string> {
  const { status } = await api.status();
  const text = await api.metrics();
  assert.deepEqual(expositionProblems(text), [], `${step}:\n${text}`);
  scraped.push(text);
  const series = upSeries(text);
  assert.equal(series.length, 1, `${step}: one compute_ctl_up series, got ${series}`);
  assert.equal(
    metricValue(text, "compute_ctl_up", { build_tag: "latest", status: statusDisplay(status) }),
    1,
    `${step}: compute_ctl_up{status="${statusDisplay(status)}"} is 1 (got ${series[0]})`,
  );
  return text;
}

Deno.test("/metrics through empty → configure → running → terminate", async (t) => {
  const scraped: string[] = [];
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "metrics", empty: true, source: "control-plane", exitDelayMs: 30_000 }],
  });
  const compute = cluster.compute("metrics");
  const api = createComputeClient({
    externalUrl: compute.externalHttp,
    internalUrl: compute.internalHttp,
    token: compute.tokens.admin,
  });

  // empty
  assert.equal((await api.status()).status, "empty");
  const empty = await checkStep(api, "empty", scraped);
  assert.ok(!families(empty).includes("compute_installed_extensions"), "no scan before a start");

  // configure → running
  const { compute_ctl_config } = await compute.readConfig();
  // The harness keeps its spec as plain JSON; the server checks its shape.
  const body = { spec: compute.spec, compute_ctl_config } as unknown as ConfigurationRequestInput;
  const configured = await api.configure(body);
  assert.equal(configured.status, "running");
  await checkStep(api, "running", scraped);

  // The primary's first scan: plpgsql, owned by the bootstrap superuser, in every database.
  await eventually(
    async () => families(await api.metrics()).includes("compute_installed_extensions"),
    "compute_installed_extensions after the primary started",
  );
  const running = await checkStep(api, "running, scanned", scraped);
  const plpgsql = metricValue(running, "compute_installed_extensions", {
    extension_name: "plpgsql",
    version: "1.0",
    owned_by_superuser: "1",
  });
  assert.ok(plpgsql !== undefined && plpgsql >= 2, `plpgsql in ≥ 2 databases, got ${plpgsql}`);
  assert.match(await compute.readLog(), /\[NEON_EXT_STAT\] \{"extensions":\[/);

  const present = families(running);
  for (const family of [...NEON_FAMILIES, ...OWN_FAMILIES]) {
    assert.ok(present.includes(family), `family ${family} in /metrics`);
  }
  assert.ok(
    present.indexOf("compute_ctl_up") < present.indexOf("process_resident_memory_bytes"),
    "Neon's families come first",
  );
  assert.equal(
    metricValue(running, "compute_ctl_cplane_requests_total", {
      rpc: "GetConfig",
      http_status: "200 OK",
    }),
    1,
  );

  // HTTP metrics, labelled with the route table's path.
  assert.equal((await compute.request("GET", "/no/such/route")).status, 404);
  assert.equal((await compute.request("GET", "/configure")).status, 405);
  const http = await api.metrics();
  const requests = (labels: Record<string, string>) =>
    metricValue(http, "compute_ctl_http_requests_total", labels) ?? 0;
  assert.ok(
    requests({ server: "external", route: "/status", method: "GET", status: "200" }) >= 4,
  );
  assert.equal(
    requests({ server: "external", route: "/configure", method: "POST", status: "200" }),
    1,
  );
  assert.ok(
    requests({ server: "external", route: "unmatched", method: "GET", status: "404" }) >= 1,
  );
  assert.equal(
    requests({ server: "external", route: "/configure", method: "GET", status: "405" }),
    1,
  );
  assert.equal(
    metricValue(http, "compute_ctl_http_request_duration_seconds_count", {
      server: "external",
      route: "/configure",
      method: "POST",
      status: "200",
    }),
    1,
  );
  assert.ok(!/route="\/no\/such\/route"/.test(http), "raw URLs never become labels");

  // terminate
  const terminated = await api.terminate();
  assert.equal(terminated.alreadyTerminated, false);
  assert.match(terminated.lsn ?? "", /^[0-9A-F]+\/[0-9A-F]+$/);
  assert.equal((await api.status()).status, "terminated");
  await checkStep(api, "terminated", scraped);
  const again = await api.terminate();
  assert.equal(again.alreadyTerminated, true);

  await t.step({
    name: `promtool check metrics on the ${scraped.length} scrapes`,
    ignore: !PROMTOOL_STEP,
    fn: async () => {
      for (const text of scraped) await promtoolCheck(text);
    },
  });
});

Deno.test("/openapi.json is served without auth and equals docs/openapi.json", async () => {
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "openapi", empty: true }],
  });
  const compute = cluster.compute("openapi");
  const anonymous = createComputeClient({ externalUrl: compute.externalHttp });
  const served = await anonymous.openapi();
  const committed = JSON.parse(await Deno.readTextFile(OPENAPI_PATH));
  assert.deepEqual(served, committed);

  // The rest of the external API still wants a token.
  const error = await anonymous.status().then(() => undefined, (error: unknown) => error);
  assert.ok(error instanceof ComputeApiError, String(error));
  assert.equal(error.status, 400);
  assert.equal(error.errorMessage, "invalid authorization token");
});
