import assert from "node:assert/strict";
import { COMPUTE_STATUSES, type ComputeStatus, statusDisplay } from "../../src/api/responses.ts";
import {
  ComputeState,
  formatTimestamp,
  IllegalTransitionError,
  isLegalTransition,
  TRANSITIONS,
} from "../../src/compute/state.ts";
import { registry } from "../../src/metrics.ts";

/** The legal edges of neon-01 §3.2, written out independently of the table. */
const REFERENCE_EDGES: ReadonlyArray<[ComputeStatus, ComputeStatus]> = [
  ["empty", "configuration_pending"],
  ["empty", "init"],
  ["empty", "termination_pending_fast"],
  ["empty", "termination_pending_immediate"],
  ["configuration_pending", "init"],
  ["configuration_pending", "configuration"],
  ["init", "running"],
  ["init", "failed"],
  ["running", "configuration_pending"],
  ["running", "refresh_configuration_pending"],
  ["running", "termination_pending_fast"],
  ["running", "termination_pending_immediate"],
  ["configuration", "running"],
  ["configuration", "failed"],
  ["failed", "refresh_configuration_pending"],
  ["refresh_configuration_pending", "refresh_configuration_pending"],
  ["refresh_configuration_pending", "refresh_configuration"],
  ["refresh_configuration", "running"],
  ["refresh_configuration", "refresh_configuration_pending"],
  ["termination_pending_fast", "terminated"],
  ["termination_pending_immediate", "terminated"],
];

/** Ours beside the reference's: `/configure` after a failed reconfiguration (docs/compatibility.md). */
const ADDED_EDGES: ReadonlyArray<[ComputeStatus, ComputeStatus]> = [
  ["failed", "configuration_pending"],
];

const EXPECTED_EDGES = [...REFERENCE_EDGES, ...ADDED_EDGES];

/** Shortest path of legal moves from `empty` to `target`. */
function pathTo(target: ComputeStatus): ComputeStatus[] {
  const previous = new Map<ComputeStatus, ComputeStatus | null>([["empty", null]]);
  const queue: ComputeStatus[] = ["empty"];
  while (queue.length > 0) {
    const at = queue.shift()!;
    if (at === target) break;
    for (const next of TRANSITIONS[at]) {
      if (!previous.has(next)) {
        previous.set(next, at);
        queue.push(next);
      }
    }
  }
  const path: ComputeStatus[] = [];
  for (let at: ComputeStatus | null = target; at !== "empty"; at = previous.get(at!) ?? null) {
    assert.ok(at !== null, `${target} is unreachable from empty`);
    path.unshift(at);
  }
  return path;
}

function stateAt(status: ComputeStatus): ComputeState {
  const state = new ComputeState();
  for (const step of pathTo(status)) state.transition(step);
  assert.equal(state.status, status);
  return state;
}

async function upSeries(): Promise<Array<{ labels: Record<string, unknown>; value: number }>> {
  const metric = registry.getSingleMetric("compute_ctl_up");
  assert.ok(metric);
  return (await metric.get()).values.map(({ labels, value }) => ({ labels, value }));
}

async function assertUpIs(status: ComputeStatus): Promise<void> {
  const series = await upSeries();
  assert.equal(series.length, 1, JSON.stringify(series));
  assert.equal(series[0].value, 1);
  assert.equal(series[0].labels.status, statusDisplay(status));
  assert.equal(series[0].labels.build_tag, Deno.env.get("BUILD_TAG") || "latest");
}

Deno.test("the table has exactly the reference's edges plus the documented added one", () => {
  const actual = COMPUTE_STATUSES.flatMap((from) => TRANSITIONS[from].map((to) => `${from}>${to}`));
  const expected = EXPECTED_EDGES.map(([from, to]) => `${from}>${to}`);
  assert.deepEqual(actual.toSorted(), expected.toSorted());
});

Deno.test("every legal edge is taken and updates compute_ctl_up to one series at 1", async () => {
  for (const [from, to] of EXPECTED_EDGES) {
    const state = stateAt(from);
    await assertUpIs(from);
    assert.equal(state.transition(to, "test"), from);
    assert.equal(state.status, to);
    await assertUpIs(to);
  }
});

