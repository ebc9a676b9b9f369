/**
 * @module
 * How `deno task test-container` reports progress: one line per step, with
 * the time it took.
 */

/** Prints `line` as the test's own output. */
export function report(line: string): void {
  console.log(`test-container: ${line}`);
}

/** Runs `work`, then reports `name` and how long it took; a failure propagates unreported. */
export async function step<T>(name: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await work();
  report(`${name} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  return result;
}
