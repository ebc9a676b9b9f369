/**
 * @module
 * Logging for the manager: LogTape configured once, one line per record on
 * stderr (`<RFC 3339 time> <LEVEL> <category>: <message> key=value…`), level
 * from `COMPUTE_CTL_LOG_LEVEL` (default `info`). Postgres's own output does not
 * pass through the logger: the log collector writes it as `PG:` lines. Both
 * go through {@linkcode writeStderr}, which redacts secrets and queues the
 * line: the queue is written in batches off the request path, in order, and
 * drained before the process ends ({@linkcode flushLogs}, {@linkcode exitAfterLogs},
 * and a synchronous drain on `unload` and on an uncaught error).
 */

import { settlesWithin, sleep } from "./_async.ts";
import {
  configureSync,
  getLogger as getLogtapeLogger,
  isLogLevel,
  type Logger,
  type LogLevel,
  type LogRecord,
  type Sink,
} from "@logtape/logtape";

export type { Logger, LogLevel };

/** The root category; every module logs under `["compute_ctl", <module>]`. */
export const ROOT_CATEGORY = "compute_ctl";

const LEVEL_ALIASES: Record<string, LogLevel> = { warn: "warning", err: "error" };

/**
 * Turns a `COMPUTE_CTL_LOG_LEVEL` value into a LogTape level: `trace`, `debug`,
 * `info`, `warn`/`warning`, `error`, `fatal` (any case). Returns `undefined` for
 * anything else so the caller can say so.
 */
export function parseLevel(text: string): LogLevel | undefined {
  const lower = text.trim().toLowerCase();
  if (isLogLevel(lower)) return lower;
  return LEVEL_ALIASES[lower];
}

/** A line break inside a value would start a second, forgeable log record: write it as `\n`. */
function oneLine(text: string): string {
  if (!text.includes("\n") && !text.includes("\r")) return text;
  return text.replaceAll("\r", "\\r").replaceAll("\n", "\\n");
}

function formatProperties(record: LogRecord): string {
  let text = "";
  for (const [key, value] of Object.entries(record.properties)) {
    const shown = typeof value === "string"
      ? oneLine(value)
      : typeof value === "number" || typeof value === "boolean"
      ? String(value)
      : JSON.stringify(value);
    text += ` ${oneLine(key)}=${shown}`;
  }
  return text;
}

/** The level as it is written, padded to the widest (`WARNING`). */
const LEVEL_LABELS: Record<LogLevel, string> = {
  trace: "  TRACE",
  debug: "  DEBUG",
  info: "   INFO",
  warning: "WARNING",
  error: "  ERROR",
  fatal: "  FATAL",
};

let lastTime = Number.NaN;
let lastIsoTime = "";

/** `new Date(time).toISOString()`, remembered: under load many lines share a millisecond. */
function isoTime(time: number): string {
  if (time !== lastTime) {
    lastTime = time;
    lastIsoTime = new Date(time).toISOString();
  }
  return lastIsoTime;
}

/** A value interpolated into a message: strings as they are, anything else as JSON. */
function renderValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * One log record as the one line the manager writes for it:
 * `<RFC 3339 time> <LEVEL> <category>: <message> key=value…`, line breaks in
 * the message and the fields written as `\n`. Written by hand rather than
 * with LogTape's configurable text formatter: it runs for every request.
 */
export function formatLogRecord(record: LogRecord): string {
  // A template without braces is its own message: LogTape need not parse it.
  const raw = record.rawMessage;
  let message = typeof raw === "string" && !raw.includes("{") && !raw.includes("}") ? raw : "";
  if (message === "" && raw !== "") {
    for (const part of record.message) message += renderValue(part);
  }
  return `${isoTime(record.timestamp)} ${LEVEL_LABELS[record.level]} ${
    record.category.join("::")
  }: ${oneLine(message)}${formatProperties(record)}\n`;
}

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

/**
 * LogTape's mark for a sink that is done with a record when it returns (this
 * one formats it at once), so LogTape need not copy each record's fields
 * first in case the sink kept it for later.
 */
const IMMEDIATE_SINK = Symbol.for("LogTape.sinkSnapshotPolicy.immediate");

/** A sink writing each formatted record to stderr, one line per record. */
export const stderrSink: Sink = Object.defineProperty(
  (record: LogRecord) => writeStderr(formatLogRecord(record)),
  IMMEDIATE_SINK,
  { value: true },
);

/**
 * Configures LogTape for the process. The level is `options.level`, else
 * `COMPUTE_CTL_LOG_LEVEL`, else `info`; an unknown value falls back to `info`
 * with a warning. Safe to call more than once (the last call wins).
 */
export function setupLogging(options: { level?: string; sink?: Sink } = {}): LogLevel {
  const requested = options.level ?? readLevelEnv() ?? "info";
  const level = parseLevel(requested);
  configureSync({
    reset: true,
    sinks: { main: options.sink ?? stderrSink },
    loggers: [
      { category: ROOT_CATEGORY, sinks: ["main"], lowestLevel: level ?? "info" },
      { category: ["logtape", "meta"], sinks: ["main"], lowestLevel: "warning" },
    ],
  });
  if (level === undefined) {
    getLogger("log").warn(`unknown COMPUTE_CTL_LOG_LEVEL ${requested}, using info`);
  }
  return level ?? "info";
}

function readLevelEnv(): string | undefined {
  try {
    return Deno.env.get("COMPUTE_CTL_LOG_LEVEL");
  } catch {
    return undefined; // no env permission for it: use the default
  }
}

/** Context printed after the message as `key=value` pairs. */
export type LogFields = Record<string, unknown>;

/** A module's logger: plain-text messages (braces are not placeholders) plus fields. */
export interface Log {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** Returns the logger for one module, e.g. `getLogger("startup")` → `compute_ctl::startup`. */
export function getLogger(module: string): Log {
  const logger: Logger = getLogtapeLogger([ROOT_CATEGORY, module]);
  const escape = (message: string) =>
    message.includes("{") || message.includes("}")
      ? message.replaceAll("{", "{{").replaceAll("}", "}}")
      : message;
  return {
    debug: (message, fields = {}) => logger.debug(escape(message), fields),
    info: (message, fields = {}) => logger.info(escape(message), fields),
    warn: (message, fields = {}) => logger.warn(escape(message), fields),
    error: (message, fields = {}) => logger.error(escape(message), fields),
  };
}

/** Renders an unknown thrown value as one line of text for logs and API errors. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
