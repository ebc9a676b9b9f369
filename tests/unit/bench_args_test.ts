/**
 * @module
 * `deno task bench`'s command line: defaults, flags, `--only` against the
 * registry, and refusals of what it does not know.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../../harness/cluster.ts";
import { BENCHMARKS, parseBenchArgs } from "../bench/main.ts";

Deno.test("by default every benchmark runs fully and writes to docs/", () => {
  assert.deepEqual(parseBenchArgs([]), {
    quick: false,
    enforce: false,
    only: undefined,
    outDir: join(REPO_ROOT, "docs"),
    render: false,
  });
});

Deno.test("--quick, --enforce, --render, --only and --out-dir are read", () => {
  assert.deepEqual(
    parseBenchArgs([
      "--quick",
      "--enforce",
      "--render",
      "--only",
      "http, memory",
      "--out-dir",
      "/tmp/x",
    ]),
    { quick: true, enforce: true, only: ["http", "memory"], outDir: "/tmp/x", render: true },
  );
});

Deno.test("the registry has every benchmark of the issue, each name once", () => {
  const names = BENCHMARKS.map((entry) => entry.name);
  for (
    const name of [
      "cold_start",
      "pooled_start",
      "reconfigure",
      "spec_apply",
      "http",
      "memory",
      "failover",
    ]
  ) assert.ok(names.includes(name), name);
  assert.equal(new Set(names).size, names.length);
});

Deno.test("an unknown benchmark or flag is refused, naming it", () => {
  assert.throws(() => parseBenchArgs(["--only", "http,nope"]), /unknown benchmark nope; known: /);
  assert.throws(() => parseBenchArgs(["--fast"]), /--fast/);
});
