/**
 * @module
 * The collector that turns a child's stderr into log records: a line starting
 * with a Postgres timestamp begins a new record, continuation lines join it
 * (with U+200B, the zero-width space, in place of the newline), and a record is
 * flushed by the next record, by end of input, or by 100 ms of silence. The
 * default output is compute_ctl's stderr, one `PG:`-prefixed line per record.
 */

import { writeStderr } from "../log.ts";

/** A line that begins a Postgres log record: `2024-05-01 10:00:00…`. */
export const RECORD_START = /^\d+-\d\d-\d\d \d\d:\d\d:\d\d/;

/** What joins the lines of one multi-line record. */
export const LINE_JOINER = "\u200B";

/** Silence after which a partial record is flushed. */
export const FLUSH_AFTER_MS = 100;

/** Receives one joined record (without the `PG:` prefix or a newline). */
export type RecordSink = (record: string) => void;

/** Writes `PG:<record>\n` to the manager's stderr in one synchronous write. */
export const writePgLine: RecordSink = (record) => writeStderr(`PG:${record}\n`);

/** Buffers lines into records; see the module comment for the flushing rules. */
export class LogCollector {
  #buffer: string[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #sink: RecordSink;
  readonly #flushAfterMs: number;

  constructor(sink: RecordSink = writePgLine, flushAfterMs: number = FLUSH_AFTER_MS) {
    this.#sink = sink;
    this.#flushAfterMs = flushAfterMs;
  }

  /** Adds one line (without its newline). */
  push(line: string): void {
    if (RECORD_START.test(line)) this.flush();
    this.#buffer.push(line);
    this.#armTimer();
  }

  /** Emits the buffered record, if any. */
  flush(): void {
    this.#clearTimer();
    if (this.#buffer.length === 0) return;
    const record = this.#buffer.join(LINE_JOINER);
    this.#buffer = [];
    this.#sink(record);
  }

  /** Flushes and stops the silence timer: call at end of input. */
  close(): void {
    this.flush();
  }

  #armTimer(): void {
    this.#clearTimer();
    this.#timer = setTimeout(() => this.flush(), this.#flushAfterMs);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Reads `stream` to the end, splitting it into lines (`\n`, with a trailing
 * `\r` dropped) fed to a new collector writing to `sink`; resolves when the
 * stream ends and the last record is flushed. Read errors end collection.
 */
export async function collectLogs(
  stream: ReadableStream<Uint8Array>,
  sink: RecordSink = writePgLine,
): Promise<void> {
  const collector = new LogCollector(sink);
  let pending = "";
  try {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        collector.push(line.endsWith("\r") ? line.slice(0, -1) : line);
      }
    }
  } catch {
    // the pipe broke: keep what we have
  }
  if (pending !== "") collector.push(pending);
  collector.close();
}
