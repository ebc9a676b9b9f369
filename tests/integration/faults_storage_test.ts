/**
 * Storage faults injected into the harness's real servers while a real compute
 * starts against them, and what the manager does about each, as Neon's
 * compute_ctl does (reference neon-01 §2.7, §2.8a): a pageserver that refuses
 * connections, breaks off the basebackup tar or ends it with an
 * ErrorResponse (the basebackup is retried, `NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES`
 * times; then `failed` with `failed to get basebackup@<lsn>: …` and exit 1),
 * and safekeepers that never answer `TIMELINE_STATUS` (a minority changes
 * nothing; all of them fail the start with the reason, where Neon's
 * sync-safekeepers would wait forever). Every start after the fault cleared
 * sees every acknowledged row.
 */

import assert from "node:assert/strict";
import { type ComputeHandle, startCluster } from "../../harness/cluster.ts";
import type { BasebackupFault, SafekeeperFault } from "../../harness/faults.ts";
import {
  AckedRows,
  expectRunningWithEveryRow,
  type FaultTally,
  faultTally,
  launchOn,
  timelineWithRows,
} from "../_support/faults.ts";
import { scaled } from "../../harness/reliability/record.ts";
import { eventually } from "./_helpers.ts";

/** For a start expected to fail: long enough to read `failed` from `/status` before the exit. */
const FAILED_EXIT_DELAY_MS = 1_500;

const SILENT: SafekeeperFault = { kind: "silent-timeline-status" };

/** How many basebackup retries a compute's log shows. */
async function basebackupRetries(compute: ComputeHandle): Promise<number> {
  return (await compute.readLog()).match(/basebackup attempt failed; retrying/g)?.length ?? 0;
}

/**
 * A start under a fault that outlasts its retries: `/status` says `failed`
 * with an error matching `error`, then the manager exits 1 without a crash
 * or a process left behind.
 */
async function expectFailedStart(
  tally: FaultTally,
  compute: ComputeHandle,
  error: RegExp,
): Promise<void> {
  const status = await tally.check("unexpectedStatus", () => compute.waitForStatus("failed"));
  await tally.check("unexpectedStatus", () => assert.match(status.error ?? "", error));
  await tally.expectOrderlyExit(compute, 1);
}

Deno.test("a pageserver refusing connections: retried until it is back; refused throughout is failed, exit 1", async () => {
  await using cluster = await startCluster({ pageservers: 1 });
  await using tally = faultTally("pageserver refusing connections at start");
  const acked = new AckedRows();
  const timeline = await timelineWithRows(cluster, acked);
  const [pageserver] = cluster.pageservers;
  await cluster.stopPageserver(pageserver);

  // NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES=1: two attempts, both refused.
  const refused = await launchOn(cluster, timeline, {
    id: "refused",
    env: { NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES: "1" },
    exitDelayMs: FAILED_EXIT_DELAY_MS,
  });
  tally.track(async () => await basebackupRetries(refused) + 1);
  await expectFailedStart(
    tally,
    refused,
    /^failed to get basebackup@[0-9A-F]+\/[0-9A-F]+: connect ECONNREFUSED 127\.0\.0\.1:\d+$/,
  );
  await tally.check(
    "unexpectedStatus",
    async () => assert.equal(await basebackupRetries(refused), 1),
  );

  // The default retries: the pageserver is back after two refused attempts.
  const patient = await launchOn(cluster, timeline, { id: "patient" });
  tally.track(() => basebackupRetries(patient));
  await eventually(
    async () => await basebackupRetries(patient) >= 2,
    "two refused basebackup attempts",
  );
  const waiting = await patient.status();
  await tally.check("unexpectedStatus", () => {
    assert.equal(waiting.status, "init", "still starting between attempts");
    assert.equal(waiting.error, null);
  });
  await pageserver.start();
  await expectRunningWithEveryRow(tally, acked, patient, 0);
});

/**
 * Where the tar breaks off: 64 KiB into it; in the long run also inside the
 * gzip header, at 1 MiB, and after the whole tar where CopyDone belongs.
 */
const DROPS = [
  { bytes: 64 * 1024, where: "after 64 KiB of the tar" },
  { bytes: 100, where: "inside the gzip header" },
  { bytes: 1024 * 1024, where: "after 1 MiB of the tar" },
  { bytes: Number.MAX_SAFE_INTEGER, where: "after the whole tar, before CopyDone" },
].slice(0, scaled(1, 4));

/**
 * Each fault, the error a start gets when every attempt meets it, and for how
 * many attempts it is armed when the start should get past it (a whole tar
 * costs time, so the fault that sends one is armed for fewer).
 */
