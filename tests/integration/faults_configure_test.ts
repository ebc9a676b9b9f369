/**
 * Faults while `/configure` applies a spec, on a real compute whose apply is
 * held at its `CREATE ROLE` by a test transaction (so the fault lands inside
 * the apply, found in `pg_stat_activity`), compared with Neon's compute_ctl
 * (neon-01 §3.3, §3.5, §5.2):
 *
 * - Postgres crashes mid-apply: `/configure` is answered 500, the compute
 *   ends in `failed` and the manager exits 1.
 * - SIGTERM to the manager mid-apply: signals forwarded, exit 1 at once, the
 *   waiting `/configure` is cut off rather than left hanging, Postgres stops.
 * - `/terminate` mid-apply: 412 `invalid compute status: configuration`, as in
 *   Neon; once the apply is let go `/configure` gets 200 and `/terminate`
 *   stops Postgres, answers with the LSN, and the manager exits 0.
 *
 * A new compute started from storage afterwards has every acknowledged row.
 *
 * And a `/configure` storm: many specs sent at once, each retried after its
 * 412 until applied. Every request is answered (200 or 412), Postgres's log
 * shows the specs' DDL one spec at a time in the order the 200s came, and the
 * compute ends up with exactly the last spec's roles and settings.
 */

import assert from "node:assert/strict";
import {
  type Cluster,
  type ComputeHandle,
  type HttpResult,
  type JsonObject,
  startCluster,
} from "../../harness/cluster.ts";
import { scaled } from "../../harness/reliability/record.ts";
import { range } from "../_support/acked_rows.ts";
import { AckedRows, type FaultTally, faultTally } from "../_support/faults.ts";
import {
  expectGone,
  postgresProcesses,
  RoleCreationHold,
  waitForBlockedApply,
} from "../_support/process_faults.ts";
import { loggedDdl, logThroughMarker, query, show, within } from "./_helpers.ts";

const NEW_ROLE = "configured_role";

/** A running compute on a new timeline with 20 acknowledged rows in `acked`. */
async function computeWithRows(
  cluster: Cluster,
  acked: AckedRows,
  id: string,
): Promise<ComputeHandle> {
  const compute = await cluster.startCompute({ id });
  await query(compute.postgresUrl, "CREATE TABLE acked (id int PRIMARY KEY, body text)");
  await acked.write(compute.postgresUrl, 20);
  return compute;
}

/** A compute on the timeline of `first`, started from what storage holds, once `running`. */
function successor(cluster: Cluster, first: ComputeHandle): Promise<ComputeHandle> {
  return cluster.startCompute({
    id: "next",
    tenantId: first.tenantId,
    timelineId: first.timelineId,
  });
}

/** `body` with `spec` and the compute's `compute_ctl_config`, for `/configure`. */
async function configureBody(compute: ComputeHandle, spec: JsonObject) {
  return { spec, compute_ctl_config: (await compute.readConfig()).compute_ctl_config };
}

/** The compute's spec plus {@link NEW_ROLE}. */
function specWithNewRole(compute: ComputeHandle): JsonObject {
  const cluster = compute.spec.cluster as JsonObject & { roles: JsonObject[] };
  const roles = [...cluster.roles, { name: NEW_ROLE, encrypted_password: null, options: null }];
  return { ...compute.spec, cluster: { ...cluster, roles } };
}

/** A `/configure` adding {@link NEW_ROLE}, once its apply waits for the hold; not yet answered. */
async function heldConfigure(compute: ComputeHandle): Promise<{ answer: Promise<HttpResult> }> {
  const answer = compute.configure(await configureBody(compute, specWithNewRole(compute)));
  answer.catch(() => {}); // awaited by the caller; a cut-off connection is an outcome
  await waitForBlockedApply(compute.postgresUrl);
  return { answer };
}

/** Whether `role` exists on `url`. */
async function roleExists(url: string, role: string): Promise<boolean> {
  return (await query(url, "SELECT 1 FROM pg_roles WHERE rolname = $1", [role])).length === 1;
}

