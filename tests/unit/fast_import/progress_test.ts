/**
 * Progress read from pg_dump's and pg_restore's verbose lines (copied from a
 * real PostgreSQL 15 run), against the catalog's and the list's totals.
 */

import assert from "node:assert/strict";
import type { Log } from "../../../src/fast_import/_log.ts";
import {
  dumpProgress,
  formatBytes,
  formatSeconds,
  reportEvery,
  restoreProgress,
} from "../../../src/fast_import/progress.ts";
import { parseRestoreList } from "../../../src/fast_import/restore_list.ts";

Deno.test("bytes and seconds read well", () => {
  assert.equal(formatBytes(812), "812 B");
  assert.equal(formatBytes(81_000), "79.1 KiB");
  assert.equal(formatBytes(3.4 * 1024 * 1024), "3.4 MiB");
  assert.equal(formatBytes(5 * 1024 ** 3), "5.0 GiB");
  assert.equal(formatSeconds(2_449), "2.4 s");
});

Deno.test("a parallel dump counts the tables pg_dump reports finished", () => {
  const progress = dumpProgress({ totalTables: 3, parallel: true });
  assert.equal(progress.describe(0), "0 of 3 tables dumped, 0 B written");
  for (
    const line of [
      "pg_dump: reading user-defined tables",
      'pg_dump: dumping contents of table "sales.orders"',
      'pg_dump: dumping contents of table "public.t1"',
      "pg_dump: finished item 3364 TABLE DATA orders",
    ]
  ) progress.onLine(line);
  assert.equal(progress.describe(81_000), "1 of 3 tables dumped (1 in progress), 79.1 KiB written");
  progress.onLine('pg_dump: dumping contents of table "odd schema.odd table"');
  progress.onLine("pg_dump: finished item 3365 TABLE DATA odd table");
  progress.onLine("pg_dump: finished item 3362 TABLE DATA t1");
  assert.equal(progress.tablesDone(), 3);
});

Deno.test("a serial dump counts a table done when the next one starts", () => {
  const progress = dumpProgress({ totalTables: 2, parallel: false });
  progress.onLine('pg_dump: dumping contents of table "public.a"');
  assert.equal(progress.tablesDone(), 0);
  progress.onLine('pg_dump: dumping contents of table "public.b"');
  assert.equal(progress.tablesDone(), 1);
  assert.match(progress.describe(0), /^1 of 2 tables dumped \(1 in progress\)/);
});

Deno.test("the restore counts listed items and the table data behind them", () => {
  const { entries } = parseRestoreList(
    [
      "6; 2615 16384 SCHEMA - sales cloud_admin",
      "216; 1259 16386 TABLE public t1 cloud_admin",
      "3362; 0 16386 TABLE DATA public t1 cloud_admin",
      "3364; 0 16394 TABLE DATA sales orders cloud_admin",
      "3216; 1259 16402 INDEX sales orders_amount_idx cloud_admin",
    ].join("\n"),
  );
  const progress = restoreProgress({
    entries,
    dataBytes: new Map([[3362, 64_830], [3364, 14_227]]),
  });
  for (
    const line of [
      "pg_restore: processing item 3369 ENCODING ENCODING", // not in the list
      "pg_restore: processing item 6 SCHEMA sales",
      'pg_restore: creating SCHEMA "sales"',
      "pg_restore: processing item 216 TABLE t1",
      "pg_restore: entering main parallel loop",
      "pg_restore: launching item 3362 TABLE DATA t1",
      "pg_restore: launching item 3364 TABLE DATA orders",
      'pg_restore: processing data for table "sales.orders"',
      "pg_restore: finished item 3364 TABLE DATA orders",
    ]
  ) progress.onLine(line);
  assert.equal(
    progress.describe(),
    "3 of 5 items restored, 1 of 2 tables (13.9 KiB of 77.2 KiB of table data)",
  );
  progress.onLine("pg_restore: finished item 3362 TABLE DATA t1");
  progress.onLine("pg_restore: finished item 3362 TABLE DATA t1");
  progress.onLine("pg_restore: finished item 3216 INDEX orders_amount_idx");
  assert.equal(
    progress.describe(),
    "5 of 5 items restored, 2 of 2 tables (77.2 KiB of 77.2 KiB of table data)",
  );
});

Deno.test("reportEvery logs a progress line per interval until stopped", async () => {
  const lines: string[] = [];
  const log: Log = {
    debug: () => {},
    info: (message) => lines.push(message),
    warn: () => {},
    error: () => {},
  };
  let calls = 0;
  const reporter = reportEvery(log, 10, () => `step ${++calls}`);
  await new Promise((resolve) => setTimeout(resolve, 55));
  reporter.stop();
  const seen = lines.length;
  assert.ok(seen >= 2, `${seen} lines`);
  assert.equal(lines[0], "progress: step 1");
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(lines.length, seen, "nothing after stop");
});
