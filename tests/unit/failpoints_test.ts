import assert from "node:assert/strict";
import {
  FailpointConfigError,
  FailpointPanic,
  FailpointRegistry,
  parseAction,
  parseActions,
  parseFailpointsEnv,
} from "../../src/compute/failpoints.ts";

Deno.test("actions parse like the fail crate's: probability, count, task, argument", () => {
  assert.deepEqual(parseAction("return(3)"), {
    task: { kind: "return", value: "3" },
    frequency: 1,
    remaining: undefined,
  });
  assert.deepEqual(parseAction(" 50%2*sleep(100) "), {
    task: { kind: "sleep", ms: 100 },
    frequency: 0.5,
    remaining: 2,
  });
  assert.deepEqual(parseAction("return"), {
    task: { kind: "return", value: undefined },
    frequency: 1,
    remaining: undefined,
  });
  assert.deepEqual(parseAction("panic(a(b))").task, { kind: "panic", message: "a(b)" });
  assert.deepEqual(parseActions("1*return(7)->off").map((action) => action.task.kind), [
    "return",
    "off",
  ]);
  for (const kind of ["off", "pause", "yield", "print"]) {
    assert.equal(parseAction(kind).task.kind, kind);
  }
});

Deno.test("invalid actions are refused with the fail crate's messages", () => {
  const message = (text: string) => {
    try {
      parseActions(text);
    } catch (error) {
      assert.ok(error instanceof FailpointConfigError);
      return error.message;
    }
    assert.fail(`${text} parsed`);
  };
  assert.equal(message("explode"), 'unrecognized command "explode"');
  assert.equal(message(""), 'unrecognized command ""');
  assert.equal(message("return(3"), "parentheses do not match");
  assert.equal(message("sleep"), "sleep require timeout");
  assert.equal(message("sleep(soon)"), "failed to parse timeout: invalid digit found in string");
  assert.equal(message("x%return"), "failed to parse frequency: invalid float literal");
  assert.equal(message("two*return"), "failed to parse count: invalid digit found in string");
  assert.equal(message("off->bogus"), 'unrecognized command "bogus"');
});

Deno.test("FAILPOINTS splits on ';', ignores blanks and needs '='", () => {
  assert.deepEqual(parseFailpointsEnv(" a=return(1); ;b=off "), [["a", "return(1)"], ["b", "off"]]);
  assert.deepEqual(parseFailpointsEnv(""), []);
  assert.throws(() => parseFailpointsEnv("a=off;oops"), /invalid failpoint: "oops"/);
  const registry = new FailpointRegistry();
  assert.throws(
    () => registry.configureFromEnv("compute-migration=return(3);other=nonsense"),
    /unable to configure failpoint "other": unrecognized command "nonsense"/,
  );
});

Deno.test("evaluation: return values, counts, chains, off and removal", async () => {
  const registry = new FailpointRegistry();
  assert.equal(await registry.evaluate("compute-migration"), undefined);
  registry.configureFromEnv("compute-migration=return(3)");
  assert.deepEqual(await registry.evaluate("compute-migration"), { value: "3" });
  assert.deepEqual(await registry.evaluate("compute-migration"), { value: "3" });

  registry.configure("p", "2*return->off");
  assert.deepEqual(await registry.evaluate("p"), {});
  assert.deepEqual(await registry.evaluate("p"), {});
  assert.equal(await registry.evaluate("p"), undefined);

  registry.configure("p", "off");
  assert.equal(await registry.evaluate("p"), undefined);
  registry.configure("p", "return(x)");
  registry.remove("p");
  assert.equal(await registry.evaluate("p"), undefined);
  assert.deepEqual(registry.names(), ["compute-migration"]);
});

Deno.test("evaluation: probability, sleep, panic, exit and pause", async () => {
  let draw = 0.7;
  const slept: number[] = [];
  const exits: number[] = [];
  const registry = new FailpointRegistry({
    random: () => draw,
    sleep: (ms) => {
      slept.push(ms);
      return Promise.resolve();
    },
    exit: (code) => exits.push(code),
  });
  registry.configure("coin", "50%return(heads)");
  assert.equal(await registry.evaluate("coin"), undefined);
  draw = 0.2;
  assert.deepEqual(await registry.evaluate("coin"), { value: "heads" });

  registry.configure("slow", "sleep(250)");
  assert.equal(await registry.evaluate("slow"), undefined);
  assert.deepEqual(slept, [250]);

  registry.configure("boom", "panic(kaboom)");
  await assert.rejects(registry.evaluate("boom"), FailpointPanic);

  registry.configureAll([{ name: "bye", actions: "exit" }]);
  await registry.evaluate("bye");
  assert.deepEqual(exits, [1]);
  assert.throws(
    () => registry.configureAll([{ name: "a", actions: "off" }, { name: "b", actions: "?" }]),
    /unrecognized command "\?"/,
  );
  assert.ok(registry.names().includes("a"), "entries before the bad one stay applied");

  registry.configure("wait", "pause");
  let resumed = false;
  const paused = registry.evaluate("wait").then(() => resumed = true);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(resumed, false);
  registry.configure("wait", "off");
  await paused;
  assert.equal(resumed, true);
});
