/**
 * @module
 * The child processes of fast_import: started with exactly the environment
 * given (nothing inherited), their stdout and stderr relayed line by line to
 * the log (Neon's `relay_process_output`, each line tagged with its `fd`) and
 * to an optional listener, killed when the run is aborted.
 */

import type { Log } from "./_log.ts";

/** A child could not be started, or one that had to succeed did not. */
export class ChildError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ChildError";
  }
}

/** Options of {@linkcode spawnRelayed}. */
export interface RelayedOptions {
  program: string;
  args: readonly string[];
  env: Record<string, string>;
  /** Where each output line is logged (at info, as Neon does). */
  log: Log;
  /** Called with every output line, after it was logged. */
  onLine?: (line: string, fd: "stdout" | "stderr") => void;
  /** Aborting sends SIGTERM to the child. */
  signal?: AbortSignal;
}

/** A running child. */
export interface RelayedChild {
  readonly pid: number;
  /** Resolves once the child has exited and all its output was relayed. */
  readonly done: Promise<Deno.CommandStatus>;
  /** Sends `signal`; nothing happens once the child has exited. */
  kill(signal: Deno.Signal): void;
}

/** `program` with only `env` as its environment, no stdin, both outputs piped. */
function isolatedCommand(
  program: string,
  args: readonly string[],
  env: Record<string, string>,
): Deno.Command {
  return new Deno.Command(program, {
    args: [...args],
    clearEnv: true,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Starts `program` with its output relayed; throws {@linkcode ChildError} if it cannot start. */
export function spawnRelayed(options: RelayedOptions): RelayedChild {
  const { program, args, env, log, onLine, signal } = options;
  let child: Deno.ChildProcess;
  try {
    child = isolatedCommand(program, args, env).spawn();
  } catch (error) {
    throw new ChildError(`spawn ${program}: ${(error as Error).message}`, { cause: error });
  }
  let exited = false;
  const kill = (name: Deno.Signal) => {
    if (exited) return;
    try {
      child.kill(name);
    } catch {
      // already gone
    }
  };
  const onAbort = () => kill("SIGTERM");
  signal?.addEventListener("abort", onAbort, { once: true });
  const relay = (stream: ReadableStream<Uint8Array>, fd: "stdout" | "stderr") =>
    forEachLine(stream, (line) => {
      log.info(line, { fd });
      onLine?.(line, fd);
    });
  const relayed = Promise.all([relay(child.stdout, "stdout"), relay(child.stderr, "stderr")]);
  const done = child.status.then(async (status) => {
    exited = true;
    signal?.removeEventListener("abort", onAbort);
    await relayed.catch(() => {});
    return status;
  });
  return { pid: child.pid, done, kill };
}

/** What {@linkcode runCaptured} returns. */
export interface CapturedOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `program` to completion with `env` only and returns its exit code and output. */
export async function runCaptured(
  program: string,
  args: readonly string[],
  env: Record<string, string>,
): Promise<CapturedOutput> {
  let output: Deno.CommandOutput;
  try {
    output = await isolatedCommand(program, args, env).output();
  } catch (error) {
    throw new ChildError(`spawn ${program}: ${(error as Error).message}`, { cause: error });
  }
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Calls `onLine` with each line of `stream` (UTF-8, invalid bytes replaced, no line ending). */
export async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let buffered = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    buffered += text;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      onLine(buffered.slice(0, newline).replace(/\r$/, ""));
      buffered = buffered.slice(newline + 1);
    }
  }
  if (buffered !== "") onLine(buffered);
}
