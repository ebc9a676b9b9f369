/**
 * The reliability report: records of one family are summed, every failure
 * count is shown, and the verdict turns on any failure or failed run.
 */

import assert from "node:assert/strict";
import { RELIABILITY_TESTS } from "../../harness/reliability/main.ts";
import { emptyRecord } from "../../harness/reliability/record.ts";
import {
  allClear,
  renderReliabilityReport,
  totalsByFamily,
} from "../../harness/reliability/render.ts";

const context = {
  generatedAt: new Date("2026-01-02T03:04:05Z"),
  machine: "test machine",
  runs: [{ command: "deno test x", exitCode: 0, seconds: 12.4 }],
};

Deno.test("records of one family are summed per unit, families keep their first order", () => {
  const totals = totalsByFamily([
    { ...emptyRecord("chaos", "a", "chaos steps"), tried: 10 },
    { ...emptyRecord("load", "b", "requests"), tried: 5000, unexpectedStatus: 2 },
    { ...emptyRecord("chaos", "c", "chaos steps"), tried: 7, rowsLost: 1 },
  ]);
  assert.deepEqual(totals.map((total) => total.family), ["chaos", "load"]);
  assert.equal(totals[0].tests, 2);
  assert.deepEqual([...totals[0].tried], [["chaos steps", 17]]);
  assert.equal(totals[0].failures.rowsLost, 1);
  assert.equal(totals[1].failures.unexpectedStatus, 2);
});

Deno.test("the verdict is all clear only with zero failures and every run passing", () => {
  const clean = totalsByFamily([{ ...emptyRecord("tls", "t", "connections"), tried: 3 }]);
  assert.equal(allClear(clean, context.runs), true);
  assert.equal(allClear(clean, [{ command: "x", exitCode: 1, seconds: 1 }]), false);
  const crashed = totalsByFamily([{ ...emptyRecord("tls", "t", "connections"), crashes: 1 }]);
  assert.equal(allClear(crashed, context.runs), false);
});

Deno.test("the page has a row per family, the totals and the runs", () => {
  const page = renderReliabilityReport([
    { ...emptyRecord("bad-input corpus", "http", "inputs"), tried: 180 },
    { ...emptyRecord("bad-input corpus", "cli", "inputs"), tried: 30 },
    { ...emptyRecord("secrets", "log|grep", "secrets searched"), tried: 6 },
    { ...emptyRecord("load", "64", "requests"), tried: 9, observations: "p99 40 ms" },
  ], context);
  assert.match(page, /^# Reliability report$/m);
  assert.match(page, /^\| bad-input corpus \| 2 \| 210 inputs \| 0 \| 0 \| 0 \| 0 \| 0 \| 0 \|$/m);
  assert.match(page, /^\| secrets \| 1 \| 6 secrets searched \| 0 \| 0 \| 0 \| 0 \| 0 \| 0 \|$/m);
  assert.match(page, /^- load, 64: p99 40 ms$/m);
  assert.match(page, /^\| \*\*all\*\* \| 4 \| - \| 0 \| 0 \| 0 \| 0 \| 0 \| 0 \|$/m);
  assert.match(page, /^\| `deno test x` \| 0 \| 12 \|$/m);
  assert.match(page, /Verdict: \*\*all clear\*\*/);
  assert.match(page, /Generated: 2026-01-02T03:04:05.000Z/);
});

Deno.test("every reliability test file the report runs exists", async () => {
  for (const file of RELIABILITY_TESTS) {
    const info = await Deno.stat(new URL(`../../${file}`, import.meta.url));
    assert.ok(info.isFile, file);
  }
});
