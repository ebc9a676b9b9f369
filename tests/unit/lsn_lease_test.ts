/**
 * @module
 * The LSN lease loop without sockets: the pure helpers, then the loop driven
 * by a fake lease function and a fake sleep that the tests release by hand.
 */

import type { LogRecord } from "@logtape/logtape";
import assert from "node:assert/strict";
import { parseLsn } from "../../src/api/lsn.ts";
import { parseComputeSpecJson, type ParsedSpec, parseSpec } from "../../src/api/parsed_spec.ts";
import {
  leaseRetryDelayMs,
  leaseSleepMs,
  leaseTargets,
  type LsnLeaseLoop,
  startLsnLeaseLoop,
} from "../../src/compute/lsn_lease.ts";
import { setupLogging } from "../../src/log.ts";
import {
  leaseLsnCommand,
  type LeaseLsnRequest,
  tenantShardId,
} from "../../src/storage/lsn_lease.ts";

const records: LogRecord[] = [];
setupLogging({ level: "info", sink: (record) => records.push(record) });

const TENANT = "b0554b632bd4d547a63b86c3630317e8";
const TIMELINE = "2414a61ffc94e428f14b5758fe308e13";
const LSN = parseLsn("0/169AD58");
const NOW = 1_700_000_000_000;
const MINUTE = 60_000;

/** A Static spec whose shards (index key → pageserver URLs) are given. */
function staticSpec(
  shardCount: number,
  shards: Record<string, string[]>,
  token = "token-1",
): ParsedSpec {
  return parseSpec(parseComputeSpecJson({
    format_version: 1.0,
    suspend_timeout_seconds: -1,
    cluster: { roles: [], databases: [] },
    tenant_id: TENANT,
    timeline_id: TIMELINE,
    mode: { Static: "0/169AD58" },
    storage_auth_token: token,
    pageserver_connection_info: {
      shard_count: shardCount,
      stripe_size: shardCount === 0 ? null : 2048,
      shards: Object.fromEntries(
        Object.entries(shards).map(([key, urls]) => [key, {
          pageservers: urls.map((url, id) => ({ id, libpq_url: url })),
        }]),
      ),
    },
  }));
}

const TWO_SHARDS = staticSpec(2, {
  "0002": ["postgresql://no_user@ps1:6400", "postgresql://no_user@ps2:6400"],
  "0102": ["postgresql://no_user@ps3:6400", "postgresql://no_user@ps4:6400"],
});

/** Items handed over one at a time: `next()` waits for the next `push`. */
class Queue<T> {
  #items: T[] = [];
  #waiters: ((item: T) => void)[] = [];
  push(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }
  next(): Promise<T> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  get pending(): number {
    return this.#items.length;
  }
}

/** One call of the fake sleep: its length, its signal, and a way to let it end. */
interface SleepCall {
  ms: number;
  signal: AbortSignal;
  finish(): void;
}

/** One call of the fake lease, answered by the test. */
interface LeaseCall {
  url: string;
  request: LeaseLsnRequest;
  answer(expiry: Date | null): void;
  fail(error: Error): void;
}

/** A loop on fakes: every sleep and every lease request waits for the test. */
function fakeLoop(initial: ParsedSpec) {
  const controller = new AbortController();
  const sleeps = new Queue<SleepCall>();
  const leases = new Queue<LeaseCall>();
  const aborted = new Queue<string>();
  let spec = initial;
  const loop: LsnLeaseLoop = startLsnLeaseLoop({
    tenantId: TENANT,
    timelineId: TIMELINE,
    lsn: LSN,
    currentSpec: () => spec,
    signal: controller.signal,
    now: () => NOW,
    lease: (url, request) =>
      new Promise((resolve, reject) => {
        const onAbort = () => {
          aborted.push(`lease ${url}`);
          reject(request.signal?.reason);
        };
        request.signal?.addEventListener("abort", onAbort, { once: true });
        const settle = () => request.signal?.removeEventListener("abort", onAbort);
        leases.push({
          url,
          request,
          answer: (expiry) => {
            settle();
            resolve(expiry);
          },
          fail: (error) => {
            settle();
            reject(error);
          },
        });
      }),
    sleep: (ms, signal) =>
      new Promise((resolve, reject) => {
        const onAbort = () => {
          aborted.push(`sleep ${ms}`);
          reject(signal.reason);
        };
        signal.addEventListener("abort", onAbort, { once: true });
        const finish = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
        sleeps.push({ ms, signal, finish });
      }),
  });
  return {
    loop,
    controller,
    sleeps,
    leases,
    aborted,
    setSpec(next: ParsedSpec) {
      spec = next;
      loop.notifySpecChanged();
    },
    /** Answers the next `count` lease requests with `answer(url)` and returns them. */
    async answerRound(count: number, answer: (url: string) => Date | null): Promise<LeaseCall[]> {
      const calls: LeaseCall[] = [];
      for (let i = 0; i < count; i++) {
        const call = await leases.next();
        calls.push(call);
        call.answer(answer(call.url));
      }
      return calls;
    },
  };
}

