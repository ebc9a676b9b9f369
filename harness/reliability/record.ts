/**
 * @module
 * How a reliability test family reports what it tried and what went wrong,
 * for `deno task reliability-report` (docs/reliability.md). A test calls
 * {@link recordFamily} once it has counted; when `RELIABILITY_OUT` names a
 * directory the record is written there as JSON, otherwise nothing happens.
 * `RELIABILITY_LONG=1` asks the families for their long versions
 * ({@link scaled}).
 */

import { join } from "node:path";

/** What one test of a family tried and what it saw go wrong (all counts). */
export interface FamilyRecord {
  /** The family's name as the report shows it, e.g. `bad-input corpus`. */
  family: string;
  /** The test that produced the record (records of one family are summed). */
  test: string;
  /** How many things were tried. */
  tried: number;
  /** What `tried` counts: `inputs`, `faults injected`, `chaos steps`, `requests`… */
  unit: string;
  /** Manager processes that died when they should not have. */
  crashes: number;
  /** Acknowledged rows missing afterwards. */
  rowsLost: number;
  /** Answers (HTTP status, exit code, compute status) other than the expected one. */
  unexpectedStatus: number;
  /** Requests without valid credentials that were served. */
  unauthenticatedSuccesses: number;
  /** Computes left unable to take a valid `/configure` after a bad or failed request. */
  unusableComputes: number;
  /** Secrets found where they must not be (logs, error bodies). */
  secretsLeaked: number;
  /** What else the test measured, in one line (e.g. latency percentiles). */
  observations?: string;
}

/** Whether the long versions were asked for (`RELIABILITY_LONG=1`). */
export function isLong(): boolean {
  return Deno.env.get("RELIABILITY_LONG") === "1";
}

/** `short` in `deno task test`, `long` under `deno task reliability-report`. */
export function scaled(short: number, long: number): number {
  return isLong() ? long : short;
}

/** A record with every failure count at zero, to fill in. */
export function emptyRecord(family: string, test: string, unit: string): FamilyRecord {
  return {
    family,
    test,
    tried: 0,
    unit,
    crashes: 0,
    rowsLost: 0,
    unexpectedStatus: 0,
    unauthenticatedSuccesses: 0,
    unusableComputes: 0,
    secretsLeaked: 0,
  };
}

/** Writes `record` into `RELIABILITY_OUT` when that is set; a no-op otherwise. */
export async function recordFamily(record: FamilyRecord): Promise<void> {
  const dir = Deno.env.get("RELIABILITY_OUT");
  if (!dir) return;
  await Deno.mkdir(dir, { recursive: true });
  const name = `${slug(record.family)}--${slug(record.test)}.json`;
  await Deno.writeTextFile(join(dir, name), JSON.stringify(record, null, 2) + "\n");
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 80);
}
