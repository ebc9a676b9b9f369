/**
 * @module
 * Progress of the dump and the restore, read from the `--verbose` lines
 * pg_dump and pg_restore print anyway (`dumping contents of table "s.t"`,
 * `finished item 3364 TABLE DATA t`, `processing item 7 SCHEMA s`), with
 * totals from the source's catalog (tables) and the dump's table of contents
 * (items, and the size of each table's data file). The trackers are pure;
 * {@linkcode reportEvery} logs what they say at an interval.
 */

import type { Log } from "./_log.ts";
import type { TocEntry } from "./restore_list.ts";
import { isTableData } from "./restore_list.ts";

/** Bytes as `812 B`, `79.1 KiB`, `3.4 MiB`, `1.2 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Milliseconds as seconds with one decimal: `2.4 s`. */
export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** What the dump has done so far. */
export interface DumpProgress {
  /** Feeds one line of pg_dump's output. */
  onLine(line: string): void;
  /** Tables whose data pg_dump has finished writing. */
  tablesDone(): number;
  /** One line for the log, e.g. `2 of 3 tables dumped (1 in progress), 79.1 KiB written`. */
  describe(bytesWritten: number): string;
}

const DUMPING_TABLE = /dumping contents of table "(.*)"$/;
const FINISHED_ITEM = /finished item (\d+) /;
const FINISHED_TABLE_DATA = /finished item \d+ TABLE DATA /;
const PROCESSING_ITEM = /processing item (\d+) /;

/**
 * A tracker of pg_dump's table data. `totalTables` is what the source's
 * catalog counted. With `parallel` (`--jobs` above 1) pg_dump says when each
 * table is finished; a serial pg_dump only says when it starts the next one.
 */
export function dumpProgress(
  { totalTables, parallel }: { totalTables: number; parallel: boolean },
): DumpProgress {
  let started = 0;
  let finished = 0;
  const done = () => parallel ? finished : Math.max(0, started - 1);
  return {
    onLine(line) {
      if (DUMPING_TABLE.test(line)) started++;
      else if (FINISHED_TABLE_DATA.test(line)) finished++;
    },
    tablesDone: done,
    describe(bytesWritten) {
      const total = Math.max(totalTables, started);
      const running = started - done();
      return `${done()} of ${total} tables dumped` +
        (running > 0 ? ` (${running} in progress)` : "") +
        `, ${formatBytes(bytesWritten)} written`;
    },
  };
}

/** What the restore has done so far. */
export interface RestoreProgress {
  /** Feeds one line of pg_restore's output. */
  onLine(line: string): void;
  /** One line for the log, e.g. `15 of 19 items, 2 of 3 tables (64.1 KiB of 79.1 KiB of data)`. */
  describe(): string;
}

/**
 * A tracker of pg_restore's items: `entries` is the list restored,
 * `dataBytes` the size of each table-data item's file in the dump. An item
 * counts as done when pg_restore reports it finished (parallel phase) or
 * processed (serial phase).
 */
export function restoreProgress(
  { entries, dataBytes }: { entries: readonly TocEntry[]; dataBytes: ReadonlyMap<number, number> },
): RestoreProgress {
  const listed = new Set(entries.map((entry) => entry.dumpId));
  const tables = new Set(entries.filter(isTableData).map((entry) => entry.dumpId));
  const totalBytes = [...tables].reduce((sum, id) => sum + (dataBytes.get(id) ?? 0), 0);
  const done = new Set<number>();
  let tablesDone = 0;
  let bytesDone = 0;
  return {
    onLine(line) {
      const match = FINISHED_ITEM.exec(line) ?? PROCESSING_ITEM.exec(line);
      if (!match) return;
      const id = Number(match[1]);
      if (!listed.has(id) || done.has(id)) return;
      done.add(id);
      if (tables.has(id)) {
        tablesDone++;
        bytesDone += dataBytes.get(id) ?? 0;
      }
    },
    describe() {
      return `${done.size} of ${listed.size} items restored, ${tablesDone} of ${tables.size} ` +
        `tables (${formatBytes(bytesDone)} of ${formatBytes(totalBytes)} of table data)`;
    },
  };
}

/**
 * Logs `describe()` every `intervalMs` until the returned `stop` is called;
 * a slow `describe` is not started again before it has finished.
 */
export function reportEvery(
  log: Log,
  intervalMs: number,
  describe: () => string | Promise<string>,
): { stop(): void } {
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      log.info(`progress: ${await describe()}`);
    } catch {
      // a progress line is not worth failing the import for
    } finally {
      busy = false;
    }
  }, intervalMs);
  return { stop: () => clearInterval(timer) };
}
