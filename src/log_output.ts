/**
 * @module
 * Where the manager's log lines go: every line, its own and Postgres's, has
 * its secrets redacted ({@linkcode redactSecrets}) and is queued for stderr
 * ({@linkcode writeStderr}); the queue is written in batches off the request
 * path, in order, and drained before the process ends ({@linkcode flushLogs},
 * {@linkcode exitAfterLogs}, and a synchronous drain on `unload` and on an
 * uncaught error). `log.ts` re-exports all of it.
 */

import { settlesWithin, sleep } from "./_async.ts";

const encoder = new TextEncoder();

/** Shortest value {@linkcode registerSecret} takes: shorter ones would garble ordinary text. */
export const MIN_SECRET_LENGTH = 8;

/** Values to hide wherever they appear, longest first (so a longer one is hidden whole). */
let secretValues: string[] = [];

/**
 * What secrets look like where they reach a log line, and what replaces them:
 * role passwords in SQL (Postgres logs statements under `log_statement`, and a
 * failed one under `log_min_error_statement`), md5 and SCRAM verifiers, JWTs,
 * bearer tokens, the password of a URL and a libpq `password=`.
 */
const SECRET_PATTERNS: readonly (readonly [RegExp, string])[] = [
  [/\b(PASSWORD\s+)E?'(?:[^']|'')*'/gi, "$1'[redacted]'"],
  [
    /SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+/g,
    "SCRAM-SHA-256$[redacted]",
  ],
  [/\bmd5[0-9a-f]{32}\b/gi, "md5[redacted]"],
  [/\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+/g, "[redacted JWT]"],
  [/\b(Bearer\s+)[^\s"']+/gi, "$1[redacted]"],
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]*@/gi, "$1[redacted]@"],
  [/\b(password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s']+)/gi, "$1[redacted]"],
];

/**
 * What every pattern above needs somewhere in the text to match (the same
 * case folding, or looser): a line without any of these is left as it is
 * without running them, which most lines are.
 */
const SECRET_HINT = /password|scram-sha-256\$|md5|eyj|bearer|:\/\//i;

/**
 * Hides `value` (a token, a password) in every log line from now on. Values
 * shorter than {@linkcode MIN_SECRET_LENGTH} are ignored.
 */
export function registerSecret(value: string | null | undefined): void {
  if (value == null || value.length < MIN_SECRET_LENGTH || secretValues.includes(value)) return;
  secretValues = [...secretValues, value].sort((a, b) => b.length - a.length);
}

/**
 * `text` with every registered secret and everything shaped like a secret
 * (see the patterns above) replaced by `[redacted]`. Every line the manager
 * writes, its own and Postgres's, passes through here.
 */
export function redactSecrets(text: string): string {
  let redacted = text;
  for (const value of secretValues) redacted = redacted.replaceAll(value, "[redacted]");
  if (!SECRET_HINT.test(redacted)) return redacted;
  for (const [pattern, replacement] of SECRET_PATTERNS) {
    redacted = redacted.replace(pattern, replacement);
  }
  return redacted;
}

/** Queued lines past which {@linkcode writeStderr} writes synchronously instead of queueing more. */
export const MAX_PENDING_LINES = 10_000;
/** Queued characters past which {@linkcode writeStderr} writes synchronously (about 4 MiB). */
export const MAX_PENDING_CHARS = 4 * 1024 * 1024;
/**
 * How long a line waits for the lines logged after it to join its batch: one
 * asynchronous write costs the event loop about 10 µs (a hand-off to a
 * blocking thread), as much as formatting a few lines, so a write per line
 * under load would cost more than the lines.
 */
export const BATCH_DELAY_MS = 2;
/** How long {@linkcode exitAfterLogs} waits for stderr before exiting anyway. */
export const EXIT_FLUSH_TIMEOUT_MS = 2_000;

/** Redacted text waiting to be written, oldest first. */
let pending: string[] = [];
let pendingChars = 0;
/** The running batch writer, while there is one. */
let flushing: Promise<void> | undefined;
let exitHooksInstalled = false;
/** The code of the first {@linkcode exitAfterLogs}: a later call while it waits does not change it. */
let exitCode: number | undefined;

/**
 * Queues `text` for stderr with secrets redacted ({@linkcode redactSecrets}):
 * lines from the logger and from the Postgres log collector keep the order in
 * which they were written and never interleave, and nothing waits for stderr
 * here. Once more than {@linkcode MAX_PENDING_LINES} lines or
 * {@linkcode MAX_PENDING_CHARS} characters wait, the queue is written
 * synchronously instead: a stderr nobody reads slows the manager down rather
 * than losing lines or growing without bound. A closed stderr is ignored:
 * losing log lines must not take the manager down.
 */
export function writeStderr(text: string): void {
  const redacted = redactSecrets(text);
  pending.push(redacted);
  pendingChars += redacted.length;
  if (pending.length > MAX_PENDING_LINES || pendingChars > MAX_PENDING_CHARS) {
    drainLogsSync();
    return;
  }
  installExitHooks();
  flushing ??= writePending();
}

/** Everything queued, as bytes, leaving the queue empty. */
function takePending(): Uint8Array {
  const bytes = encoder.encode(pending.join(""));
  pending = [];
  pendingChars = 0;
  return bytes;
}

/** Writes the queue in batches until it is empty: what was queued meanwhile is the next batch. */
async function writePending(): Promise<void> {
  try {
    while (pending.length > 0) {
      await sleep(BATCH_DELAY_MS);
      const bytes = takePending();
      try {
        for (let written = 0; written < bytes.length;) {
          written += await Deno.stderr.write(bytes.subarray(written));
        }
      } catch {
        // stderr is gone
      }
    }
  } finally {
    flushing = undefined;
  }
}

/**
 * Resolves once every line queued so far (and any queued while waiting) is
 * written; await it before ending the process.
 */
export async function flushLogs(): Promise<void> {
  while (flushing !== undefined) await flushing;
}

/**
 * Writes the queue synchronously, now: for `unload`, an uncaught error, or a
 * queue past its bound. A batch the background writer has already handed to
 * stderr holds stderr's lock, so these lines still come after it.
 */
export function drainLogsSync(): void {
  if (pending.length === 0) return;
  const bytes = takePending();
  try {
    for (let written = 0; written < bytes.length;) {
      written += Deno.stderr.writeSync(bytes.subarray(written));
    }
  } catch {
    // stderr is gone
  }
}

/** A `Deno.exit` anywhere, the end of the event loop or an uncaught error still write the queue. */
function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  globalThis.addEventListener("unload", drainLogsSync);
  globalThis.addEventListener("error", drainLogsSync);
  globalThis.addEventListener("unhandledrejection", drainLogsSync);
}

/**
 * Ends the process with `code` once the queued log lines are written, or
 * after `timeoutMs` when stderr does not take them (the `unload` drain then
 * still tries). For exits that may wait a moment: the end of `main`, a signal.
 * The first call's code wins over any made while it waits.
 */
export async function exitAfterLogs(
  code: number,
  timeoutMs: number = EXIT_FLUSH_TIMEOUT_MS,
): Promise<never> {
  exitCode ??= code;
  await settlesWithin(flushLogs(), timeoutMs);
  Deno.exit(exitCode);
}
