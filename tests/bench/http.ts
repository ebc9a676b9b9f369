/**
 * @module
 * HTTP benchmark: `/status` and `/metrics` on the manager's external port,
 * JWT auth on (every request carries the compute's bearer token), at 1 and 64
 * keep-alive connections, against a bare `Deno.serve` child answering the
 * same bytes. Each repetition measures baseline and product back to back, the
 * order alternating, so the paired ratio cancels drift in the machine's load.
 */

import { startCluster } from "../../harness/cluster.ts";
import { copyAnswers, startBareServer } from "./_bare_baseline.ts";
import { type LoadOptions, type LoadResult, runLoads } from "./_load.ts";
import { pairedRatio, summarize } from "./_stats.ts";
import { type Benchmark, type BenchRow, target } from "./_types.ts";

/** The paths measured, as the issue names them. */
export const HTTP_PATHS = ["/status", "/metrics"] as const;

const CONNECTIONS = [1, 64] as const;

/** Which side of a pair goes first, by repetition parity: ordering effects cancel out. */
export const PAIR_ORDERS = [["baseline", "ours"], ["ours", "baseline"]] as const;

/** One side of a pair: where to send and with which headers. */
interface Side {
  url: string;
  headers: Record<string, string>;
}

/** Samples of one path at one connection count. */
interface CaseSamples {
  path: string;
  connections: number;
  ours: LoadResult[];
  baseline: LoadResult[];
}

export const benchmark: Benchmark = async ({ quick, repetitions, workDir, log }) => {
  const durationS = quick ? 0.5 : 3;
  log(`http: starting a cluster (auth on)`);
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "bench-http" }],
  });
  const compute = cluster.compute("bench-http");
  const ours: Side = {
    url: compute.externalHttp,
    headers: { authorization: `Bearer ${compute.tokens.compute}` },
  };
  await using bare = await startBareServer(workDir, await copyAnswers(compute, HTTP_PATHS));
  const baseline: Side = { url: bare.url, headers: {} };

  log(`http: warming up`);
  await runLoads(
    [baseline, ours].flatMap((side) =>
      HTTP_PATHS.map((path) => load(side, path, 64, quick ? 0.25 : 1))
    ),
  );

  const cases: CaseSamples[] = HTTP_PATHS.flatMap((path) =>
    CONNECTIONS.map((connections) => ({ path, connections, ours: [], baseline: [] }))
  );
  for (let repetition = 0; repetition < repetitions; repetition++) {
    // One load process per repetition runs every measurement of it, pairs back to back.
    const order = cases.flatMap((sample) =>
      PAIR_ORDERS[repetition % 2].map((which) => ({ sample, which }))
    );
    const results = await runLoads(
      order.map(({ sample, which }) =>
        load(which === "ours" ? ours : baseline, sample.path, sample.connections, durationS)
      ),
    );
    order.forEach(({ sample, which }, index) => sample[which].push(results[index]));
    for (const sample of cases) {
      log(
        `http: #${repetition + 1} ${sample.path} ×${sample.connections}: ` +
          `${Math.round(sample.ours.at(-1)!.requestsPerS)} req/s against ` +
          `${Math.round(sample.baseline.at(-1)!.requestsPerS)}`,
      );
    }
  }

  const rows = cases.flatMap(caseRows);
  const status64 = (unit: string) =>
    rows.find((row) => row.name === "/status ×64" && row.unit === unit)!.ratio!;
  return {
    name: "http",
    description: `GET /status and /metrics with a bearer token (auth on), ${durationS} s per ` +
      `measurement at 1 and 64 keep-alive connections (npm:autocannon); baseline: a bare ` +
      `Deno.serve child answering the same bytes without auth.`,
    rows,
    targets: [
      target("status_64_throughput_ratio", status64("req/s"), 0.6, "×", "min"),
      target("status_64_p99_ratio", status64("ms p99"), 2.0, "×", "max"),
    ],
  };
};

function load(side: Side, path: string, connections: number, durationS: number): LoadOptions {
  return { url: `${side.url}${path}`, connections, durationS, headers: side.headers };
}

/** The throughput row and the p99 row of one case, each with its paired ratio. */
function caseRows({ path, connections, ours, baseline }: CaseSamples): BenchRow[] {
  const name = `${path} ×${connections}`;
  const row = (unit: string, pick: (result: LoadResult) => number): BenchRow => ({
    name,
    unit,
    ours: summarize(ours.map(pick)),
    baseline: summarize(baseline.map(pick)),
    ratio: pairedRatio(ours.map(pick), baseline.map(pick)),
  });
  const throughput = row("req/s", (result) => result.requestsPerS);
  const p99 = row("ms p99", (result) => result.p99Ms);
  p99.extra = {
    "ours p50 ms": summarize(ours.map((result) => result.p50Ms)).median,
    "baseline p50 ms": summarize(baseline.map((result) => result.p50Ms)).median,
  };
  return [throughput, p99];
}
