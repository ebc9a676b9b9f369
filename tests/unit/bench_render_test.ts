/**
 * @module
 * The benchmark report renderers on a hand-made report: the markdown tables,
 * machine, targets, failures and history; the phase chart's bars, labels,
 * axis and escaping.
 */

import assert from "node:assert/strict";
import {
  type BenchReport,
  chartFileName,
  formatNumber,
  renderMarkdown,
  renderPhasesSvg,
  renderResultTable,
  renderTargets,
} from "../bench/_render.ts";
import { summarize } from "../bench/_stats.ts";
import { type BenchResult, target } from "../bench/_types.ts";

const HTTP: BenchResult = {
  name: "http",
  description: "GET /status against a bare Deno.serve.",
  rows: [
    {
      name: "/status ×64",
      unit: "req/s",
      ours: summarize([9000, 10000, 11000]),
      baseline: summarize([20000, 21000, 22000]),
      ratio: 0.4762,
    },
    {
      name: "statements",
      unit: "count",
      ours: summarize([12, 12, 12]),
      extra: { "p50 ms": 1.23456, note: "a|b" },
    },
  ],
  targets: [target("status_64_throughput_ratio", 0.4762, 0.6, "×", "min")],
};

const COLD_START: BenchResult = {
  name: "cold_start",
  description: "Start to running.",
  rows: [],
  targets: [target("cold_start_ms", 900, 1000, "ms")],
  phases: {
    ours: { basebackup: 300, "sync <safekeepers>": 200, postgres: 400 },
    baseline: { basebackup: 250, postgres: 350 },
  },
};

function report(benchmarks: BenchResult[], failures: BenchReport["failures"] = []): BenchReport {
  return {
    generated: "2025-01-01T00:00:00.000Z",
    machine: {
      cpuModel: "Test CPU",
      cpuCount: 2,
      memoryMiB: 4096,
      kernel: "linux 6.1 x86_64",
      deno: "2.9.6",
      postgres: "postgres (PostgreSQL) 15.8",
    },
    quick: true,
    benchmarks,
    failures,
    targets: benchmarks.flatMap((result) => result.targets),
  };
}

Deno.test("a result table has ours and the baseline, the ratio and every extra column", () => {
  const lines = renderResultTable(HTTP).split("\n");
  assert.equal(
    lines[0],
    "| row | unit | ours min | ours median | ours p95 | baseline min | baseline median | " +
      "baseline p95 | ratio | p50 ms | note |",
  );
  assert.match(lines[1], /^\| --- (\| --- ){10}\|$/);
  assert.equal(
    lines[2],
    "| /status ×64 | req/s | 9000 | 10000 | 10900 | 20000 | 21000 | 21900 | 0.476× |  |  |",
  );
  assert.equal(lines[3], "| statements | count | 12 | 12 | 12 | – | – | – | – | 1.23 | a\\|b |");
  assert.equal(lines.length, 4);
});

Deno.test("targets show the bound's direction and ✓ or ✗", () => {
  const text = renderTargets([
    target("status_64_p99_ratio", 1.5, 2, "×"),
    target("status_64_throughput_ratio", 0.5, 0.6, "×", "min"),
  ]);
  assert.match(text, /\| status_64_p99_ratio \| 1\.5 × \| ≤ 2 × \| ✓ \|/);
  assert.match(text, /\| status_64_throughput_ratio \| 0\.5 × \| ≥ 0\.6 × \| ✗ \|/);
});