Deno.test("postgres crashes while /configure applies a spec: 500, failed, exit 1", async () => {
  await using cluster = await startCluster({ pageservers: 1 });
  await using tally = faultTally("postgres crash during /configure");
  const acked = new AckedRows();
  const compute = await computeWithRows(cluster, acked, "crashing");
  await using _hold = await RoleCreationHold.open(compute.postgresUrl, NEW_ROLE);
  const { answer } = await heldConfigure(compute);
  const applying = await compute.status();
  await tally.check("unexpectedStatus", () => assert.equal(applying.status, "configuration"));
  const pids = await postgresProcesses(compute);

  tally.track(() => 1);
  Deno.kill(pids[0], "SIGKILL");
  const configured = await within(answer, 30_000, "/configure is answered");
  await tally.check("unexpectedStatus", () => {
    assert.equal(configured.status, 500, configured.text);
    assert.match(configured.body?.error ?? "", /^compute configuration failed: /);
  });
  await expectGone(tally, pids);
  await tally.expectOrderlyExit(compute, 1);
  await compute.stop(); // already exited: waits until compute.log has everything
  const log = await compute.readLog();
  await tally.check("unexpectedStatus", () => assert.match(log, /from configuration to failed/));

  const next = await successor(cluster, compute);
  await tally.expectRows(next.postgresUrl, acked.ids);
});

Deno.test("SIGTERM to the manager while /configure applies a spec: exit 1 at once", async () => {
  await using cluster = await startCluster({ pageservers: 1 });
  await using tally = faultTally("SIGTERM during /configure");
  const acked = new AckedRows();
  const compute = await computeWithRows(cluster, acked, "signalled");
  await using _hold = await RoleCreationHold.open(compute.postgresUrl, NEW_ROLE);
  const { answer } = await heldConfigure(compute);
  const pids = await postgresProcesses(compute);

  tally.track(() => 1);
  await compute.kill("SIGTERM");
  await expectGone(tally, pids);
  await tally.expectOrderlyExit(compute, 1);
  // Like Neon, the manager exits at once: the waiting request's connection is closed.
  const outcome = await within(
    answer.then((result) => `answered ${result.status}`, () => "connection closed"),
    30_000,
    "/configure settles once the manager has exited",
  );
  await tally.check("unexpectedStatus", () => assert.equal(outcome, "connection closed"));

  const next = await successor(cluster, compute);
  await tally.expectRows(next.postgresUrl, acked.ids);
  const created = await roleExists(next.postgresUrl, NEW_ROLE);
  await tally.check("unexpectedStatus", () => assert.ok(!created, "no half-applied spec"));
});

Deno.test("/terminate while /configure applies a spec: 412, then both succeed, exit 0", async () => {
  await using cluster = await startCluster({ pageservers: 1 });
  await using tally = faultTally("/terminate during /configure");
  const acked = new AckedRows();
  const compute = await computeWithRows(cluster, acked, "terminated");
  const hold = await RoleCreationHold.open(compute.postgresUrl, NEW_ROLE);
  const { answer } = await heldConfigure(compute);

  tally.track(() => 1);
  const refused = await compute.terminate();
  await tally.check("unexpectedStatus", () => {
    assert.deepEqual([refused.status, refused.body], [412, {
      error: "invalid compute status: configuration",
    }]);
  });
  await hold.release();
  const configured = await within(answer, 30_000, "/configure is answered");
  await tally.check("unexpectedStatus", () => {
    assert.deepEqual([configured.status, configured.body?.status], [200, "running"]);
  });
  const terminated = await compute.terminate();
  await tally.check("unexpectedStatus", () => {
    assert.equal(terminated.status, 200, terminated.text);
    assert.equal(typeof terminated.body?.lsn, "string", terminated.text);
  });
  await tally.expectOrderlyExit(compute, 0);

  const next = await successor(cluster, compute);
  await tally.expectRows(next.postgresUrl, acked.ids);
  const created = await roleExists(next.postgresUrl, NEW_ROLE);
  await tally.check("rowsLost", () => assert.ok(created, "the acknowledged apply is kept"));
});

/** The storm's spec `index`: its two roles, the others' roles to drop, its settings. */
function stormSpec(base: JsonObject, index: number, count: number): JsonObject {
  const cluster = base.cluster as JsonObject & { roles: JsonObject[] };
  const own = stormRoles(index).map((name) => ({ name, encrypted_password: null, options: null }));
  const others = range(0, count).filter((other) => other !== index).flatMap(stormRoles);
  return {
    ...base,
    cluster: {
      ...cluster,
      roles: [...cluster.roles, ...own],
      settings: Object.entries(stormSettings(index)).map(([name, value]) => ({
        name,
        value,
        vartype: "string",
      })),
    },
    delta_operations: others.map((name) => ({ action: "delete_role", name })),
  };
}

function stormRoles(index: number): string[] {
  return [`storm_${index}_a`, `storm_${index}_b`];
}

