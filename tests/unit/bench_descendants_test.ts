/**
 * @module
 * What the bench runner stops after each benchmark and on a signal: every
 * descendant of a process, grandchildren included, and nothing else. Rooted
 * at a child here, so the test touches no process but its own.
 */

import assert from "node:assert/strict";
import { descendantPids, stopDescendants } from "../bench/_descendants.ts";

Deno.test("descendants include grandchildren, and stopDescendants ends exactly them", async () => {
  const shell = new Deno.Command("sh", {
    args: ["-c", "sh -c 'sleep 60 & wait' & sleep 60 & wait; echo done"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    let found: number[] = [];
    for (let tries = 0; tries < 100 && found.length < 3; tries++) {
      found = await descendantPids(shell.pid);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(found.length, 3, `an inner shell, its sleep and a sleep: ${found}`);
    assert.ok(!found.includes(shell.pid) && !found.includes(Deno.pid));
    assert.ok((await descendantPids()).includes(shell.pid), "this process's own child");

    const stopped = await stopDescendants({ root: shell.pid, graceMs: 2_000 });
    assert.deepEqual([...stopped].sort(), [...found].sort());
    const { code, stdout } = await shell.output();
    assert.equal(code, 0, "the shell itself was left alone and finished");
    assert.equal(new TextDecoder().decode(stdout), "done\n");
    assert.deepEqual(await descendantPids(shell.pid), []);
  } finally {
    try {
      shell.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
});
