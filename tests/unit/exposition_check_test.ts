import assert from "node:assert/strict";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { expositionProblems } from "../_support/exposition_check.ts";

const VALID = [
  "# HELP requests_total Requests.",
  "# TYPE requests_total counter",
  'requests_total{route="/status",code="200"} 3',
  'requests_total{route="/a\\"b\\\\c\\n"} 1',
  "# TYPE up gauge",
  "up 1",
  "# TYPE latency_seconds histogram",
  'latency_seconds_bucket{le="0.1"} 1',
  'latency_seconds_bucket{le="1"} 2',
  'latency_seconds_bucket{le="+Inf"} 2',
  "latency_seconds_sum 0.6",
  "latency_seconds_count 2",
  "",
].join("\n");

Deno.test("valid exposition text has no problems", () => {
  assert.deepEqual(expositionProblems(VALID), []);
});

Deno.test("what prom-client writes passes", async () => {
  const registry = new Registry();
  new Counter({ name: "c_total", help: "c", labelNames: ["x"], registers: [registry] }).inc({
    x: 'q"uote',
  });
  new Gauge({ name: "g", help: "g", registers: [registry] }).set(NaN);
  const histogram = new Histogram({
    name: "h_seconds",
    help: "h",
    labelNames: ["route"],
    registers: [registry],
  });
  histogram.observe({ route: "/status" }, 0.2);
  histogram.observe({ route: "/metrics" }, 20);
  assert.deepEqual(expositionProblems(await registry.metrics()), []);
});

Deno.test("each kind of mistake is found", () => {
  const cases: [string, RegExp][] = [
    ["# TYPE up gauge\nup 1", /does not end with a line break/],
    ["# TYPE up gauge\nup one\n", /not a valid sample/],
    ["# TYPE up gauge\nup{a=b} 1\n", /not a valid sample/],
    ['# TYPE up gauge\nup{a="b} 1\n', /not a valid sample/],
    ["up 1\n", /has no TYPE before it/],
    ["# TYPE up gauge\n# TYPE up gauge\nup 1\n", /second TYPE/],
    ["# TYPE up gauge\nup 1\nup 2\n", /series repeated/],
    ["# TYPE hits counter\nhits 1\n", /not named \*_total/],
    ["# TYPE up widget\n", /malformed TYPE/],
    [
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\n',
      /do not rise/,
    ],
    ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_count 1\n', /no \+Inf bucket/],
    ['# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 3\n', /differs from _count/],
  ];
  for (const [text, problem] of cases) {
    const problems = expositionProblems(text);
    assert.ok(problems.some((p) => problem.test(p)), `${JSON.stringify(text)}: ${problems}`);
  }
});