const warnings = () => records.filter((r) => r.level === "warning").map((r) => r.message.join(""));

// ---------------------------------------------------------------------------
// Pure helpers

Deno.test("tenantShardId: bare tenant when unsharded, else -NNCC in lower-case hex", () => {
  assert.equal(tenantShardId(TENANT, 0, 0), TENANT);
  assert.equal(tenantShardId(TENANT, 0, 1), `${TENANT}-0001`);
  assert.equal(tenantShardId(TENANT, 1, 2), `${TENANT}-0102`);
  assert.equal(tenantShardId(TENANT, 10, 16), `${TENANT}-0a10`);
  assert.equal(tenantShardId(TENANT, 255, 255), `${TENANT}-ffff`);
});

Deno.test("leaseLsnCommand is compute_ctl's query, trailing space included", () => {
  assert.equal(
    leaseLsnCommand({ tenantShardId: `${TENANT}-0102`, timelineId: TIMELINE, lsn: LSN }),
    `lease lsn ${TENANT}-0102 ${TIMELINE} 0/169AD58 `,
  );
});

Deno.test("leaseSleepMs: 60 s before expiry, but at least half the validity", () => {
  assert.equal(leaseSleepMs(10 * MINUTE), 9 * MINUTE);
  assert.equal(leaseSleepMs(2 * MINUTE), MINUTE);
  assert.equal(leaseSleepMs(100_000), 50_000);
  assert.equal(leaseSleepMs(1_000), 500);
  assert.equal(leaseSleepMs(0), 0);
  assert.equal(leaseSleepMs(-5_000), 0, "an already expired lease is renewed at once");
});

Deno.test("leaseRetryDelayMs: 500 ms × 1.5ⁿ, truncated, capped at 60 s", () => {
  assert.deepEqual(
    Array.from({ length: 15 }, (_, attempt) => leaseRetryDelayMs(attempt)),
    [500, 750, 1125, 1687, 2531, 3796, 5695, 8542, 12814, 19221, 28832, 43248, 60000, 60000, 60000],
  );
});

Deno.test("leaseTargets: every pageserver of every shard, shard id from the index key", () => {
  assert.deepEqual(leaseTargets(TENANT, TWO_SHARDS.pageserverConnInfo), [
    { libpqUrl: "postgresql://no_user@ps1:6400", tenantShardId: `${TENANT}-0002` },
    { libpqUrl: "postgresql://no_user@ps2:6400", tenantShardId: `${TENANT}-0002` },
    { libpqUrl: "postgresql://no_user@ps3:6400", tenantShardId: `${TENANT}-0102` },
    { libpqUrl: "postgresql://no_user@ps4:6400", tenantShardId: `${TENANT}-0102` },
  ]);
  const unsharded = staticSpec(0, { "0000": ["postgresql://no_user@ps1:6400"] });
  assert.deepEqual(leaseTargets(TENANT, unsharded.pageserverConnInfo), [
    { libpqUrl: "postgresql://no_user@ps1:6400", tenantShardId: TENANT },
  ]);
});

Deno.test("leaseTargets refuses gRPC-only pageservers and an empty shard map", () => {
  const grpcOnly = {
    shard_count: 0,
    shards: { "0000": { pageservers: [{ grpc_url: "grpc://ps1:6401" }] } },
    prefer_protocol: "grpc" as const,
  };
  assert.throws(() => leaseTargets(TENANT, grpcOnly), /without libpq_url/);
  const empty = { shard_count: 0, shards: {}, prefer_protocol: "libpq" as const };
  assert.throws(() => leaseTargets(TENANT, empty), /no pageserver/);
});

