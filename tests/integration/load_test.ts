/**
 * A compute under load: 64 HTTP clients (keep-alive connections) poll
 * `/status` with the compute token (auth on) and `/metrics` without pause,
 * the insert and bank workloads commit, and meanwhile the compute takes 20
 * `/configure` calls in a row, each with another setting value and one more
 * role. No request may fail or answer 5xx, every `/configure` ends `running`,
 * the last spec is in force, and every acknowledged row is there at the end.
 * Request counts and p50/p99 latencies are printed and recorded (`load`
 * family), never asserted.
 */

import assert from "node:assert/strict";
import { type JsonObject, md5Password, startCluster } from "../../harness/cluster.ts";
import { startWorkloads, verify } from "../../harness/failover/workload.ts";
import { emptyRecord, recordFamily, scaled } from "../../harness/reliability/record.ts";
import { query, show } from "./_helpers.ts";

const CLIENTS = 64;
const RECONFIGURES = scaled(20, 100);
const PATHS = ["/status", "/metrics"] as const;

/** What the polling clients saw. */
interface PollStats {
  requests: number;
  /** Network errors and answers other than 200 below 500, or a body that is not what it should be. */
  failed: number;
  serverErrors: number;
  /** Requests that completed while a `/configure` was in flight. */
  duringConfigure: number;
  latenciesMs: Record<(typeof PATHS)[number], number[]>;
  /** `/status` values seen, with how often. */
  statuses: Map<string, number>;
  /** The first few problems, for the assertion message. */
  problems: string[];
  /** Requests per client. */
  perClient: number[];
}

Deno.test(`${CLIENTS} clients on /status and /metrics, inserts and ${RECONFIGURES} reconfigures: no request fails`, async () => {
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "load" }] });
  const compute = cluster.compute("load");
  const { compute_ctl_config } = await compute.readConfig();
  await using workloads = await startWorkloads({ url: compute.postgresUrl });
  using http = Deno.createHttpClient({ poolMaxIdlePerHost: CLIENTS });

  const stats: PollStats = {
    requests: 0,
    failed: 0,
    serverErrors: 0,
    duringConfigure: 0,
    latenciesMs: { "/status": [], "/metrics": [] },
    statuses: new Map(),
    problems: [],
    perClient: Array(CLIENTS).fill(0),
  };
  let configuring = false;
  const stopPolling = new AbortController();
  const poll = async (client: number) => {
    for (let round = client; !stopPolling.signal.aborted; round++) {
      const path = PATHS[round % PATHS.length];
      const outcome = await pollOnce(compute.externalHttp, path, compute.tokens.compute, http);
      stats.requests += 1;
      stats.perClient[client] += 1;
      if (configuring) stats.duringConfigure += 1;
      if (outcome.latencyMs !== null) stats.latenciesMs[path].push(outcome.latencyMs);
      if (outcome.status !== undefined) {
        stats.statuses.set(outcome.status, (stats.statuses.get(outcome.status) ?? 0) + 1);
      }
      if (outcome.problem === null) continue;
      if (outcome.serverError) stats.serverErrors += 1;
      else stats.failed += 1;
      if (stats.problems.length < 5) stats.problems.push(`${path}: ${outcome.problem}`);
    }
  };
  const clients = Array.from({ length: CLIENTS }, (_, client) => poll(client));

  const configureProblems: string[] = [];
  const configureLatenciesMs: number[] = [];
  const baseCluster = compute.spec.cluster as JsonObject;
  const baseRoles = baseCluster.roles as JsonObject[];
  try {
    for (let round = 1; round <= RECONFIGURES; round++) {
      const spec = {
        ...compute.spec,
        cluster: {
          ...baseCluster,
          roles: [...baseRoles, ...loadRoles(round)],
          settings: [{ name: "work_mem", value: workMem(round), vartype: "string" }],
        },
      };
      configuring = true;
      const started = performance.now();
      const result = await compute.configure({ spec, compute_ctl_config });
      configuring = false;
      configureLatenciesMs.push(performance.now() - started);
      if (result.status !== 200 || result.body?.status !== "running") {
        configureProblems.push(`/configure #${round}: ${result.status} ${result.text}`);
      }
    }
  } finally {
    configuring = false;
    stopPolling.abort();
    await Promise.all(clients);
    await workloads.stop();
  }

  const check = await verify(compute.postgresUrl, workloads);
  const lastWorkMem = await show(compute.postgresUrl, "work_mem");
  const roles = await query<{ count: number }>(
    compute.postgresUrl,
    "SELECT count(*)::int AS count FROM pg_roles WHERE rolname LIKE 'load\\_role\\_%'",
  );

  const polled = [...stats.latenciesMs["/status"], ...stats.latenciesMs["/metrics"]];
  const latencyMs = {
    status: percentiles(stats.latenciesMs["/status"]),
    metrics: percentiles(stats.latenciesMs["/metrics"]),
    polled: percentiles(polled),
    configure: percentiles(configureLatenciesMs),
  };
  console.log(
    `load: ${stats.requests} polling requests from ${CLIENTS} clients ` +
      `(${stats.latenciesMs["/status"].length} /status, ${
        stats.latenciesMs["/metrics"].length
      } /metrics; ${stats.duringConfigure} during a /configure), ` +
      `${RECONFIGURES} /configure, ${workloads.acknowledgedRows.size} rows and ` +
      `${workloads.acknowledgedTransfers} transfers acknowledged\n` +
      `  latency ms: /status ${describeLatency(latencyMs.status)}, /metrics ${
        describeLatency(latencyMs.metrics)
      }, ` +
      `/configure ${describeLatency(latencyMs.configure)}\n` +
      `  statuses seen: ${JSON.stringify(Object.fromEntries(stats.statuses))}`,
  );
  const record = {
    ...emptyRecord("load", "64 clients, inserts and reconfigures", "requests"),
    tried: stats.requests + RECONFIGURES,
    rowsLost: check.missingRows.length + (check.bankSum === workloads.bankTotal ? 0 : 1),
    unexpectedStatus: stats.failed + stats.serverErrors + configureProblems.length,
    observations: `latency ms: /status ${describeLatency(latencyMs.status)}; ` +
      `/metrics ${describeLatency(latencyMs.metrics)}; ` +
      `/configure ${describeLatency(latencyMs.configure)}`,
  };
  await recordFamily(record);

  assert.deepEqual(
    { failed: stats.failed, serverErrors: stats.serverErrors, problems: stats.problems },
    { failed: 0, serverErrors: 0, problems: [] },
  );
  assert.deepEqual(configureProblems, []);
  assert.equal(stats.statuses.get("failed"), undefined, "the compute never reported failed");
  assert.deepEqual(check.missingRows, []);
  assert.equal(check.bankSum, workloads.bankTotal);
  assert.ok(workloads.acknowledgedRows.size > 0, "the insert workload committed");
  // The load overlapped the reconfigures, and every client kept polling both routes.
  assert.ok(stats.duringConfigure > 0, "no request completed during a /configure");
  assert.ok(Math.min(...stats.perClient) >= PATHS.length, `per client: ${stats.perClient}`);
  // The last spec is the one in force.
  assert.equal(lastWorkMem, workMem(RECONFIGURES));
  assert.equal(roles[0].count, RECONFIGURES);
});

