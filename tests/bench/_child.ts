/**
 * @module
 * Runs a helper script of the benchmarks in a Deno process of its own (under
 * the `harness` permission set): the input goes in as JSON in the first
 * argument, the result comes back as JSON on stdout. Work measured there
 * shares no event loop with the harness servers of the measuring process.
 */

/** Runs `script` (a URL beside this file) with `input`; throws its stderr when it fails. */
export async function runBenchChild<T>(script: URL, input: unknown, what: string): Promise<T> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-P=harness",
      "--config",
      new URL("../../deno.json", import.meta.url).pathname,
      script.pathname,
      JSON.stringify(input),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  if (code !== 0) throw new Error(`${what}: ${decoder.decode(stderr).trim() || `exit ${code}`}`);
  return JSON.parse(decoder.decode(stdout)) as T;
}
