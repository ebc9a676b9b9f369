/**
 * `src/_async.ts`: a bounded wait that leaves no timer behind (the op
 * sanitizer fails a test that leaks one), and the task group services use to
 * own their background work.
 */

import assert from "node:assert/strict";
import { settlesWithin, TaskGroup, TaskGroupClosedError } from "../../src/_async.ts";

// The op sanitizer (off by default) fails a test that leaves a timer running.
Deno.test({
  name: "settlesWithin: true for work that settles either way, and no timer is left",
  sanitizeOps: true,
  fn: async () => {
    assert.equal(await settlesWithin(Promise.resolve(1), 60_000), true);
    assert.equal(await settlesWithin(Promise.reject(new Error("no")), 60_000), true);
  },
});

Deno.test({
  name: "settlesWithin: false for work that does not settle in time",
  sanitizeOps: true,
  fn: async () => {
    const never = new Promise<void>(() => {});
    assert.equal(await settlesWithin(never, 1), false);
  },
});

Deno.test("task group: close refuses new tasks and waits for the running ones", async () => {
  const group = new TaskGroup("test jobs");
  const release = Promise.withResolvers<void>();
  const events: string[] = [];
  const task = group.run(async () => {
    await release.promise;
    events.push("task ended");
  });
  assert.equal(group.size, 1);
  const closed = group.close().then(() => events.push("closed"));
  assert.equal(group.closed, true);
  assert.throws(() => group.run(() => Promise.resolve()), TaskGroupClosedError);
  assert.throws(
    () => group.run(() => Promise.resolve()),
    /test jobs: the compute is shutting down/,
  );
  release.resolve();
  await Promise.all([task, closed]);
  assert.deepEqual(events, ["task ended", "closed"]);
  assert.equal(group.size, 0);
});

Deno.test("task group: idle waits for tasks started while it waits, and survives failures", async () => {
  const group = new TaskGroup("test jobs");
  const first = Promise.withResolvers<void>();
  const second = Promise.withResolvers<void>();
  const secondStarted = Promise.withResolvers<void>();
  const failing = group.run(async () => {
    await first.promise;
    throw new Error("boom");
  });
  group.run(async () => {
    await first.promise;
    group.run(() => {
      secondStarted.resolve();
      return second.promise;
    });
  });
  let idle = false;
  const waiting = group.idle().then(() => idle = true);
  first.resolve();
  await assert.rejects(failing, /boom/);
  await secondStarted.promise;
  // One turn of the event loop: an idle() that saw only the first tasks would resolve in it.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(idle, false);
  second.resolve();
  await waiting;
  assert.equal(group.size, 0);
});
