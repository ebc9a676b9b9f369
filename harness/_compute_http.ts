/**
 * @module
 * The small I/O helpers of a compute handle: one HTTP request with its body
 * read as text and JSON, polling `/status` until a wanted status, the
 * postmaster's pid from `postmaster.pid`, and copying a child's output into
 * `compute.log`.
 */

import type { ComputeStatus, ComputeStatusResponse } from "../src/api/responses.ts";
import type { HttpResult } from "./_compute.ts";
import { sleep } from "./_processes.ts";

/** Sends one request and reads the answer as text and, when it parses, as JSON. */
export async function httpRequest(
  method: string,
  url: string,
  body: unknown,
  headers: Headers,
): Promise<HttpResult> {
  if (body !== undefined && !headers.has("content-type")) {
    headers.set("content-type", "application/json");
  }
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON; `text` has it
  }
  return { status: response.status, headers: response.headers, text, body: parsed };
}

/** Options of {@linkcode pollStatus}. */
export interface PollOptions {
  status: () => Promise<ComputeStatusResponse>;
  wanted: readonly ComputeStatus[];
  timeoutMs: number;
  exitCode: () => number | undefined;
  /** Turns a problem into the error message (with the end of `compute.log`). */
  describe: (problem: string) => Promise<string>;
}

/**
 * Polls `status` every 100 ms until it is one of `wanted`; throws (with the
 * message `describe` makes) on `failed`, on the process's exit or at the deadline.
 */
export async function pollStatus(
  { status, wanted, timeoutMs, exitCode, describe }: PollOptions,
): Promise<ComputeStatusResponse> {
  const deadline = Date.now() + timeoutMs;
  const names = wanted.join("|");
  let last: ComputeStatusResponse | undefined;
  let lastError: unknown;
  while (true) {
    try {
      last = await status();
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (last && wanted.includes(last.status)) return last;
    if (last?.status === "failed") {
      throw new Error(await describe(`failed while waiting for ${names}: ${last.error}`));
    }
    const code = exitCode();
    if (code !== undefined) {
      throw new Error(await describe(`exited with code ${code} while waiting for ${names}`));
    }
    if (Date.now() >= deadline) {
      throw new Error(
        await describe(
          `reached no ${names} within ${timeoutMs} ms ` +
            `(last status ${last?.status ?? "unknown"}, last error ${lastError ?? "none"})`,
        ),
      );
    }
    await sleep(100);
  }
}

/** The postmaster's pid from `pgdata/postmaster.pid`, or undefined while there is none. */
export async function readPostmasterPid(pgdata: string): Promise<number | undefined> {
  try {
    const pid = Number((await Deno.readTextFile(`${pgdata}/postmaster.pid`)).split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Copies `stream` into `file` until the stream ends. */
export async function pump(stream: ReadableStream<Uint8Array>, file: Deno.FsFile): Promise<void> {
  for await (const chunk of stream) {
    let written = 0;
    while (written < chunk.length) written += await file.write(chunk.subarray(written));
  }
}