/** Odd sizes in kB, so `SHOW` prints them as written. */
function stormSettings(index: number): Record<string, string> {
  return { work_mem: `${4001 + 2 * index}kB`, maintenance_work_mem: `${65537 + 2 * index}kB` };
}

/**
 * Sends spec `index` until it is applied: after a 412 it tries again once
 * another request has been answered 200 (or at once if one was meanwhile).
 * Every answer must be 200 or 412 `invalid compute status: …`.
 */
async function stormClient(
  compute: ComputeHandle,
  body: unknown,
  tally: FaultTally,
  progress: StormProgress,
): Promise<void> {
  for (;;) {
    const seen = progress.answered;
    progress.requests++;
    const result = await tally.check("unexpectedStatus", () => compute.configure(body));
    if (result.status === 200) return progress.applied();
    await tally.check("unexpectedStatus", () => {
      assert.equal(result.status, 412, result.text);
      assert.match(result.body?.error ?? "", /^invalid compute status: /);
    });
    if (progress.answered === seen) await progress.next;
  }
}

/** What the storm's clients share: requests sent, 200s so far, and the wake-up after each. */
class StormProgress {
  requests = 0;
  answered = 0;
  #next = Promise.withResolvers<void>();

  /** Resolves at the next 200. */
  get next(): Promise<void> {
    return this.#next.promise;
  }

  /** Records a 200 and wakes the clients waiting for one. */
  applied(): void {
    this.answered++;
    this.#next.resolve();
    this.#next = Promise.withResolvers<void>();
  }
}

Deno.test("a /configure storm: every request answered, one spec applied at a time", async () => {
  const specs = scaled(50, 200);
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "stormed", postgresqlConf: ["log_statement = 'all'"] }],
  });
  await using tally = faultTally(`${specs} specs at once`, {
    family: "configure storm",
    unit: "requests",
  });
  const progress = new StormProgress();
  tally.track(() => progress.requests);
  const compute = cluster.compute("stormed");
  const applied: number[] = [];
  await Promise.all(
    range(0, specs).map(async (index) => {
      const body = await configureBody(compute, stormSpec(compute.spec, index, specs));
      await stormClient(compute, body, tally, progress);
      applied.push(index);
    }),
  );

  const { order, interleaved } = applyOrder(loggedDdl(await logThroughMarker(compute)));
  await tally.check("unexpectedStatus", () => {
    assert.deepEqual(interleaved, [], "no two specs' DDL interleaved");
    assert.deepEqual(order, applied, "specs applied in the order their 200s came");
  });
  const last = applied.at(-1)!;
  const roles = await query<{ name: string }>(
    compute.postgresUrl,
    "SELECT rolname AS name FROM pg_roles WHERE rolname LIKE 'storm%' ORDER BY 1",
  );
  const settings: Record<string, string> = {};
  for (const name of Object.keys(stormSettings(last))) {
    settings[name] = await show(compute.postgresUrl, name);
  }
  await tally.check("unexpectedStatus", () => {
    assert.deepEqual(roles.map((row) => row.name), stormRoles(last), "the last spec's roles");
    assert.deepEqual(settings, stormSettings(last), "the last spec's settings");
  });
  const status = await compute.status();
  await tally.check("unusableComputes", () => assert.equal(status.status, "running"));
});

/**
 * The order the storm's specs were applied in, from the DDL Postgres logged,
 * and every sign of two applies interleaved: spec k's two `CREATE ROLE`s must
 * be one run, and the statements that remove k's roles (in the apply of the
 * spec after k) must come after the next run started and before the one after.
 */
function applyOrder(ddl: readonly string[]): { order: number[]; interleaved: string[] } {
  const order: number[] = [];
  const interleaved: string[] = [];
  const creates = new Map<number, number>();
  for (const statement of ddl) {
    const match = /\bstorm_(\d+)_[ab]\b/.exec(statement);
    if (!match) continue;
    const spec = Number(match[1]);
    if (statement.startsWith("CREATE ROLE")) {
      if (order.at(-1) !== spec) {
        if (creates.has(spec)) interleaved.push(`spec ${spec} created again: ${statement}`);
        order.push(spec);
      }
      creates.set(spec, (creates.get(spec) ?? 0) + 1);
    } else if (!creates.has(spec) || order.indexOf(spec) !== order.length - 2) {
      interleaved.push(`spec ${spec}'s roles removed outside the next apply: ${statement}`);
    }
  }
  for (const [spec, count] of creates) {
    if (count !== 2) interleaved.push(`spec ${spec}: ${count} roles created`);
  }
  return { order, interleaved };
}
