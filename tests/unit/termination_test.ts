import assert from "node:assert/strict";
import { migrationFailpoint } from "../../src/compute/startup.ts";
import { ComputeState, InvalidStatusError } from "../../src/compute/state.ts";
import {
  exitDelay,
  requestTermination,
  SHORT_EXIT_DELAY_MS,
} from "../../src/compute/termination.ts";

function runningState(): ComputeState {
  const state = new ComputeState();
  state.transition("init");
  state.transition("running");
  return state;
}

Deno.test("terminate moves to the pending status, forwards, and waits for terminated", async () => {
  const state = runningState();
  let forwarded = 0;
  const outcome = requestTermination({
    state,
    flushLsn: () => 0x16b3748n,
    forward: () => {
      forwarded++;
      assert.equal(state.status, "termination_pending_immediate");
      queueMicrotask(() => state.transition("terminated"));
    },
  }, "immediate");
  assert.deepEqual(await outcome, { body: { lsn: "0/16B3748" }, alreadyTerminated: false });
  assert.equal(forwarded, 1);
});

Deno.test("terminate on a terminated compute answers at once (201), null LSN allowed", async () => {
  const state = runningState();
  state.transition("termination_pending_fast");
  state.transition("terminated");
  const outcome = await requestTermination({
    state,
    flushLsn: () => null,
    forward: () => assert.fail("nothing to forward"),
  }, "fast");
  assert.deepEqual(outcome, { body: { lsn: null }, alreadyTerminated: true });
});

Deno.test("terminate is refused outside empty and running", async () => {
  const state = new ComputeState();
  state.transition("init");
  state.transition("failed");
  await assert.rejects(
    requestTermination({ state, flushLsn: () => null, forward: () => {} }, "fast"),
    (error: unknown) =>
      error instanceof InvalidStatusError && error.message === "invalid compute status: failed",
  );
  assert.equal(state.status, "failed");
});

Deno.test("the exit delay is long after fast termination or a failed start only", () => {
  assert.equal(exitDelay("termination_pending_fast", false, 30_000), 30_000);
  assert.equal(exitDelay("running", true, 30_000), 30_000);
  assert.equal(exitDelay("termination_pending_immediate", false, 30_000), SHORT_EXIT_DELAY_MS);
  assert.equal(exitDelay("running", false, 30_000), SHORT_EXIT_DELAY_MS);
});

Deno.test("the compute-migration failpoint is read from FAILPOINTS", () => {
  assert.equal(migrationFailpoint(undefined), undefined);
  assert.equal(migrationFailpoint("compute-migration=return(3)"), 3);
  assert.equal(migrationFailpoint("other=panic;compute-migration=return(12)"), 12);
  assert.equal(migrationFailpoint("compute-migration=off"), undefined);
});
