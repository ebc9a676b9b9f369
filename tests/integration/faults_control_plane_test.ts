/**
 * Control-plane faults injected into the harness's real control plane, for the
 * spec fetch at start and for `/refresh_configuration`, and what the manager
 * does about each, as Neon's compute_ctl does (reference neon-01 §5.1, §6):
 * 502, 503 and a 200 whose body does not decode (not JSON, or JSON of another
 * shape) are retried, three attempts 100 ms apart; any other status (404) ends
 * the fetch at once. At start a failed fetch ends the process with exit 1 and
 * "neither spec nor confirmation that compute is in the Empty state was
 * received" (now with the reason); during a refresh it leaves the compute in
 * `refresh_configuration_pending`, still serving, until the next request. Each
 * attempt is counted in `compute_ctl_cplane_requests_total{http_status}`.
 */

import assert from "node:assert/strict";
import {
  type ComputeHandle,
  specPageserver,
  startCluster,
  withPageserver,
} from "../../harness/cluster.ts";
import type { ControlPlaneFault } from "../../harness/faults.ts";
import {
  AckedRows,
  expectRunningWithEveryRow,
  type FaultTally,
  faultTally,
  launchOn,
  terminate,
  timelineWithRows,
} from "../_support/faults.ts";
import { scaled } from "../../harness/reliability/record.ts";
import { eventually, metricValue, show } from "./_helpers.ts";

const CPLANE_REQUESTS = "compute_ctl_cplane_requests_total";

/** A config the manager cannot decode: its spec lacks `cluster` and `suspend_timeout_seconds`. */
const WRONG_SHAPE = JSON.stringify({
  status: "attached",
  spec: { format_version: 1.0 },
  compute_ctl_config: { jwks: { keys: [] } },
});

/** A retryable fault, the `http_status` label its attempts get, and why the fetch gave up. */
const RETRIED_FAULTS: readonly { fault: ControlPlaneFault; label: string; reason: RegExp }[] = [
  {
    fault: { kind: "http-error", status: 502, body: "upstream unavailable" },
    label: "502 Bad Gateway",
    reason: /control plane responded with 502 Bad Gateway/,
  },
  {
    fault: { kind: "http-error", status: 503 },
    label: "503 Service Unavailable",
    reason: /control plane responded with 503 Service Unavailable/,
  },
  {
    fault: { kind: "garbage", body: "<html>Bad gateway</html>" },
    label: "200 OK",
    reason: /could not decode the control plane response: .*JSON/,
  },
  {
    fault: { kind: "garbage", body: WRONG_SHAPE },
    label: "200 OK",
    reason: /could not decode the control plane response: .*cluster/,
  },
];

const NOT_FOUND: ControlPlaneFault = {
  kind: "http-error",
  status: 404,
  body: '{"error":"compute not found"}',
};

/** Answers that end the fetch at once; in the long run also 500, 504 and 401. */
const FATAL_FAULTS: readonly { fault: ControlPlaneFault; reason: RegExp }[] = [
  {
    fault: NOT_FOUND,
    reason: /control plane responded with 404 Not Found: \{"error":"compute not found"\}$/,
  },
  {
    fault: {
      kind: "garbage" as const,
      body: JSON.stringify({
        status: "attached",
        spec: null,
        compute_ctl_config: { jwks: { keys: [] } },
      }),
    },
    reason: /compute is attached, but spec is empty$/,
  },
  ...([[500, "Internal Server Error"], [504, "Gateway Timeout"], [401, "Unauthorized"]] as const)
    .map(([status, reason]) => ({
      fault: { kind: "http-error", status, body: "nope" } as const,
      reason: new RegExp(`control plane responded with ${status} ${reason}: nope$`),
    })),
].slice(0, scaled(2, 5));

/** The manager's value of `compute_ctl_cplane_requests_total{rpc="GetConfig", http_status}`. */
async function cplaneRequests(compute: ComputeHandle, httpStatus: string): Promise<number> {
  return metricValue(await compute.metrics(), CPLANE_REQUESTS, {
    rpc: "GetConfig",
    http_status: httpStatus,
  }) ?? 0;
}

/**
 * The manager gave up on the control plane at start: exit 1, no crash, nothing
 * left running, and one log line saying so with `reason`.
 */
async function expectGaveUpAtStart(
  tally: FaultTally,
  compute: ComputeHandle,
  reason: RegExp,
): Promise<void> {
  const log = await tally.expectOrderlyExit(compute, 1);
  await tally.check("unexpectedStatus", () => {
    const line = log.split("\n").find((l) =>
      l.includes("neither spec nor confirmation that compute is in the Empty state was received")
    );
    assert.ok(line, "the reference's message is logged");
    assert.match(line, reason);
    assert.doesNotMatch(log, /HTTP server listening/, "no server was started");
  });
}

