/**
 * @module
 * The table of contents of a dump, as `pg_restore --list` prints it
 * (`3369; 0 16386 TABLE DATA public t1 cloud_admin`), and the list fast_import
 * restores from (`pg_restore --use-list`). It gives the restore its totals
 * (items, and which items are table data) and drops event triggers when the
 * programs are not Neon's patched ones with `--no-event-triggers`: Neon does
 * not import event triggers (only a superuser may create them). Pure.
 */

/** One item of the table of contents. */
export interface TocEntry {
  dumpId: number;
  /** What follows the ids: `TABLE DATA public t1 cloud_admin`, `EVENT TRIGGER - et cloud_admin`, … */
  description: string;
}

/** A parsed list. */
export interface RestoreList {
  entries: TocEntry[];
  /** The list as pg_restore reads it (comment lines kept). */
  text: string;
}

const ENTRY = /^(\d+); \d+ \d+ (.*)$/;

/** The items of `pg_restore --list` output; comment (`;`) and blank lines are not items. */
export function parseRestoreList(text: string): RestoreList {
  const entries: TocEntry[] = [];
  for (const line of text.split("\n")) {
    const match = ENTRY.exec(line.trim());
    if (match) entries.push({ dumpId: Number(match[1]), description: match[2] });
  }
  return { entries, text };
}

/** Whether the item is an event trigger or the comment on one. */
export function isEventTriggerItem(entry: TocEntry): boolean {
  return entry.description.startsWith("EVENT TRIGGER ") ||
    entry.description.startsWith("COMMENT - EVENT TRIGGER ");
}

/** Whether the item is a table's data (a `<dumpId>.dat[.gz]` file of the dump). */
export function isTableData(entry: TocEntry): boolean {
  return entry.description.startsWith("TABLE DATA ");
}

/** `list` without its event triggers (and their comments); `dropped` says which went. */
export function withoutEventTriggers(list: RestoreList): RestoreList & { dropped: TocEntry[] } {
  const dropped = list.entries.filter(isEventTriggerItem);
  if (dropped.length === 0) return { ...list, dropped };
  const droppedIds = new Set(dropped.map((entry) => entry.dumpId));
  const lines = list.text.split("\n").filter((line) => {
    const match = ENTRY.exec(line.trim());
    return !match || !droppedIds.has(Number(match[1]));
  });
  return {
    entries: list.entries.filter((entry) => !droppedIds.has(entry.dumpId)),
    text: lines.join("\n"),
    dropped,
  };
}
