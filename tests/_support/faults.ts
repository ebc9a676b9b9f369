/**
 * @module
 * What the fault-injection tests share. A tally counts while asserting: each
 * check adds to the family record (`harness/reliability/record.ts`) what went
 * wrong before it fails the test, and the record is written when the tally is
 * disposed, after a failure too. The checks every fault ends with: an orderly
 * exit (the expected code, no uncaught error, no process left behind) and
 * every acknowledged row present. And the steps around them: a timeline with
 * acknowledged rows, a compute launched on it, a start that must succeed.
 */

import assert from "node:assert/strict";
import type { Cluster, ComputeHandle, ComputeOptions } from "../../harness/cluster.ts";
import { processesUsing } from "../../harness/_processes.ts";
import { emptyRecord, type FamilyRecord, recordFamily } from "../../harness/reliability/record.ts";
import { query, within } from "../integration/_helpers.ts";
import { ids, insertRows, range } from "./acked_rows.ts";

/** The family the fault-injection tests report under. */
export const FAULT_FAMILY = "fault injection";

/** What their `tried` counts. */
export const FAULT_UNIT = "faults injected";

/** The failure counts a check can add to. */
export type FailureCount = "crashes" | "rowsLost" | "unexpectedStatus" | "unusableComputes";

/** An uncaught error or a stack trace in a manager's log: a crash, not an orderly exit. */
const CRASH_IN_LOG = /error: Uncaught|panicked at|^\s+at .+:\d+:\d+\)?$/m;

/** How long a manager may take to exit once it has decided to. */
const EXIT_TIMEOUT_MS = 60_000;

/** One test's record of the faults it injected and what went wrong. */
export interface FaultTally extends AsyncDisposable {
  readonly record: FamilyRecord;
  /**
   * Counts the faults `source` reports as injected when the tally is disposed
   * (so they are counted even when a check failed first).
   */
  track(source: () => number | Promise<number>): void;
  /** Runs `check`; if it throws, adds one to `failure` and rethrows. Returns its result. */
  check<T>(failure: FailureCount, check: () => T | Promise<T>): Promise<T>;
  /** The ids in `acked` at `url` are exactly `expected`; each one missing is a row lost. */
  expectRows(url: string, expected: readonly number[]): Promise<void>;
  /**
   * The manager exits with `code`, its log shows no crash, and nothing it
   * started is left running. Returns its log.
   */
  expectOrderlyExit(compute: ComputeHandle, code: number): Promise<string>;
}

/**
 * A tally for test `test` (of {@link FAULT_FAMILY}, counting {@link FAULT_UNIT}
 * unless `family` and `unit` say otherwise); dispose it (`await using`) to
 * write the record.
 */
export function faultTally(
  test: string,
  { family = FAULT_FAMILY, unit = FAULT_UNIT }: { family?: string; unit?: string } = {},
): FaultTally {
  const record = emptyRecord(family, test, unit);
  const sources: (() => number | Promise<number>)[] = [];
  const check = async <T>(failure: FailureCount, run: () => T | Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      record[failure] += 1;
      throw error;
    }
  };
  return {
    record,
    track: (source) => void sources.push(source),
    check,
    expectRows: async (url, expected) => {
      const present = new Set(await ids(url));
      record.rowsLost += expected.filter((id) => !present.has(id)).length;
      assert.deepEqual([...present], [...expected], "exactly the acknowledged rows");
    },
    expectOrderlyExit: async (compute, code) => {
      const exitCode = await check(
        "unexpectedStatus",
        () => within(compute.exited, EXIT_TIMEOUT_MS, `compute ${compute.id} exits`),
      );
      const log = await compute.readLog();
      await check("crashes", () => assert.doesNotMatch(log, CRASH_IN_LOG, "a crash in the log"));
      await check(
        "unexpectedStatus",
        () => assert.equal(exitCode, code, `exit code of ${compute.id}`),
      );
      assert.deepEqual(await processesUsing(compute.dir), [], `processes left by ${compute.id}`);
      return log;
    },
    [Symbol.asyncDispose]: async () => {
      for (const source of sources) record.tried += await source();
      await recordFamily(record);
    },
  };
}

/** The timeline a test's computes share. */
export interface Timeline {
  tenantId: string;
  timelineId: string;
}

/** The rows the computes of one test acknowledged, in `acked`. */
export class AckedRows {
  readonly ids: number[] = [];

  /** Writes `count` more rows through `url`, one commit each, and remembers them. */
  async write(url: string, count: number): Promise<void> {
    const from = this.ids.length;
    await insertRows(url, from, count);
    this.ids.push(...range(from, from + count));
  }
}

/** `/terminate` (fast), then the manager's exit (0): the next primary may start. */
export async function terminate(compute: ComputeHandle): Promise<void> {
  const answer = await compute.terminate("fast");
  assert.equal(answer.status, 200, answer.text);
  assert.equal(await within(compute.exited, EXIT_TIMEOUT_MS, "exit after /terminate"), 0);
}

/**
 * A new timeline on which a first compute (`writer`, started from its config
 * file) created `acked`, wrote 20 rows and terminated.
 */
export async function timelineWithRows(
  cluster: Cluster,
  acked: AckedRows,
): Promise<Timeline & { writer: ComputeHandle }> {
  const writer = await cluster.startCompute({ id: "writer" });
  await query(writer.postgresUrl, "CREATE TABLE acked (id int PRIMARY KEY, body text)");
  await acked.write(writer.postgresUrl, 20);
  await terminate(writer);
  return { tenantId: writer.tenantId, timelineId: writer.timelineId, writer };
}

/** Launches a compute on `timeline` and returns without waiting for any status. */
export function launchOn(
  cluster: Cluster,
  timeline: Timeline,
  options: Pick<ComputeOptions, "id" | "env" | "exitDelayMs" | "source">,
): Promise<ComputeHandle> {
  return cluster.startCompute({
    ...options,
    tenantId: timeline.tenantId,
    timelineId: timeline.timelineId,
    waitFor: null,
  });
}

/**
 * A start once the fault is (or will be) gone: `running` with every
 * acknowledged row; then `moreRows` more rows for the next compute to find,
 * `/terminate`, and an orderly exit 0.
 */
export async function expectRunningWithEveryRow(
  tally: FaultTally,
  acked: AckedRows,
  compute: ComputeHandle,
  moreRows: number,
): Promise<void> {
  await tally.check("unusableComputes", () => compute.waitForStatus("running"));
  await tally.expectRows(compute.postgresUrl, acked.ids);
  if (moreRows > 0) await acked.write(compute.postgresUrl, moreRows);
  await terminate(compute);
  await tally.expectOrderlyExit(compute, 0);
}