// ---------------------------------------------------------------------------
// The loop

Deno.test("loop: asks every pageserver of every shard and sleeps on the earliest expiry", async () => {
  const fake = fakeLoop(TWO_SHARDS);
  const expiries: Record<string, number> = {
    "postgresql://no_user@ps1:6400": NOW + 10 * MINUTE,
    "postgresql://no_user@ps2:6400": NOW + 4 * MINUTE,
    "postgresql://no_user@ps3:6400": NOW + 8 * MINUTE,
    "postgresql://no_user@ps4:6400": NOW + 6 * MINUTE,
  };
  try {
    const calls = await fake.answerRound(4, (url) => new Date(expiries[url]));
    assert.deepEqual(calls.map((call) => [call.url, call.request.tenantShardId]), [
      ["postgresql://no_user@ps1:6400", `${TENANT}-0002`],
      ["postgresql://no_user@ps2:6400", `${TENANT}-0002`],
      ["postgresql://no_user@ps3:6400", `${TENANT}-0102`],
      ["postgresql://no_user@ps4:6400", `${TENANT}-0102`],
    ]);
    for (const { request } of calls) {
      assert.equal(request.timelineId, TIMELINE);
      assert.equal(request.lsn, LSN);
      assert.equal(request.authToken, "token-1");
    }
    const sleep = await fake.sleeps.next();
    assert.equal(sleep.ms, 3 * MINUTE, "4 min lease (the earliest): sleep max(4−1, 4/2) min");

    sleep.finish();
    await fake.answerRound(4, () => new Date(NOW + 10 * MINUTE));
    assert.equal((await fake.sleeps.next()).ms, 9 * MINUTE, "renewed after the sleep");
  } finally {
    fake.controller.abort();
    await fake.loop.stopped;
  }
});

Deno.test("loop: a refusal ends it with a warning, after asking the others", async () => {
  const fake = fakeLoop(TWO_SHARDS);
  const before = warnings().length;
  const calls = await fake.answerRound(
    4,
    (url) => url.includes("ps2") ? null : new Date(NOW + 10 * MINUTE),
  );
  await fake.loop.stopped;
  assert.equal(calls.length, 4);
  assert.equal(fake.sleeps.pending, 0, "no sleep after a refusal");
  assert.equal(fake.leases.pending, 0, "no request after a refusal");
  const logged = warnings().slice(before);
  assert.equal(logged.length, 1, logged.join("\n"));
  assert.match(logged[0], /Permanent error: .*LSN is behind the GC cutoff/);
  assert.equal(fake.controller.signal.aborted, false, "ended on its own");
});

Deno.test("loop: failures are retried with 500 ms × 1.5ⁿ back-off, reset after a success", async () => {
  const single = staticSpec(0, { "0000": ["postgresql://no_user@ps1:6400"] });
  const fake = fakeLoop(single);
  const before = warnings().length;
  try {
    const delays: number[] = [];
    for (let attempt = 0; attempt < 14; attempt++) {
      (await fake.leases.next()).fail(new Error("connection refused"));
      const sleep = await fake.sleeps.next();
      delays.push(sleep.ms);
      sleep.finish();
    }
    assert.deepEqual(delays, [
      500,
      750,
      1125,
      1687,
      2531,
      3796,
      5695,
      8542,
      12814,
      19221,
      28832,
      43248,
      60000,
      60000,
    ]);
    const logged = warnings().slice(before);
    assert.equal(logged.length, 14);
    assert.match(
      logged[0],
      new RegExp(
        `postgresql://no_user@ps1:6400 \\(${TENANT}\\): connection refused \\(attempt 0\\)`,
      ),
    );
    assert.match(logged[13], /\(attempt 13\)$/);

    await fake.answerRound(1, () => new Date(NOW + 10 * MINUTE));
    const renew = await fake.sleeps.next();
    assert.equal(renew.ms, 9 * MINUTE);
    renew.finish();
    (await fake.leases.next()).fail(new Error("connection reset"));
    assert.equal((await fake.sleeps.next()).ms, 500, "the back-off starts over");
  } finally {
    fake.controller.abort();
    await fake.loop.stopped;
  }
});

