/**
 * @module
 * What the tests of faults in a compute's processes share, beside the tally
 * and the acknowledged rows of `faults.ts`: a transaction that holds back the
 * spec apply's `CREATE ROLE` until the test lets it go (so a fault can land
 * inside an apply, found in `pg_stat_activity`), the postmaster and its
 * children as they are before a fault, and the check that all of them are
 * gone afterwards (a postmaster's children outlive a SIGKILLed postmaster
 * for a moment, and a manager that exits on a signal leaves Postgres to its
 * own fast shutdown).
 */

import assert from "node:assert/strict";
import pg from "pg";
import type { ComputeHandle } from "../../harness/cluster.ts";
import { childPids, isAlive } from "../../harness/_processes.ts";
import { APPLY_APPLICATION_NAME } from "../../src/postgres/spec_apply.ts";
import { eventually, query } from "../integration/_helpers.ts";
import type { FaultTally } from "./faults.ts";

/**
 * An open transaction that has created `role`: a spec apply creating the same
 * role waits for it (the unique index on role names) until {@link release}.
 */
export class RoleCreationHold implements AsyncDisposable {
  readonly #client: pg.Client;

  private constructor(client: pg.Client) {
    this.#client = client;
  }

  /** Opens the transaction on `url` and creates `role` in it. */
  static async open(url: string, role: string): Promise<RoleCreationHold> {
    const client = new pg.Client({ connectionString: url, application_name: "fault-hold" });
    client.on("error", () => {});
    await client.connect();
    try {
      await client.query("BEGIN");
      await client.query(`CREATE ROLE ${role}`);
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    return new RoleCreationHold(client);
  }

  /** Rolls the transaction back, letting a waiting apply go on; quiet if the server is gone. */
  async release(): Promise<void> {
    await this.#client.query("ROLLBACK").catch(() => {});
    await this.#client.end().catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/**
 * Waits until a session of the spec apply waits for a lock on `url` (which
 * may not accept connections yet: Postgres may still be starting).
 */
export function waitForBlockedApply(url: string): Promise<void> {
  return eventually(async () => {
    const rows = await query(
      url,
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
      [APPLY_APPLICATION_NAME],
    ).catch(() => []);
    return rows.length > 0;
  }, "the spec apply waits for the held lock");
}

/** Waits until the manager's log has `text`. */
export function logged(compute: ComputeHandle, text: string): Promise<void> {
  return eventually(async () => (await compute.readLog()).includes(text), `log: ${text}`);
}

/** The postmaster of `compute` and its children, as the process table shows them now. */
export async function postgresProcesses(compute: ComputeHandle): Promise<number[]> {
  const postmaster = await compute.postmasterPid();
  assert.ok(postmaster !== undefined, `${compute.id}: postmaster.pid exists`);
  return [postmaster, ...await childPids(postmaster)];
}

/** Counts (as `unexpectedStatus`) and fails unless every process of `pids` is gone soon. */
export async function expectGone(tally: FaultTally, pids: readonly number[]): Promise<void> {
  const alive = async () => {
    const left = [];
    for (const pid of pids) if (await isAlive(pid)) left.push(pid);
    return left;
  };
  await tally.check(
    "unexpectedStatus",
    () => eventually(async () => (await alive()).length === 0, `postgres processes ${pids} end`),
  );
}
