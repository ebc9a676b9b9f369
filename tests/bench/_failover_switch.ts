/**
 * @module
 * Pageserver failover through the refresh path: the compute's pageserver is
 * killed, the tenant is moved to the other pageserver as the storage
 * controller would (`migrateTenant` without notifying the compute), and the
 * compute heals by itself: its emulated Neon extension's probe fails and asks
 * the manager for `/refresh_configuration`, the manager re-reads its config
 * and reloads Postgres. Timed from the kill until `/status` says `running`,
 * Postgres's `neon.pageserver_connstring` names the new pageserver and a
 * `SELECT` on a table answers. Then the old pageserver is started again, the
 * tenant moved back (with `/configure`), untimed. Each repetition first
 * awaits one good probe (the extension's back-off doubles while failures
 * continue and resets only on a good probe) and kills at a different phase
 * of the probe cycle.
 */

import pg from "pg";
import type { Cluster, ComputeHandle } from "../../harness/cluster.ts";
import type { NeonExtension } from "../../harness/neon_extension.ts";
import type { Pageserver } from "../../harness/pageserver.ts";
import { sleep } from "../../src/_async.ts";
import { REFRESH_BACKOFF_MS } from "../../src/compute/configurator.ts";
import { namesPageserver, probePhaseOffsetMs } from "./_failover_plan.ts";

/** How often the compute is polled while a failover is timed. */
const POLL_MS = 10;
/** A failover that has not healed after this long fails the benchmark. */
const HEAL_TIMEOUT_MS = 60_000;
const TABLE = "bench_failover";

/** What one failover measured. */
export interface FailoverSample {
  /** Kill of the pageserver until the compute answers through the other one. */
  healedMs: number;
  /** Kill until `neon.pageserver_connstring` named the new pageserver. */
  switchedMs: number;
  /** `/refresh_configuration` requests the extension sent meanwhile. */
  refreshes: number;
}

/**
 * A pageserver failover and its way back, `repetitions` times on `compute`
 * (started with the extension probing every `intervalMs`).
 */
export async function measureFailovers(
  cluster: Cluster,
  compute: ComputeHandle,
  { repetitions, intervalMs, log }: {
    repetitions: number;
    intervalMs: number;
    log: (message: string) => void;
  },
): Promise<FailoverSample[]> {
  const extension = compute.neonExtension;
  if (!extension) throw new Error(`compute ${compute.id} runs without the Neon extension`);
  const [home, other] = cluster.pageservers;
  if (!home || !other) throw new Error("the failover benchmark needs two pageservers");
  await using session = await openSession(compute.postgresUrl);
  await session.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (id int PRIMARY KEY, body text)`);
  await session.query(
    `INSERT INTO ${TABLE} SELECT g, 'row ' || g FROM generate_series(1, 100) g ON CONFLICT DO NOTHING`,
  );
  await waitUntilServed(compute, session, home);
  const samples: FailoverSample[] = [];
  for (let rep = 1; rep <= repetitions; rep++) {
    await waitForHealthyProbe(extension);
    await sleep(probePhaseOffsetMs(rep, repetitions, intervalMs));
    const refreshesBefore = extension.refreshes;
    const started = performance.now();
    await cluster.pageserverAction(home.id, "kill");
    await cluster.migrateTenant(compute.tenantId, other.id, { notify: false });
    const switchedAt = await waitUntilServed(compute, session, other);
    const healedMs = performance.now() - started;
    const refreshes = extension.refreshes - refreshesBefore;
    samples.push({ healedMs, switchedMs: switchedAt - started, refreshes });
    log(
      `failover ${rep}/${repetitions}: healed after ${Math.round(healedMs)} ms ` +
        `(connstring switched after ${Math.round(switchedAt - started)} ms), ` +
        `${refreshes} refresh request(s)`,
    );
    const restoring = extension.refreshes;
    await cluster.pageserverAction(home.id, "start");
    await cluster.migrateTenant(compute.tenantId, home.id, { notify: true });
    await waitUntilServed(compute, session, home);
    // A refresh that raced the move back may have found nothing new: let its back-off pass.
    if (extension.refreshes > restoring) await sleep(REFRESH_BACKOFF_MS);
  }
  return samples;
}

/**
 * Waits for one probe that did not ask for a refresh; without it each
 * repetition would find the extension backing off longer than the last.
 */
async function waitForHealthyProbe(extension: NeonExtension): Promise<void> {
  const deadline = performance.now() + HEAL_TIMEOUT_MS;
  for (;;) {
    const probes = extension.probes;
    const refreshes = extension.refreshes;
    while (extension.probes === probes) {
      if (performance.now() > deadline) throw new Error("the extension's probe never succeeded");
      await sleep(POLL_MS);
    }
    if (extension.refreshes === refreshes) return;
  }
}

/** One connection to the compute, opened again when a query finds it broken. */
interface Session extends AsyncDisposable {
  /** The rows of `sql`, or null when the connection broke (it is reopened for the next call). */
  query<R extends pg.QueryResultRow>(sql: string): Promise<R[] | null>;
}

async function openSession(url: string): Promise<Session> {
  let client: pg.Client | null = await connected(url);
  return {
    async query<R extends pg.QueryResultRow>(sql: string) {
      try {
        client ??= await connected(url);
        return (await client.query<R>(sql)).rows;
      } catch {
        await client?.end().catch(() => {});
        client = null;
        return null;
      }
    },
    [Symbol.asyncDispose]: async () => {
      await client?.end().catch(() => {});
    },
  };
}

/**
 * Polls until Postgres names `pageserver` as shard 0, answers a `SELECT` on
 * the table, and then `/status` says `running`; returns when (performance
 * clock) the connstring first named it.
 */
async function waitUntilServed(
  compute: ComputeHandle,
  session: Session,
  pageserver: Pageserver,
): Promise<number> {
  const deadline = performance.now() + HEAL_TIMEOUT_MS;
  let switchedAt: number | undefined;
  for (;;) {
    if (performance.now() > deadline) {
      throw new Error(
        `compute ${compute.id} did not answer through pageserver ${pageserver.id} within ` +
          `${HEAL_TIMEOUT_MS} ms:\n${(await compute.readLog()).split("\n").slice(-20).join("\n")}`,
      );
    }
    const rows = await session.query<{ connstring: string | null; rows: string }>(
      `SELECT current_setting('neon.pageserver_connstring', true) AS connstring, ` +
        `(SELECT count(*) FROM ${TABLE}) AS rows`,
    );
    if (rows !== null && namesPageserver(rows[0].connstring, pageserver.libpqUrl)) {
      switchedAt ??= performance.now();
      // Asked after the query: a `running` now comes after the reload that switched it.
      const status = await compute.status().catch(() => null);
      if (status?.status === "running") return switchedAt;
    }
    await sleep(POLL_MS);
  }
}

async function connected(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  return client;
}
