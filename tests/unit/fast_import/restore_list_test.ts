/**
 * The restore list: `pg_restore --list` output parsed into items, table-data
 * items recognised, event triggers (and their comments) dropped from the text
 * pg_restore reads back.
 */

import assert from "node:assert/strict";
import {
  isTableData,
  parseRestoreList,
  withoutEventTriggers,
} from "../../../src/fast_import/restore_list.ts";

const LIST = `;
; Archive created at 2026-11-27 13:28:28 UTC
;     dbname: postgres
;
; Selected TOC Entries:
;
6; 2615 16384 SCHEMA - sales cloud_admin
224; 1255 16449 FUNCTION public et_fn() cloud_admin
219; 1259 16403 TABLE odd schema odd table cloud_admin
3372; 0 16403 TABLE DATA odd schema odd table cloud_admin
3369; 0 16386 TABLE DATA public t1 cloud_admin
3383; 0 0 SEQUENCE SET sales orders_id_seq cloud_admin
3218; 3466 16450 EVENT TRIGGER - et_drops cloud_admin
3385; 0 0 COMMENT - EVENT TRIGGER et_drops cloud_admin
3374; 0 16451 MATERIALIZED VIEW DATA sales mv cloud_admin
`;

Deno.test("items are the numbered lines; comments are not", () => {
  const list = parseRestoreList(LIST);
  assert.deepEqual(list.entries.map((entry) => entry.dumpId), [
    6,
    224,
    219,
    3372,
    3369,
    3383,
    3218,
    3385,
    3374,
  ]);
  assert.equal(list.entries[2].description, "TABLE odd schema odd table cloud_admin");
  assert.deepEqual(list.entries.filter(isTableData).map((entry) => entry.dumpId), [3372, 3369]);
});

Deno.test("event triggers and their comments leave the list; the rest stays as it was", () => {
  const filtered = withoutEventTriggers(parseRestoreList(LIST));
  assert.deepEqual(filtered.dropped.map((entry) => entry.dumpId), [3218, 3385]);
  assert.ok(!filtered.text.includes("EVENT TRIGGER"));
  assert.ok(filtered.text.includes("; Selected TOC Entries:"));
  assert.ok(filtered.text.includes("224; 1255 16449 FUNCTION public et_fn() cloud_admin"));
  assert.equal(filtered.entries.length, 7);
  const untouched = withoutEventTriggers(parseRestoreList("6; 2615 16384 SCHEMA - s o\n"));
  assert.deepEqual(untouched.dropped, []);
  assert.equal(untouched.text, "6; 2615 16384 SCHEMA - s o\n");
});