Deno.test("every illegal edge is rejected and changes nothing", async () => {
  let rejected = 0;
  for (const from of COMPUTE_STATUSES) {
    for (const to of COMPUTE_STATUSES) {
      if (isLegalTransition(from, to)) continue;
      const state = stateAt(from);
      assert.throws(() => state.transition(to), IllegalTransitionError);
      assert.equal(state.status, from);
      await assertUpIs(from);
      rejected++;
    }
  }
  assert.equal(rejected, COMPUTE_STATUSES.length ** 2 - EXPECTED_EDGES.length);
});

Deno.test("every reference edge is kept", () => {
  for (const [from, to] of REFERENCE_EDGES) {
    assert.ok(isLegalTransition(from, to), `${from} -> ${to} must stay legal`);
  }
});

Deno.test("reaching running clears the error a failure left; other moves keep it", () => {
  const state = stateAt("configuration");
  state.error = "apply failed";
  state.transition("failed", "apply failed");
  assert.equal(state.snapshot().error, "apply failed");
  state.transition("configuration_pending");
  state.transition("configuration");
  assert.equal(state.snapshot().error, "apply failed", "still failing until running");
  state.transition("running");
  assert.equal(state.snapshot().error, null);
});

Deno.test("a new state is empty and sets compute_ctl_up{status=empty}", async () => {
  stateAt("running");
  const state = new ComputeState();
  assert.equal(state.status, "empty");
  await assertUpIs("empty");
});

Deno.test("waitForStatus resolves at once when already there", async () => {
  const state = stateAt("running");
  assert.equal(await state.waitForStatus(["running", "failed"]), "running");
});

Deno.test("waitForStatus sees a status that is passed through immediately", async () => {
  const state = new ComputeState();
  const waiting = state.waitForStatus(["init"]);
  state.transition("configuration_pending");
  state.transition("init");
  state.transition("running");
  assert.equal(await waiting, "init");
  assert.equal(state.status, "running");
});

Deno.test("waitForStatus ignores other statuses and rejects on abort", async () => {
  const state = new ComputeState();
  const controller = new AbortController();
  let settled = false;
  const waiting = state.waitForStatus(["terminated"], controller.signal).finally(() => {
    settled = true;
  });
  state.transition("init");
  state.transition("running");
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(settled, false);
  controller.abort(new Error("gone"));
  await assert.rejects(waiting, /gone/);
});

Deno.test("waitForChange resolves with the next status, whatever it is", async () => {
  const state = stateAt("refresh_configuration_pending");
  const next = state.waitForChange();
  state.transition("refresh_configuration_pending");
  assert.equal(await next, "refresh_configuration_pending");
});

Deno.test("snapshot has the reference's keys, order and timestamp forms", () => {
  const state = new ComputeState();
  state.startTime = new Date("2024-05-01T10:00:00.000Z");
  state.identity = { tenant: "a".repeat(32), timeline: "b".repeat(32) };
  assert.deepEqual(Object.keys(state.snapshot()), [
    "start_time",
    "tenant",
    "timeline",
    "status",
    "last_active",
    "error",
  ]);
  assert.equal(state.snapshot().start_time, "2024-05-01T10:00:00Z");
  assert.equal(state.snapshot().last_active, null);
  state.updateLastActive(new Date("2024-05-01T10:00:01.250Z"));
  state.updateLastActive(new Date("2024-05-01T10:00:00.500Z"));
  assert.equal(state.snapshot().last_active, "2024-05-01T10:00:01.250+00:00");
});

Deno.test("formatTimestamp prints no fraction for whole seconds", () => {
  assert.equal(formatTimestamp(new Date("2024-01-02T03:04:05Z")), "2024-01-02T03:04:05Z");
  assert.equal(
    formatTimestamp(new Date("2024-01-02T03:04:05.007Z"), "+00:00"),
    "2024-01-02T03:04:05.007+00:00",
  );
});
