import assert from "node:assert/strict";
import {
  MANAGER_MALLOC_ENV,
  MANAGER_V8_FLAGS,
  releaseMemory,
  v8FlagsArgument,
} from "../../src/runtime_tuning.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("deno task start passes the manager's V8 flags and allocator environment", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const start: string = config.tasks.start;
  const run = start.slice(start.lastIndexOf("&&") + 2).trim().split(/\s+/);
  const assignments = run.slice(0, run.indexOf("deno"));
  assert.deepEqual(
    Object.fromEntries(assignments.map((word) => word.split("=", 2))),
    MANAGER_MALLOC_ENV,
  );
  const denoArgs = run.slice(run.indexOf("deno"));
  assert.deepEqual(denoArgs.slice(0, 4), ["deno", "run", "-P=compute", v8FlagsArgument()]);
  assert.equal(denoArgs.at(-1), "src/main.ts");
});

Deno.test("the container image sets the same allocator environment", async () => {
  const containerfile = await Deno.readTextFile(new URL("Containerfile", ROOT));
  for (const [name, value] of Object.entries(MANAGER_MALLOC_ENV)) {
    assert.match(
      containerfile,
      new RegExp(`^ENV(?: .*\\\\\\n)*\\s+${name}=${value}\\b`, "m"),
      name,
    );
  }
});

Deno.test("the V8 flags argument joins every flag", () => {
  assert.equal(v8FlagsArgument(), `--v8-flags=${MANAGER_V8_FLAGS.join(",")}`);
  assert.ok(MANAGER_V8_FLAGS.includes("--expose-gc"));
});

Deno.test("releaseMemory without an exposed gc does nothing and leaves no timer", () => {
  // This test process runs without --expose-gc; the sanitizers fail on a left timer.
  assert.equal((globalThis as { gc?: unknown }).gc, undefined);
  releaseMemory();
});

Deno.test("releaseMemory schedules one collection when gc is exposed", async () => {
  const calls: number[] = [];
  const ran = Promise.withResolvers<void>();
  const global = globalThis as { gc?: () => void };
  global.gc = () => {
    calls.push(1);
    ran.resolve();
  };
  try {
    releaseMemory();
    assert.equal(calls.length, 0, "not at once: after the current work");
    await ran.promise;
    assert.equal(calls.length, 1);
  } finally {
    delete global.gc;
  }
});
