/**
 * @module
 * Memory benchmark: the resident set (VmRSS) of the manager's deno process,
 * idle once the compute is `running` and after rounds of the HTTP benchmark's
 * load (`/status` and `/metrics` at 64 connections, auth on), against the bare
 * `Deno.serve` child of the HTTP benchmark idle and after the same load (and,
 * in full runs, once more 45 s after it). The targets take the largest
 * sample: a ceiling on memory is about the worst case.
 */

import { startCluster } from "../../harness/cluster.ts";
import { sleep } from "../../harness/_processes.ts";
import { copyAnswers, rssMiB, startBareServer } from "./_bare_baseline.ts";
import { runLoads } from "./_load.ts";
import { pairedRatio, summarize } from "./_stats.ts";
import { type Benchmark, type BenchRow, target } from "./_types.ts";
import { HTTP_PATHS, PAIR_ORDERS } from "./http.ts";

const LOAD_CONNECTIONS = 64;
/** Idle time after the last load before the RSS is read once more (full runs only). */
const SETTLED_AFTER_LOAD_S = 45;

/** One measured process, with what the load sends it. */
interface Measured {
  pid: number;
  url: string;
  headers: Record<string, string>;
}

export const benchmark: Benchmark = async ({ quick, repetitions, workDir, log }) => {
  const loadS = quick ? 0.5 : 2;
  log(`memory: starting a cluster (auth on)`);
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "bench-memory" }],
  });
  const compute = cluster.compute("bench-memory");
  const managerPid = await compute.managerPid();
  if (managerPid === undefined) throw new Error("the manager's deno process is gone");
  const ours: Measured = {
    pid: managerPid,
    url: compute.externalHttp,
    headers: { authorization: `Bearer ${compute.tokens.compute}` },
  };
  await using bare = await startBareServer(workDir, await copyAnswers(compute, HTTP_PATHS));
  const baseline: Measured = { pid: bare.pid, url: bare.url, headers: {} };

  await sleep(quick ? 1_000 : 3_000);
  const idle = { ours: [] as number[], baseline: [] as number[] };
  for (let repetition = 0; repetition < repetitions; repetition++) {
    idle.ours.push(await rssMiB(ours.pid));
    idle.baseline.push(await rssMiB(baseline.pid));
    await sleep(200);
  }
  log(
    `memory: idle ${round1(Math.max(...idle.ours))} MiB against ${
      round1(Math.max(...idle.baseline))
    }`,
  );

  const loaded = { ours: [] as number[], baseline: [] as number[] };
  for (let repetition = 0; repetition < repetitions; repetition++) {
    for (const which of PAIR_ORDERS[repetition % 2]) {
      const measured = which === "ours" ? ours : baseline;
      await runLoads(HTTP_PATHS.map((path) => ({
        url: `${measured.url}${path}`,
        connections: LOAD_CONNECTIONS,
        durationS: loadS,
        headers: measured.headers,
      })));
      loaded[which].push(await rssMiB(measured.pid));
    }
    log(
      `memory: after load round ${repetition + 1}: ${round1(loaded.ours.at(-1)!)} MiB against ` +
        `${round1(loaded.baseline.at(-1)!)}`,
    );
  }

  const rows: BenchRow[] = [
    rssRow("RSS idle", idle.ours, idle.baseline),
    rssRow("RSS after load", loaded.ours, loaded.baseline),
  ];
  if (!quick) {
    // What the load grew is V8's heap, which V8 gives back once allocation has stayed low
    // for a while (its memory reducer); how much, is part of what is measured here.
    await sleep(SETTLED_AFTER_LOAD_S * 1000);
    const settled = { ours: [await rssMiB(ours.pid)], baseline: [await rssMiB(baseline.pid)] };
    log(`memory: ${SETTLED_AFTER_LOAD_S} s after the load: ${round1(settled.ours[0])} MiB`);
    rows.push(
      rssRow(`RSS ${SETTLED_AFTER_LOAD_S} s after the load`, settled.ours, settled.baseline),
    );
  }
  return {
    name: "memory",
    description: `VmRSS of the manager's deno process idle after \`running\` and after each of ` +
      `${repetitions} rounds of ${loadS} s on each of /status and /metrics at ` +
      `${LOAD_CONNECTIONS} connections (auth on); baseline: the bare Deno.serve child of the ` +
      `HTTP benchmark under the same load` +
      (quick ? "." : `; then once more after ${SETTLED_AFTER_LOAD_S} s without load.`),
    rows,
    targets: [
      target("rss_idle_mib", Math.max(...idle.ours), 80, "MiB", "max"),
      target("rss_after_load_mib", Math.max(...loaded.ours), 100, "MiB", "max"),
    ],
  };
};

function rssRow(name: string, ours: number[], baseline: number[]): BenchRow {
  return {
    name,
    unit: "MiB",
    ours: summarize(ours),
    baseline: summarize(baseline),
    ratio: pairedRatio(ours, baseline),
  };
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}
