/** `src/cause_chain.ts`: an error and its causes as Rust's `{:#}` prints them. */

import assert from "node:assert/strict";
import { causeChain } from "../../src/cause_chain.ts";

Deno.test("causeChain joins every message, outermost first", () => {
  const inner = new Error("No such file or directory (os error 2)");
  const outer = new Error("connecting to communicator control socket", { cause: inner });
  assert.equal(
    causeChain(outer),
    "connecting to communicator control socket: No such file or directory (os error 2)",
  );
  assert.equal(causeChain("plain"), "plain");
  const loop = new Error("a");
  loop.cause = loop;
  assert.equal(causeChain(loop), "a");
});
