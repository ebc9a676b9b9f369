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

import {
  configureSync,
  getLogger as getLogtapeLogger,
  isLogLevel,
  type Logger,
  type LogLevel,
  type LogRecord,
  type Sink,
} from "@logtape/logtape";
import { writeStderr } from "./log_output.ts";

export type { Logger, LogLevel };
export {
  BATCH_DELAY_MS,
  drainLogsSync,
  EXIT_FLUSH_TIMEOUT_MS,
  exitAfterLogs,
  flushLogs,
  MAX_PENDING_CHARS,
  MAX_PENDING_LINES,
  MIN_SECRET_LENGTH,
  redactSecrets,
  registerSecret,
  writeStderr,
} from "./log_output.ts";

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
  const sink = options.sink ?? stderrSink;
  direct = { sink, lowest: LEVEL_RANK[level ?? "info"] };
  configureSync({
    reset: true,
    sinks: { main: sink },
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

/** Levels from the most detailed up. */
const LEVEL_RANK: Record<LogLevel, number> = {
  trace: 0,
  debug: 1,
  info: 2,
  warning: 3,
  error: 4,
  fatal: 5,
};

/** The sink and lowest level {@linkcode setupLogging} configured, for {@linkcode getDirectLogger}. */
let direct: { sink: Sink; lowest: number } | null = null;

/**
 * A module's logger that hands each record straight to the sink
 * {@linkcode setupLogging} configured, at the same level, without LogTape's
 * dispatch (filters, implicit context, the category tree walked per record),
 * which costs more than formatting and writing the line. For the line every
 * HTTP request writes; everything else logs through {@linkcode getLogger}.
 * Before `setupLogging` it logs through LogTape. A sink that throws loses
 * the record, never the request.
 */
export function getDirectLogger(module: string): Log {
  const category = [ROOT_CATEGORY, module];
  const viaLogTape = getLogger(module);
  const at = (level: LogLevel, fallback: Log["info"]): Log["info"] => (message, fields = {}) => {
    if (direct === null) return fallback(message, fields);
    if (LEVEL_RANK[level] < direct.lowest) return;
    try {
      direct.sink({
        category,
        level,
        message: [message],
        rawMessage: message,
        timestamp: Date.now(),
        properties: fields,
      });
    } catch {
      // the record is lost; the caller goes on
    }
  };
  return {
    debug: at("debug", viaLogTape.debug),
    info: at("info", viaLogTape.info),
    warn: at("warning", viaLogTape.warn),
    error: at("error", viaLogTape.error),
  };
}

/** Renders an unknown thrown value as one line of text for logs and API errors. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
