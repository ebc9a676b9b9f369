/**
 * @module
 * fast_import's entry point: parse the command line, refuse to run as root,
 * run the subcommand, record the outcome in `<destination>/status/fast_import`
 * and exit: 0 when it succeeded, 1 when it failed (Neon's exits 0 and leaves
 * the error to the status file), 2 for a command line that cannot run.
 *
 * ```sh
 * deno run -P=fast_import src/fast_import/main.ts --working-directory … pgdata …
 * ```
 */

import { causeChain } from "../cause_chain.ts";
import { exitAfterLogs } from "../log.ts";
import { ENV_FALLBACKS, type FastImportArgs, parseFastImportArgs, UsageError } from "./cli.ts";
import { childEnv } from "./command_lines.ts";
import { writeJobStatus } from "./directories.ts";
import { getLogger, setupFastImportLogging } from "./_log.ts";
import { runFastImport } from "./run.ts";

const log = getLogger("main");

/** Reads a variable the `fast_import` permission set allows; undefined when unset. */
function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * Whether `run` is granted without a list: only then does Deno start a child
 * with `LD_LIBRARY_PATH` set. Under `-P=fast_import` it is not, and the
 * children find their libraries as installed (Debian's do).
 */
function libraryPathAllowed(): boolean {
  return Deno.permissions.querySync({ name: "run" }).state === "granted";
}

/** SIGINT and SIGTERM: they end `--interactive`, and otherwise abort the run. */
function listenForInterrupts() {
  const controller = new AbortController();
  let endInteractive: (() => void) | undefined;
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  const handlers = signals.map((signal) => {
    const handler = () => {
      if (endInteractive) {
        endInteractive();
        endInteractive = undefined;
      } else {
        controller.abort(new Error(`interrupted by ${signal}`));
      }
    };
    Deno.addSignalListener(signal, handler);
    return handler;
  });
  return {
    signal: controller.signal,
    interactiveEnd: () => new Promise<void>((resolve) => endInteractive = resolve),
    close() {
      signals.forEach((signal, index) => Deno.removeSignalListener(signal, handlers[index]));
    },
  };
}

/** Runs fast_import with `argv` and returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let args: FastImportArgs;
  try {
    args = parseFastImportArgs(
      argv,
      Object.fromEntries(
        Object.values(ENV_FALLBACKS).map((name) => [name, env(name)]),
      ),
    );
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    if (error.exitCode === 0) console.log(error.message);
    else console.error(`error: ${error.message}`);
    return error.exitCode;
  }
  setupFastImportLogging();
  if (Deno.uid() === 0) {
    log.error(
      "refusing to run as root: initdb and postgres refuse root, and a PGDATA owned by root " +
        "is of no use to the storage; run fast_import as an unprivileged user " +
        "(e.g. runuser -u postgres -- …)",
    );
    return 1;
  }
  log.info("starting", { command: args.command.name });

  const interrupts = listenForInterrupts();
  let failure: string | undefined;
  try {
    await runFastImport(args, {
      hostCpus: navigator.hardwareConcurrency,
      childEnv: childEnv({
        pgLibDir: args.pgLibDir,
        libraryPathAllowed: libraryPathAllowed(),
        sanitizerOptions: {
          ASAN_OPTIONS: env("ASAN_OPTIONS"),
          UBSAN_OPTIONS: env("UBSAN_OPTIONS"),
        },
      }),
      signal: interrupts.signal,
      interactiveEnd: interrupts.interactiveEnd,
    });
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
    log.error(`${args.command.name} failed: ${causeChain(error)}`);
  } finally {
    interrupts.close();
  }

  if (args.destinationDir !== undefined) {
    try {
      await writeJobStatus(args.destinationDir, {
        command: args.command.name,
        done: failure === undefined,
        ...(failure === undefined ? {} : { error: failure }),
      });
    } catch (error) {
      log.error(`write job status: ${causeChain(error)}`);
      return 1;
    }
  }
  return failure === undefined ? 0 : 1;
}

if (import.meta.main) {
  await exitAfterLogs(await main(Deno.args));
}