Deno.test("the markdown has the machine, the targets, a table per benchmark and the chart", () => {
  const md = renderMarkdown(report([HTTP, COLD_START]), {
    charts: { cold_start: chartFileName("cold_start") },
  });
  assert.match(md, /^# Benchmarks\n/);
  assert.match(md, /deno task bench --quick/);
  assert.match(md, /\| CPU \| Test CPU × 2 \|/);
  assert.match(md, /\| Memory \| 4096 MiB \|/);
  assert.match(md, /\| PostgreSQL \| postgres \(PostgreSQL\) 15\.8 \|/);
  assert.match(md, /\| status_64_throughput_ratio \| 0\.476 × \| ≥ 0\.6 × \| ✗ \|/);
  assert.match(md, /\| cold_start_ms \| 900 ms \| ≤ 1000 ms \| ✓ \|/);
  assert.match(md, /## http\n\nGET \/status against a bare Deno\.serve\.\n\n\| row \|/);
  assert.match(
    md,
    /!\[cold_start phases, ours beside the baseline\]\(benchmarks_cold_start\.svg\)/,
  );
  assert.doesNotMatch(md, /no phase chart/);
  assert.ok(md.indexOf("## Targets") < md.indexOf("## http"));
});

Deno.test("without phases the markdown says there is no chart", () => {
  const md = renderMarkdown(report([HTTP]));
  assert.match(md, /## Cold-start phases\n\nNo benchmark of this run reported phases/);
  assert.doesNotMatch(md, /\.svg/);
});

Deno.test("the history file is included verbatim under Before and after, at the end", () => {
  const history = "| change | before | after |\n| --- | --- | --- |\n| auth cache | 4000 | 9000 |";
  const md = renderMarkdown(report([HTTP]), { history: `${history}\n` });
  assert.ok(md.endsWith(`## Before and after\n\n${history}\n`));
  assert.match(renderMarkdown(report([HTTP])), /No `docs\/benchmarks_history\.md` yet/);
});

Deno.test("failures are listed with the first line of their error", () => {
  const md = renderMarkdown(
    report([HTTP], [{ name: "memory", error: "Error: boom\n    at somewhere" }]),
  );
  assert.match(
    md,
    /## Failed\n\n\| benchmark \| error \|\n\| --- \| --- \|\n\| memory \| Error: boom \|/,
  );
  assert.doesNotMatch(md, /at somewhere/);
});

Deno.test("the phase chart stacks each side's phases in order, labelled, over a ms axis", () => {
  const svg = renderPhasesSvg(COLD_START.phases!);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  const segments = [
    ...svg.matchAll(/<rect x="([\d.]+)" y="(\d+)" width="([\d.]+)"[^>]*><title>([^<]*)<\/title>/g),
  ];
  assert.deepEqual(segments.map((m) => m[4]), [
    "ours basebackup: 300 ms",
    "ours sync &lt;safekeepers&gt;: 200 ms",
    "ours postgres: 400 ms",
    "baseline basebackup: 250 ms",
    "baseline postgres: 350 ms",
  ]);
  // Segments of one bar touch: each starts where the previous one ended.
  const ours = segments.slice(0, 3).map((m) => ({ x: Number(m[1]), width: Number(m[3]) }));
  assert.ok(Math.abs(ours[1].x - (ours[0].x + ours[0].width)) < 0.2);
  assert.ok(Math.abs(ours[2].x - (ours[1].x + ours[1].width)) < 0.2);
  // The two bars are on different rows, widths proportional to ms (300 against 250).
  assert.notEqual(segments[0][2], segments[3][2]);
  assert.ok(Math.abs(Number(segments[0][3]) / Number(segments[3][3]) - 300 / 250) < 0.01);
  assert.match(svg, />ours<\/text>/);
  assert.match(svg, />baseline<\/text>/);
  assert.match(svg, />900 ms<\/text>/);
  assert.match(svg, />600 ms<\/text>/);
  for (const tick of ["0", "200", "400", "600", "800", "1000"]) {
    assert.match(svg, new RegExp(`text-anchor="middle">${tick}</text>`), tick);
  }
  assert.match(svg, />sync &lt;safekeepers&gt;<\/text>/, "legend, escaped");
  assert.doesNotMatch(svg, /<safekeepers>/);
});

Deno.test("the phase chart copes with an empty side", () => {
  const svg = renderPhasesSvg({ ours: { start: 5 }, baseline: {} }, { title: "T & t" });
  assert.match(svg, /<title>T &amp; t<\/title>/);
  assert.equal([...svg.matchAll(/<rect [^>]*><title>/g)].length, 1);
  assert.match(svg, />0 ms<\/text>/);
});

Deno.test("numbers keep three significant digits, thousands whole", () => {
  assert.equal(formatNumber(12345.678), "12346");
  assert.equal(formatNumber(123.456), "123");
  assert.equal(formatNumber(0.47619), "0.476");
  assert.equal(formatNumber(NaN), "NaN");
});