const BASEBACKUP_FAULTS: readonly {
  name: string;
  fault: BasebackupFault;
  error: RegExp;
  times: number;
}[] = [
  ...DROPS.map(({ bytes, where }) => ({
    name: `dropped ${where}`,
    fault: { kind: "drop-after-bytes", bytes } as const,
    error: /^failed to get basebackup@[0-9A-F]+\/[0-9A-F]+: Connection terminated unexpectedly$/,
    times: 2,
  })),
  {
    name: "an ErrorResponse after the whole tar",
    fault: { kind: "error-after-tar", message: "timeline was deleted while streaming" },
    error: /^failed to get basebackup@[0-9A-F]+\/[0-9A-F]+: timeline was deleted while streaming$/,
    times: 1,
  },
];

Deno.test("a basebackup broken off mid-tar or ended by an ErrorResponse: retried; spoiled throughout is failed, exit 1", async () => {
  await using cluster = await startCluster({ pageservers: 1 });
  await using tally = faultTally("pageserver spoiling the basebackup");
  const acked = new AckedRows();
  const timeline = await timelineWithRows(cluster, acked);
  const { basebackupFault } = cluster.pageservers[0];
  tally.track(() => basebackupFault.injected);

  for (const [index, { name, fault, error, times }] of BASEBACKUP_FAULTS.entries()) {
    // NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES=0: one attempt, spoiled, and failed.
    basebackupFault.arm(fault);
    let before = basebackupFault.injected;
    const spoiled = await launchOn(cluster, timeline, {
      id: `spoiled-${index}`,
      env: { NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES: "0" },
      exitDelayMs: FAILED_EXIT_DELAY_MS,
    });
    await expectFailedStart(tally, spoiled, error);
    basebackupFault.clear();
    const spoiledRetries = await basebackupRetries(spoiled);
    await tally.check("unexpectedStatus", () => {
      assert.equal(basebackupFault.injected - before, 1, `${name}: spoiled attempts`);
      assert.equal(spoiledRetries, 0, `${name}: no retry`);
    });

    // On the first `times` attempts only: the next one is whole and the compute runs.
    basebackupFault.arm(fault, { times });
    before = basebackupFault.injected;
    const recovered = await launchOn(cluster, timeline, { id: `recovered-${index}` });
    const last = index === BASEBACKUP_FAULTS.length - 1;
    await expectRunningWithEveryRow(tally, acked, recovered, last ? 0 : 10);
    const recoveredRetries = await basebackupRetries(recovered);
    await tally.check("unexpectedStatus", () => {
      assert.equal(basebackupFault.injected - before, times, `${name}: spoiled attempts`);
      assert.equal(basebackupFault.armed, null, `${name}: the fault is used up`);
      assert.equal(recoveredRetries, times, `${name}: one retry per spoiled attempt`);
    });
  }
});

Deno.test("safekeepers silent on TIMELINE_STATUS: a minority changes nothing; all of them fail the start, exit 1", async () => {
  await using cluster = await startCluster({ pageservers: 1 });
  await using tally = faultTally("safekeepers silent on TIMELINE_STATUS");
  const { safekeepers } = cluster;
  const sum = (count: (sk: (typeof safekeepers)[number]) => number) =>
    safekeepers.reduce((total, sk) => total + count(sk), 0);
  tally.track(() => sum((sk) => sk.timelineStatusFault.injected));

  // One of three silent while a compute starts, writes and terminates: two are a quorum.
  safekeepers[0].timelineStatusFault.arm(SILENT);
  const acked = new AckedRows();
  const timeline = await timelineWithRows(cluster, acked);
  safekeepers[0].timelineStatusFault.clear();
  const writerLog = await timeline.writer.readLog();
  await tally.check(
    "unexpectedStatus",
    () =>
      assert.match(writerLog, /safekeepers are already synced|answered a repeated quorum check/),
  );

  // All three: no quorum answers however often it asks; /status says so.
  for (const sk of safekeepers) sk.timelineStatusFault.arm(SILENT);
  const unanswered = await launchOn(cluster, timeline, {
    id: "unanswered",
    exitDelayMs: FAILED_EXIT_DELAY_MS,
  });
  const timedOut = "safekeeper 127\\.0\\.0\\.1:\\d+ did not answer TIMELINE_STATUS within 1000 ms";
  await expectFailedStart(
    tally,
    unanswered,
    new RegExp(
      "^safekeepers are not in sync and \\S+ does not support --sync-safekeepers " +
        "\\(vanilla Postgres\\); cannot choose a start LSN: only 0 of 3 safekeepers answered " +
        `TIMELINE_STATUS \\(a quorum is 2\\): ${timedOut}; ${timedOut}$`,
    ),
  );
  for (const sk of safekeepers) sk.timelineStatusFault.clear();
  await eventually(
    () => sum((sk) => sk.silentConnections) === 0,
    "the manager hung up on every silent safekeeper",
  );

  const answered = await launchOn(cluster, timeline, { id: "answered" });
  await expectRunningWithEveryRow(tally, acked, answered, 0);
});