Deno.test("the spec fetch at start: 502, 503 and undecodable bodies retried three times, 404 and attached-without-spec fatal at once", async () => {
  await using cluster = await startCluster({ pageservers: 1 });
  await using tally = faultTally("control plane failing the spec fetch at start");
  const acked = new AckedRows();
  const timeline = await timelineWithRows(cluster, acked);
  const cp = cluster.controlPlane;
  const launch = (id: string, fault: ControlPlaneFault, times?: number) => {
    const specFault = cp.specFault(id);
    specFault.arm(fault, { times });
    tally.track(() => specFault.injected);
    return launchOn(cluster, timeline, { id, source: "control-plane" });
  };

  for (const [index, { fault, label, reason }] of RETRIED_FAULTS.entries()) {
    // Every attempt: three, then the process ends.
    const gaveUp = await launch(`gave-up-${index}`, fault);
    await expectGaveUpAtStart(
      tally,
      gaveUp,
      new RegExp(
        `Exhausted all attempts to retrieve the config from the control plane: ${reason.source}`,
      ),
    );
    await tally.check("unexpectedStatus", () => assert.equal(cp.requests(gaveUp.id), 3, label));

    // The first two attempts only: the third brings the spec.
    const retried = await launch(`retried-${index}`, fault, 2);
    await tally.check("unusableComputes", () => retried.waitForStatus("running"));
    const attempts = {
      faulty: await cplaneRequests(retried, label),
      ok: await cplaneRequests(retried, "200 OK"),
    };
    await tally.check("unexpectedStatus", () => {
      assert.equal(cp.requests(retried.id), 3, `${label}: requests`);
      if (label === "200 OK") assert.equal(attempts.ok, 3, "three attempts, all 200 OK");
      else assert.deepEqual(attempts, { faulty: 2, ok: 1 }, `${label}: attempts counted`);
    });
    const last = index === RETRIED_FAULTS.length - 1;
    await expectRunningWithEveryRow(tally, acked, retried, last ? 0 : 5);
  }

  // Once: fatal at the first answer, though the next would have brought the spec.
  for (const [index, { fault, reason }] of FATAL_FAULTS.entries()) {
    const fatal = await launch(`fatal-${index}`, fault, 1);
    await expectGaveUpAtStart(tally, fatal, reason);
    await tally.check(
      "unexpectedStatus",
      () => assert.equal(cp.requests(fatal.id), 1, reason.source),
    );
  }
});

Deno.test("/refresh_configuration under control-plane faults: pending, still serving, until a refresh gets through", async () => {
  await using cluster = await startCluster({ pageservers: 2 });
  await using tally = faultTally("control plane failing /refresh_configuration");
  const acked = new AckedRows();
  const timeline = await timelineWithRows(cluster, acked);
  const compute = await launchOn(cluster, timeline, { id: "refreshing", source: "control-plane" });
  await tally.check("unusableComputes", () => compute.waitForStatus("running"));
  const cp = cluster.controlPlane;
  const specFault = cp.specFault(compute.id);
  tally.track(() => specFault.injected);
  const postmaster = await compute.postmasterPid();

  /** Arms `fault`, asks for a refresh and waits for `requests` spec requests and then `status`. */
  const refreshUnder = async (
    fault: ControlPlaneFault,
    times: number | undefined,
    requests: number,
    status: "running" | "refresh_configuration_pending",
  ) => {
    specFault.arm(fault, { times });
    const before = cp.requests(compute.id);
    const answer = await compute.refreshConfiguration();
    await tally.check("unexpectedStatus", () => assert.equal(answer.status, 200, answer.text));
    await eventually(
      () => cp.requests(compute.id) >= before + requests,
      `${requests} spec requests`,
    );
    const reached = await tally.check(
      "unexpectedStatus",
      () => compute.waitForStatus(status, 30_000),
    );
    specFault.clear();
    await tally.check("unexpectedStatus", () => {
      assert.equal(reached.error, null, "a refresh sets no error");
      assert.equal(cp.requests(compute.id), before + requests, "no more requests than that");
    });
    // Postgres was never touched: same postmaster, and it takes commits.
    await tally.check("unusableComputes", async () => {
      assert.equal(await compute.postmasterPid(), postmaster, "no restart");
      await acked.write(compute.postgresUrl, 5);
    });
  };

  // 502 twice: the third attempt brings the same pageserver, nothing to do.
  await refreshUnder(RETRIED_FAULTS[0].fault, 2, 3, "running");
  // A body that is not JSON, then one of the wrong shape, on every attempt: three each, pending.
  await refreshUnder(RETRIED_FAULTS[2].fault, undefined, 3, "refresh_configuration_pending");
  await refreshUnder(RETRIED_FAULTS[3].fault, undefined, 3, "refresh_configuration_pending");
  // 404 once: no retry, pending.
  await refreshUnder(NOT_FOUND, 1, 1, "refresh_configuration_pending");
  // The control plane now names the other pageserver; 503 twice, then it gets through.
  const [, second] = cluster.pageservers;
  await compute.updateConfig((config) => ({
    ...config,
    spec: withPageserver(config.spec!, specPageserver(second)),
  }));
  await refreshUnder(RETRIED_FAULTS[1].fault, 2, 3, "running");
  await tally.check(
    "unexpectedStatus",
    async () =>
      assert.equal(await show(compute.postgresUrl, "neon.pageserver_connstring"), second.libpqUrl),
  );

  // Every attempt counted under its answer: the start, then 3 + 3 + 3 + 1 + 3.
  const metrics = await compute.metrics();
  await tally.check("unexpectedStatus", () => {
    for (
      const [label, count] of [
        ["200 OK", 1 + 1 + 3 + 3 + 1],
        ["502 Bad Gateway", 2],
        ["503 Service Unavailable", 2],
        ["404 Not Found", 1],
      ] as const
    ) {
      const value = metricValue(metrics, CPLANE_REQUESTS, { rpc: "GetConfig", http_status: label });
      assert.equal(value, count, label);
    }
  });
  await tally.expectRows(compute.postgresUrl, acked.ids);
  await terminate(compute);
  await tally.expectOrderlyExit(compute, 0);
});