/** One request's outcome: latency when it was answered, and what was wrong, if anything. */
interface PollOutcome {
  latencyMs: number | null;
  /** `/status`'s `status` field. */
  status?: string;
  problem: string | null;
  serverError: boolean;
}

async function pollOnce(
  base: string,
  path: (typeof PATHS)[number],
  token: string,
  client: Deno.HttpClient,
): Promise<PollOutcome> {
  const started = performance.now();
  try {
    const response = await fetch(`${base}${path}`, {
      client,
      headers: path === "/status" ? { authorization: `Bearer ${token}` } : {},
    });
    const text = await response.text();
    const latencyMs = performance.now() - started;
    if (response.status !== 200) {
      return {
        latencyMs,
        problem: `${response.status} ${text.slice(0, 200)}`,
        serverError: response.status >= 500,
      };
    }
    if (path === "/metrics") {
      const problem = text.includes("# TYPE ") ? null : `not Prometheus text: ${text.slice(0, 80)}`;
      return { latencyMs, problem, serverError: false };
    }
    const status = JSON.parse(text).status;
    const problem = typeof status === "string" ? null : `no status in ${text.slice(0, 200)}`;
    return { latencyMs, status, problem, serverError: false };
  } catch (error) {
    return { latencyMs: null, problem: String(error), serverError: false };
  }
}

/** Roles `load_role_1` … `load_role_<count>`, each with its own password. */
function loadRoles(count: number): JsonObject[] {
  return Array.from({ length: count }, (_, index) => {
    const name = `load_role_${index + 1}`;
    return { name, encrypted_password: md5Password(`${name}-password`, name), options: null };
  });
}

function workMem(round: number): string {
  return `${4 + round}MB`;
}

/** p50 and p99 (nearest rank) in ms, rounded to 0.1 ms; zeros for no samples. */
function percentiles(samples: readonly number[]): { count: number; p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number) =>
    sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  const round = (value: number) => Math.round(value * 10) / 10;
  return { count: sorted.length, p50: round(rank(0.5)), p99: round(rank(0.99)) };
}

function describeLatency(latency: { p50: number; p99: number }): string {
  return `p50 ${latency.p50} p99 ${latency.p99}`;
}
