/**
 * The queued stderr of `src/log.ts`, in a child Deno process per case: the
 * manager's lines and `PG:` lines come out complete and in the order they
 * were written however the process ends (the event loop running out,
 * `exitAfterLogs`, a bare `Deno.exit`, SIGTERM through the manager's signal
 * handlers, an uncaught error), also past the queue's bound, and redacted.
 */

import assert from "node:assert/strict";
import { MAX_PENDING_LINES } from "../../src/log.ts";

const LOG_URL = import.meta.resolve("../../src/log.ts");
const TERMINATION_URL = import.meta.resolve("../../src/compute/termination.ts");
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** Writes `lines` lines, alternating logger lines and `PG:` lines, then ends as `ending` says. */
const CHILD = `
import { exitAfterLogs, getLogger, setupLogging, writeStderr } from "${LOG_URL}";
import { installSignalHandlers } from "${TERMINATION_URL}";
const [ending, lines] = [Deno.args[0], Number(Deno.args[1])];
setupLogging({ level: "info" });
const log = getLogger("queue");
if (ending === "sigterm") installSignalHandlers(() => {});
for (let i = 0; i < lines; i++) {
  if (i % 2 === 0) log.info("line", { n: i, secret: "Bearer abcdefgh" });
  else writeStderr("PG:line n=" + i + "\\n");
}
switch (ending) {
  case "exit": Deno.exit(3); break;
  case "exitAfterLogs": await exitAfterLogs(4); break;
  case "sigterm": setTimeout(() => {}, 10_000); Deno.kill(Deno.pid, "SIGTERM"); break;
  case "throw": throw new Error("fatal");
  case "throwLater": setTimeout(() => { log.info("line", { n: lines }); throw new Error("fatal"); }, 0); break;
}
`;

async function runChild(ending: string, lines: number): Promise<{ code: number; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "log-queue-test-" });
  try {
    const script = `${dir}/child.ts`;
    await Deno.writeTextFile(script, CHILD);
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--config", CONFIG, "--allow-read", script, ending, String(lines)],
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    return { code, stderr: new TextDecoder().decode(stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The `n=` of every line the child wrote, in the order they came out. */
function lineNumbers(stderr: string): number[] {
  return [...stderr.matchAll(/\bline n=(\d+)/g)].map((match) => Number(match[1]));
}

function assertAllInOrder(stderr: string, lines: number): void {
  const numbers = lineNumbers(stderr);
  assert.equal(numbers.length, lines, stderr.slice(-500));
  numbers.forEach((n, index) => assert.equal(n, index));
  assert.ok(!stderr.includes("abcdefgh"), "lines are redacted");
  assert.match(stderr, /INFO compute_ctl::queue: line n=0 secret=Bearer \[redacted\]\n/);
}

Deno.test("every line is written in order when the event loop runs out", async () => {
  const { code, stderr } = await runChild("end", 1_000);
  assert.equal(code, 0);
  assertAllInOrder(stderr, 1_000);
});

Deno.test("exitAfterLogs writes every line before exiting with its code", async () => {
  const { code, stderr } = await runChild("exitAfterLogs", 1_000);
  assert.equal(code, 4);
  assertAllInOrder(stderr, 1_000);
});

Deno.test("a bare Deno.exit still writes every queued line (the unload drain)", async () => {
  const { code, stderr } = await runChild("exit", 1_000);
  assert.equal(code, 3);
  assertAllInOrder(stderr, 1_000);
});

Deno.test("SIGTERM through the manager's handlers writes every line, its own last", async () => {
  const { code, stderr } = await runChild("sigterm", 1_000);
  assert.equal(code, 1);
  assertAllInOrder(stderr, 1_000);
  assert.match(stderr.trimEnd().split("\n").at(-1)!, /received SIGTERM/);
});

Deno.test("an uncaught error writes every queued line before Deno's report", async () => {
  for (const [ending, lines] of [["throw", 1_000], ["throwLater", 1_001]] as const) {
    const { code, stderr } = await runChild(ending, 1_000);
    assert.equal(code, 1);
    assertAllInOrder(stderr, lines);
    assert.ok(stderr.indexOf("fatal") > stderr.lastIndexOf("line n="), stderr.slice(-500));
  }
});

Deno.test("past the queue's bound lines are written synchronously, none lost", async () => {
  const lines = 2 * MAX_PENDING_LINES + 11;
  const { code, stderr } = await runChild("exit", lines);
  assert.equal(code, 3);
  assertAllInOrder(stderr, lines);
});
