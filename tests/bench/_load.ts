/**
 * @module
 * HTTP load with `npm:autocannon`: a fixed number of keep-alive connections
 * send one request after another for a fixed time. Returns requests per second
 * and the p99 latency computed from every response's own duration (autocannon's
 * histogram keeps whole milliseconds, too coarse at one connection), and
 * throws when any request failed or answered other than 2xx: a benchmark of
 * failing requests measures nothing.
 */

import autocannon from "autocannon";
import { runBenchChild } from "./_child.ts";
import { quantile } from "./_stats.ts";

/** One load run. */
export interface LoadOptions {
  url: string;
  connections: number;
  durationS: number;
  headers?: Record<string, string>;
}

/** What one load run measured. */
export interface LoadResult {
  requests: number;
  requestsPerS: number;
  p50Ms: number;
  p99Ms: number;
}

/** A load run saw requests fail or answer other than 2xx. */
export class LoadFailedError extends Error {
  constructor(url: string, problems: string) {
    super(`load on ${url}: ${problems}`);
    this.name = "LoadFailedError";
  }
}

/** The parts of autocannon's result this module reads. */
interface AutocannonResult {
  start: Date;
  finish: Date;
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
  statusCodeStats: Record<string, { count: number }>;
}

/** The parts of autocannon's instance this module uses. */
interface AutocannonInstance {
  on(
    event: "response",
    listener: (client: unknown, statusCode: number, bytes: number, durationMs: number) => void,
  ): void;
}

type Autocannon = (
  options: Record<string, unknown>,
  done: (error: Error | null, result: AutocannonResult) => void,
) => AutocannonInstance;

/**
 * Runs `connections` keep-alive connections against `url` for `durationS`
 * seconds, from a child process of its own (see {@linkcode runLoads}).
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  return (await runLoads([options]))[0];
}

/**
 * Runs the load runs one after the other, in order, from one child process:
 * the generator then shares no event loop with the harness servers (or the
 * log copying) of the process that measures, and one process start serves
 * every run of a repetition.
 */
export async function runLoads(runs: readonly LoadOptions[]): Promise<LoadResult[]> {
  try {
    return await runBenchChild<LoadResult[]>(
      new URL("./_load_child.ts", import.meta.url),
      runs,
      "load",
    );
  } catch (error) {
    throw new LoadFailedError(runs.map((run) => run.url).join(", "), (error as Error).message);
  }
}

/** One load run in this process (what the child runs). */
export function runLoadHere(
  { url, connections, durationS, headers = {} }: LoadOptions,
): Promise<LoadResult> {
  const durationsMs: number[] = [];
  return new Promise((resolve, reject) => {
    const instance = (autocannon as Autocannon)(
      { url, connections, duration: durationS, headers, timeout: 10 },
      (error, result) => {
        if (error) return reject(error);
        const problems = [
          result.non2xx > 0 ? `${result.non2xx} non-2xx (${describeCodes(result)})` : "",
          result.errors > 0 ? `${result.errors} errors` : "",
          result.timeouts > 0 ? `${result.timeouts} timeouts` : "",
        ].filter(Boolean);
        if (problems.length > 0) return reject(new LoadFailedError(url, problems.join(", ")));
        if (durationsMs.length === 0) return reject(new LoadFailedError(url, "no responses"));
        const elapsedS = (result.finish.getTime() - result.start.getTime()) / 1000;
        resolve({
          requests: durationsMs.length,
          requestsPerS: durationsMs.length / elapsedS,
          p50Ms: quantile(durationsMs, 0.5),
          p99Ms: quantile(durationsMs, 0.99),
        });
      },
    );
    instance.on("response", (_client, _status, _bytes, durationMs) => {
      durationsMs.push(durationMs);
    });
  });
}

function describeCodes(result: AutocannonResult): string {
  return Object.entries(result.statusCodeStats)
    .filter(([code]) => !code.startsWith("2"))
    .map(([code, { count }]) => `${code}×${count}`)
    .join(", ");
}