Deno.test("loop: a server error is retried like a transport error", async () => {
  const single = staticSpec(0, { "0000": ["postgresql://no_user@ps1:6400"] });
  const fake = fakeLoop(single);
  try {
    (await fake.leases.next()).fail(new Error(`Not found: Tenant ${TENANT} not found`));
    const sleep = await fake.sleeps.next();
    assert.equal(sleep.ms, 500);
    sleep.finish();
    await fake.answerRound(1, () => new Date(NOW + 10 * MINUTE));
    assert.equal((await fake.sleeps.next()).ms, 9 * MINUTE);
  } finally {
    fake.controller.abort();
    await fake.loop.stopped;
  }
});

Deno.test("loop: a pageserver change wakes the sleep; the next round uses the new spec", async () => {
  const fake = fakeLoop(staticSpec(0, { "0000": ["postgresql://no_user@old:6400"] }));
  try {
    await fake.answerRound(1, () => new Date(NOW + 10 * MINUTE));
    const sleep = await fake.sleeps.next();

    // A new spec with the same pageservers (only the token differs) does not wake it.
    fake.setSpec(staticSpec(0, { "0000": ["postgresql://no_user@old:6400"] }, "token-2"));
    assert.equal(sleep.signal.aborted, false);

    fake.setSpec(staticSpec(2, {
      "0002": ["postgresql://no_user@new1:6400"],
      "0102": ["postgresql://no_user@new2:6400"],
    }, "token-3"));
    assert.equal(sleep.signal.aborted, true, "woken early");
    assert.equal(fake.controller.signal.aborted, false);

    const calls = await fake.answerRound(2, () => new Date(NOW + 2 * MINUTE));
    assert.deepEqual(calls.map((call) => [call.url, call.request.tenantShardId]), [
      ["postgresql://no_user@new1:6400", `${TENANT}-0002`],
      ["postgresql://no_user@new2:6400", `${TENANT}-0102`],
    ]);
    assert.deepEqual(calls.map((call) => call.request.authToken), ["token-3", "token-3"]);
    assert.equal((await fake.sleeps.next()).ms, MINUTE);
  } finally {
    fake.controller.abort();
    await fake.loop.stopped;
  }
});

Deno.test("loop: a pageserver change during a round skips the following wait", async () => {
  const fake = fakeLoop(staticSpec(0, { "0000": ["postgresql://no_user@old:6400"] }));
  try {
    const call = await fake.leases.next();
    fake.setSpec(staticSpec(0, { "0000": ["postgresql://no_user@new:6400"] }));
    call.answer(new Date(NOW + 10 * MINUTE));
    const next = await fake.leases.next();
    assert.equal(next.url, "postgresql://no_user@new:6400");
    assert.equal(fake.sleeps.pending, 0, "no sleep in between");
  } finally {
    fake.controller.abort();
    await fake.loop.stopped;
  }
});

Deno.test("loop: a change also cuts a back-off wait short", async () => {
  const fake = fakeLoop(staticSpec(0, { "0000": ["postgresql://no_user@old:6400"] }));
  try {
    (await fake.leases.next()).fail(new Error("connection refused"));
    const backoff = await fake.sleeps.next();
    fake.setSpec(staticSpec(0, { "0000": ["postgresql://no_user@new:6400"] }));
    assert.equal(backoff.signal.aborted, true);
    assert.equal((await fake.leases.next()).url, "postgresql://no_user@new:6400");
  } finally {
    fake.controller.abort();
    await fake.loop.stopped;
  }
});

Deno.test("loop: abort stops it while sleeping", async () => {
  const fake = fakeLoop(TWO_SHARDS);
  await fake.answerRound(4, () => new Date(NOW + 10 * MINUTE));
  const sleep = await fake.sleeps.next();
  fake.controller.abort();
  await fake.loop.stopped;
  assert.equal(sleep.signal.aborted, true);
  assert.equal(await fake.aborted.next(), `sleep ${9 * MINUTE}`);
  assert.equal(fake.leases.pending, 0);
});

Deno.test("loop: abort cancels a lease request in flight", async () => {
  const fake = fakeLoop(TWO_SHARDS);
  const call = await fake.leases.next();
  fake.controller.abort();
  await fake.loop.stopped;
  assert.equal(call.request.signal?.aborted, true);
  assert.equal(await fake.aborted.next(), "lease postgresql://no_user@ps1:6400");
  assert.equal(fake.leases.pending, 0, "no further pageserver asked");
  assert.equal(fake.sleeps.pending, 0);
});
