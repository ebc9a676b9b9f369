/**
 * @module
 * Counting for the `validation and recovery` reliability family: each test
 * counts the requests it sends and every answer that was not the expected one
 * while it checks them, records the counts (`harness/reliability/record.ts`),
 * and only then fails if anything went wrong. Also the spec edits those tests
 * share, and the wait for the start-up's background migrations, which change
 * the catalog after `running`.
 */

import assert from "node:assert/strict";
import type { ComputeHandle, JsonObject } from "../../harness/cluster.ts";
import { emptyRecord, type FamilyRecord, recordFamily } from "../../harness/reliability/record.ts";
import { MIGRATIONS } from "../../src/postgres/migrations.ts";
import { eventually, query } from "../integration/_helpers.ts";

/** The family's name in `docs/reliability.md`. */
export const RECOVERY_FAMILY = "validation and recovery";

/** What one test tried and what went wrong, counted while checking. */
export class RecoveryTally {
  readonly record: FamilyRecord;
  readonly #failures: string[] = [];

  constructor(test: string) {
    this.record = emptyRecord(RECOVERY_FAMILY, test, "requests");
  }

  /** Counts one request; a wrong answer is counted and remembered. Returns `ok`. */
  answer(label: string, ok: boolean, detail: string): boolean {
    this.record.tried++;
    if (!ok) {
      this.record.unexpectedStatus++;
      this.#failures.push(`${label}: ${detail}`);
    }
    return ok;
  }

  /** Remembers a failed check that is not an answer (the test fails at the end). */
  fail(label: string, detail: string): void {
    this.#failures.push(`${label}: ${detail}`);
  }

  /** Counts a compute that did not return to `running` after a valid spec. */
  unusable(label: string, detail: string): void {
    this.record.unusableComputes++;
    this.fail(label, detail);
  }

  /** Records the counts, then fails the test if anything went wrong. */
  async finish(): Promise<void> {
    await recordFamily(this.record);
    assert.deepEqual(this.#failures, [], "every request answered as expected");
  }
}

/** The compute's generated spec with `changes` in `cluster` (arrays replace) and `extra` on top. */
export function respec(
  compute: ComputeHandle,
  changes: JsonObject,
  extra: JsonObject = {},
): JsonObject {
  return {
    ...compute.spec,
    ...extra,
    cluster: { ...(compute.spec.cluster as JsonObject), ...changes },
  };
}

/** Waits until the migrations the start-up began in the background are all recorded. */
export async function migrationsRecorded(compute: ComputeHandle): Promise<void> {
  await eventually(async () => {
    const rows = await query<{ id: string }>(
      compute.postgresUrl,
      "SELECT id FROM neon_migration.migration_id WHERE key = 0",
    ).catch(() => []);
    return Number(rows[0]?.id) === MIGRATIONS.length;
  }, "every migration recorded");
}
