/**
 * @module
 * The HTTP baseline's lifecycle: copy what the manager answers on some paths,
 * start `_bare_server.ts` as the compute user (like the manager, through
 * `runuser` when this process is root) and stop it again. Also the RSS of a
 * process, read from `/proc`, for the memory benchmark.
 */

import type { ComputeHandle } from "../../harness/cluster.ts";
import { ownedDir } from "../../harness/_fs.ts";
import {
  isRoot,
  pgUserCommand,
  programPid,
  signalQuietly,
  sleep,
} from "../../harness/_processes.ts";
import type { CannedResponses } from "./_bare_server.ts";

const SCRIPT = new URL("./_bare_server.ts", import.meta.url).pathname;

/** Headers that belong to one answer, not to its bytes. */
const PER_ANSWER_HEADERS = new Set(["date", "content-length", "transfer-encoding", "connection"]);

/** A running bare server; `await using` stops it. */
export interface BareServer extends AsyncDisposable {
  readonly url: string;
  /** The deno process serving (not `runuser`). */
  readonly pid: number;
}

/** GETs each path from the compute's external port (with its token) as the baseline will answer it. */
export async function copyAnswers(
  compute: ComputeHandle,
  paths: readonly string[],
): Promise<CannedResponses> {
  const answers: CannedResponses = {};
  for (const path of paths) {
    const { status, headers, text } = await compute.request("GET", path);
    if (status !== 200) throw new Error(`GET ${path} answered ${status}: ${text}`);
    const kept = [...headers].filter(([name]) => !PER_ANSWER_HEADERS.has(name.toLowerCase()));
    answers[path] = { status, headers: kept, body: text };
  }
  return answers;
}

/**
 * Starts the bare `Deno.serve` answering `answers`, as the compute user,
 * with its answers file and `DENO_DIR` in `workDir` (which that user must be
 * able to enter); waits until it listens.
 */
export async function startBareServer(
  workDir: string,
  answers: CannedResponses,
): Promise<BareServer> {
  const id = crypto.randomUUID();
  const answersPath = `${workDir}/bare-answers-${id}.json`;
  await Deno.writeTextFile(answersPath, JSON.stringify(answers), { mode: 0o644 });
  const env: Record<string, string> = { NO_COLOR: "1" };
  if (isRoot()) env.DENO_DIR = await ownedDir(`${workDir}/bare-deno-${id}`);
  const child = pgUserCommand(
    Deno.execPath(),
    [
      "run",
      "--no-config",
      "--allow-net=127.0.0.1",
      `--allow-read=${answersPath}`,
      SCRIPT,
      answersPath,
    ],
    { env, stdin: "null", stdout: "piped", stderr: "piped" },
  ).spawn();
  const stop = async () => {
    const pid = await programPid(child);
    signalQuietly(pid ?? child.pid, "SIGTERM");
    const timedOut = await Promise.race([
      child.status.then(() => false),
      sleep(5_000).then(() => true),
    ]);
    if (timedOut) {
      if (pid !== undefined) signalQuietly(pid, "SIGKILL");
      signalQuietly(child.pid, "SIGKILL");
      await child.status;
    }
  };
  try {
    const port = await readPort(child.stdout, drain(child.stderr));
    const pid = await programPid(child);
    if (pid === undefined) throw new Error("the bare server's deno process is gone");
    return { url: `http://127.0.0.1:${port}`, pid, [Symbol.asyncDispose]: stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The resident set size of `pid` in MiB, as `ps` reports it (VmRSS; reading
 * `/proc/<pid>/status` directly needs Deno's `--allow-all`).
 */
export async function rssMiB(pid: number): Promise<number> {
  const output = await new Deno.Command("ps", {
    args: ["-o", "rss=", "-p", String(pid)],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  const kib = Number.parseInt(new TextDecoder().decode(output.stdout).trim(), 10);
  if (!output.success || !Number.isFinite(kib)) throw new Error(`no process ${pid} to measure`);
  return kib / 1024;
}

/** Reads `listening <port>` from the bare server's stdout, then drains the rest in the background. */
async function readPort(
  stdout: ReadableStream<Uint8Array>,
  stderr: () => string,
): Promise<number> {
  let seen = "";
  const reader = stdout.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => reader.cancel(), 30_000);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the bare server exited before listening: ${seen}${stderr()}`);
      seen += value;
      const match = /listening (\d+)\n/.exec(seen);
      if (match) {
        (async () => {
          while (!(await reader.read()).done) { /* drain */ }
        })().catch(() => {});
        return Number(match[1]);
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Reads `stream` to its end in the background; returns what it said so far (the last 4 KiB). */
function drain(stream: ReadableStream<Uint8Array>): () => string {
  let text = "";
  (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text = (text + chunk).slice(-4096);
    }
  })().catch(() => {});
  return () => text;
}
