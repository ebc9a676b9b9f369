/**
 * `src/compute/postgres_supervisor.ts` with fake processes: a planned restart
 * swaps the process the lifecycle watches instead of ending the compute, and
 * once the compute's Postgres has exited (or was never spawned) no restart can
 * begin, `ended` says so and the maintenance session is closed.
 */

import assert from "node:assert/strict";
import { ConfigurationFailedError } from "../../src/compute/errors.ts";
import { PostgresSupervisor } from "../../src/compute/postgres_supervisor.ts";
import { MaintenanceSessionClosedError } from "../../src/postgres/maintenance_session.ts";
import type { ExitInfo, PostgresProcess } from "../../src/postgres/process.ts";

/** The supervised Postgres's URL: never connected to (the maintenance session is lazy). */
const UNUSED_CONNSTR = "postgresql://cloud_admin@127.0.0.1:1/postgres";

/** Fails unless the supervisor's maintenance session refuses uses: it was closed. */
async function assertSessionClosed(supervisor: PostgresSupervisor): Promise<void> {
  await assert.rejects(
    supervisor.maintenance.use(() => assert.fail("no use may run")),
    MaintenanceSessionClosedError,
  );
}

interface FakeProcess extends PostgresProcess {
  signals: Deno.Signal[];
  exit(info: ExitInfo): void;
}

function fakeProcess(pid: number, { exitOn }: { exitOn?: Deno.Signal } = {}): FakeProcess {
  const exited = Promise.withResolvers<ExitInfo>();
  const signals: Deno.Signal[] = [];
  return {
    pid,
    exited: exited.promise,
    signals,
    kill(signal) {
      signals.push(signal);
      if (signal === exitOn) exited.resolve({ code: 0, signal: null });
    },
    exit: (info) => exited.resolve(info),
  };
}

Deno.test("a restart hands the watch over to the new process", async () => {
  const supervisor = new PostgresSupervisor(UNUSED_CONNSTR);
  const first = fakeProcess(1, { exitOn: "SIGINT" });
  const second = fakeProcess(2);
  supervisor.started(first);
  const finalExit = supervisor.waitForFinalExit(first);
  const steps: string[] = [];
  await supervisor.restart({
    prepare: () => {
      steps.push("prepare");
      return Promise.resolve();
    },
    spawn: () => {
      steps.push("spawn");
      return second;
    },
    waitForReady: (proc) => {
      steps.push(`ready ${proc.pid}`);
      return Promise.resolve();
    },
    signal: new AbortController().signal,
  });
  assert.deepEqual(first.signals, ["SIGINT"]);
  assert.deepEqual(steps, ["prepare", "spawn", "ready 2"]);
  assert.equal(supervisor.current, second);
  assert.equal(supervisor.ended.aborted, false, "a planned restart does not end the compute");

  second.exit({ code: null, signal: "SIGKILL" });
  assert.deepEqual(await finalExit, { code: null, signal: "SIGKILL" });
  assert.equal(supervisor.current, null);
  assert.ok(supervisor.ended.reason instanceof ConfigurationFailedError);
  assert.match(supervisor.ended.reason.message, /postgres exited with signal SIGKILL/);
  await assertSessionClosed(supervisor);
  await assert.rejects(
    supervisor.restart({
      prepare: () => Promise.resolve(),
      spawn: () => assert.fail("nothing may start once the compute's Postgres has ended"),
      waitForReady: () => Promise.resolve(),
      signal: new AbortController().signal,
    }),
    /postgres is not running/,
  );
});

Deno.test("a termination during the restart starts nothing and ends the compute", async () => {
  const supervisor = new PostgresSupervisor(UNUSED_CONNSTR);
  const first = fakeProcess(1, { exitOn: "SIGINT" });
  supervisor.started(first);
  const finalExit = supervisor.waitForFinalExit(first);
  const terminating = new AbortController();
  await assert.rejects(
    supervisor.restart({
      prepare: () => {
        terminating.abort(new Error("compute is terminating"));
        return Promise.resolve();
      },
      spawn: () => assert.fail("a terminated compute must not start Postgres again"),
      waitForReady: () => Promise.resolve(),
      signal: terminating.signal,
    }),
    /compute is terminating/,
  );
  assert.deepEqual(await finalExit, { code: 0, signal: null });
  assert.equal(supervisor.current, null);
});

Deno.test("a start-up that spawned no Postgres ends the compute at once", async () => {
  const supervisor = new PostgresSupervisor(UNUSED_CONNSTR);
  assert.equal(await supervisor.waitForFinalExit(null), null);
  assert.ok(supervisor.ended.reason instanceof ConfigurationFailedError);
  assert.match(supervisor.ended.reason.message, /postgres did not start/);
  await assertSessionClosed(supervisor);
});
