import assert from "node:assert/strict";
import { parseLsn } from "../../src/api/lsn.ts";
import { parseComputeSpecJson, type ParsedSpec, parseSpec } from "../../src/api/parsed_spec.ts";
import { walSourceChanged } from "../../src/compute/configurator.ts";
import { walSourcePostgres } from "../../src/compute/wal_source.ts";
import {
  announceWalSourceToQuorum,
  walHistoryId,
  walPullCommand,
  WalSourceQuorumError,
  type WalSourceQuorumOptions,
} from "../../src/storage/wal_source.ts";

const A = "127.0.0.1:6501";
const B = "127.0.0.1:6502";
const C = "127.0.0.1:6503";

// ---------------------------------------------------------------------------
// The command text

Deno.test("walPullCommand: every value single-quoted, in the contract's order", () => {
  assert.equal(
    walPullCommand({
      host: "127.0.0.1",
      port: 55432,
      user: "cloud_admin",
      applicationName: "safekeeper_127_0_0_1_6501",
      startLsn: parseLsn("0/169AD58"),
    }),
    "START_WAL_PULL (host '127.0.0.1', port '55432', user 'cloud_admin', " +
      "application_name 'safekeeper_127_0_0_1_6501', start_lsn '0/169AD58')",
  );
});

Deno.test("walPullCommand: a quote inside a value is doubled, nothing else is touched", () => {
  assert.equal(
    walPullCommand({
      host: "/tmp/it's here",
      port: 5432,
      user: "o'brien\\x",
      applicationName: "n",
      startLsn: 0n,
    }),
    "START_WAL_PULL (host '/tmp/it''s here', port '5432', user 'o''brien\\x', " +
      "application_name 'n', start_lsn '0/0')",
  );
  assert.match(
    walPullCommand({ host: "h", port: 1, user: "u", applicationName: "n", startLsn: 2n ** 40n }),
    /start_lsn '100\/0'\)$/,
  );
});

Deno.test("walSourcePostgres: host, port and user from --connstr, with libpq's defaults", () => {
  const from = (connstr: string) => walSourcePostgres({ connstr });
  assert.deepEqual(from("postgresql://cloud_admin@127.0.0.1:55432/postgres"), {
    host: "127.0.0.1",
    port: 55432,
    user: "cloud_admin",
  });
  assert.deepEqual(from("postgres://127.0.0.1/postgres"), {
    host: "127.0.0.1",
    port: 5432,
    user: "cloud_admin",
  });
  assert.deepEqual(from("postgresql://me%40corp@[::1]:6000/postgres"), {
    host: "::1",
    port: 6000,
    user: "me@corp",
  });
});

// ---------------------------------------------------------------------------
// The quorum loop, with the per-safekeeper call injected

const BASE: Omit<WalSourceQuorumOptions, "announce"> = {
  tenantId: "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
  timelineId: "f9e8d7c6b5a40392817160f5e4d3c2b1",
  postgres: { host: "127.0.0.1", port: 55432, user: "cloud_admin" },
  startLsn: parseLsn("0/169AD58"),
  retryBaseDelayMs: 5,
};

/** An attempt that waits for `signal` (as a hanging connection would) and rejects with its reason. */
function hang(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

Deno.test("announceWalSourceToQuorum: all accept", async () => {
  const calls: string[] = [];
  const outcome = await announceWalSourceToQuorum([A, B, C], {
    ...BASE,
    announce: (address) => {
      calls.push(address);
      return Promise.resolve();
    },
  });
  assert.deepEqual(outcome.failed, []);
  assert.deepEqual(outcome.accepted, [A, B, C]);
  assert.deepEqual(calls, [A, B, C], "all three asked at once, each once");
});

Deno.test("announceWalSourceToQuorum: one refuses forever, a quorum still returns at once", async () => {
  let attemptsAtC = 0;
  let inFlightAtC = 0;
  const started = performance.now();
  const outcome = await announceWalSourceToQuorum([A, B, C], {
    ...BASE,
    deadlineMs: 60_000,
    announce: async (address, signal) => {
      if (address !== C) {
        await new Promise((resolve) => setTimeout(resolve, 30));
        return;
      }
      attemptsAtC += 1;
      inFlightAtC += 1;
      try {
        await Promise.race([
          new Promise((resolve) => setTimeout(resolve, 2)),
          hang(signal),
        ]);
        throw new Error("connection refused");
      } finally {
        inFlightAtC -= 1;
      }
    },
  });
  assert.deepEqual(outcome.accepted, [A, B]);
  assert.deepEqual(outcome.failed, [{ address: C, error: "connection refused" }]);
  assert.ok(attemptsAtC >= 2, `C was retried (${attemptsAtC} attempts)`);
  assert.ok(performance.now() - started < 5_000, "did not wait for C or the deadline");
  assert.equal(inFlightAtC, 0, "no attempt left running");
});

Deno.test("announceWalSourceToQuorum: stops a slow safekeeper once the quorum is there", async () => {
  let stoppedWith: unknown;
  const outcome = await announceWalSourceToQuorum([A, B, C], {
    ...BASE,
    announce: async (address, signal) => {
      if (address !== C) return;
      try {
        await hang(signal);
      } catch (reason) {
        stoppedWith = reason;
        throw reason;
      }
    },
  });
  assert.deepEqual(outcome.accepted, [A, B]);
  assert.equal(outcome.failed.length, 1);
  assert.equal(outcome.failed[0].address, C);
  assert.match(outcome.failed[0].error, /quorum accepted before it answered/);
  assert.ok(stoppedWith instanceof Error, "its attempt was aborted, not left hanging");
});

Deno.test("announceWalSourceToQuorum: two of three failing until the deadline throws, naming them", async () => {
  const attempts = new Map<string, number>();
  const started = performance.now();
  const error = await announceWalSourceToQuorum([A, B, C], {
    ...BASE,
    deadlineMs: 150,
    announce: (address) => {
      attempts.set(address, (attempts.get(address) ?? 0) + 1);
      if (address === A) return Promise.resolve();
      return Promise.reject(new Error(address === B ? "connection refused" : "boom"));
    },
  }).then(() => assert.fail("no quorum must throw"), (error: unknown) => error);
  const elapsed = performance.now() - started;
  assert.ok(error instanceof WalSourceQuorumError);
  assert.equal(
    error.message,
    `START_WAL_PULL accepted by 1 of 3 safekeepers, a quorum needs 2; ` +
      `${B}: connection refused; ${C}: boom`,
  );
  assert.deepEqual(error.outcome, {
    accepted: [A],
    failed: [{ address: B, error: "connection refused" }, { address: C, error: "boom" }],
  });
  assert.equal(attempts.get(A), 1, "an accepting safekeeper is not asked again");
  assert.ok((attempts.get(B) ?? 0) >= 3, `B retried: ${attempts.get(B)}`);
  assert.ok(elapsed >= 140 && elapsed < 3_000, `gave up at the deadline (${elapsed} ms)`);
});

Deno.test("announceWalSourceToQuorum: a deadline during the first attempt names the deadline", async () => {
  await assert.rejects(
    announceWalSourceToQuorum([A], {
      ...BASE,
      deadlineMs: 20,
      announce: (_, signal) => hang(signal),
    }),
    (error: unknown) =>
      error instanceof WalSourceQuorumError &&
      error.message.endsWith(`${A}: no answer within the 20 ms deadline`),
  );
});

Deno.test("announceWalSourceToQuorum: abort stops the retries and rejects with the reason", async () => {
  const controller = new AbortController();
  const reason = new Error("terminating");
  let pending = 0;
  const promise = announceWalSourceToQuorum([A, B, C], {
    ...BASE,
    signal: controller.signal,
    announce: async (address, signal) => {
      if (address === A) return;
      pending += 1;
      try {
        await hang(signal);
      } finally {
        pending -= 1;
      }
    },
  });
  setTimeout(() => controller.abort(reason), 20);
  await assert.rejects(promise, (error: unknown) => error === reason);
  assert.equal(pending, 0, "every attempt settled before it returned");

  await assert.rejects(
    announceWalSourceToQuorum([A], {
      ...BASE,
      signal: AbortSignal.abort(reason),
      announce: () => assert.fail("not called once aborted"),
    }),
    (error: unknown) => error === reason,
  );
});

Deno.test("announceWalSourceToQuorum: a quorum reached before an abort is kept", async () => {
  const controller = new AbortController();
  const outcome = await announceWalSourceToQuorum([A], {
    ...BASE,
    signal: controller.signal,
    announce: () => {
      controller.abort(new Error("too late"));
      return Promise.resolve();
    },
  });
  assert.deepEqual(outcome, { accepted: [A], failed: [] });
});

Deno.test("announceWalSourceToQuorum: no safekeepers, nothing to do", async () => {
  assert.deepEqual(
    await announceWalSourceToQuorum([], { ...BASE, announce: () => assert.fail("not called") }),
    { accepted: [], failed: [] },
  );
});

// ---------------------------------------------------------------------------
// When a reconfigure announces again

function spec(mode: unknown, safekeepers: string[]): ParsedSpec {
  return parseSpec(parseComputeSpecJson({
    format_version: 1.0,
    suspend_timeout_seconds: 0,
    cluster: { roles: [], databases: [] },
    tenant_id: BASE.tenantId,
    timeline_id: BASE.timelineId,
    pageserver_connstring: "postgresql://no_user@127.0.0.1:64000",
    safekeeper_connstrings: safekeepers,
    mode,
  }));
}

Deno.test("walSourceChanged: a new set of safekeepers, not a new order", () => {
  const abc = spec("Primary", [A, B, C]);
  assert.equal(walSourceChanged(abc, spec("Primary", [C, A, B])), false, "reordered");
  assert.equal(walSourceChanged(abc, abc), false, "unchanged");
  assert.equal(walSourceChanged(abc, spec("Primary", [A, B])), true, "one removed");
  assert.equal(walSourceChanged(abc, spec("Primary", [A, B, C, "127.0.0.1:6504"])), true);
  assert.equal(walSourceChanged(abc, spec("Primary", [A, B, "127.0.0.1:6504"])), true, "replaced");
});

Deno.test("walSourceChanged: only a primary announces; becoming one does", () => {
  const replica = spec("Replica", [A, B, C]);
  const primary = spec("Primary", [A, B, C]);
  assert.equal(walSourceChanged(primary, replica), false);
  assert.equal(walSourceChanged(primary, spec({ Static: "0/169AD58" }, [A, B, C])), false);
  assert.equal(walSourceChanged(replica, primary), true, "a promoted replica");
  assert.equal(walSourceChanged(undefined, primary), true, "unknown before");
});

Deno.test("walHistoryId: one history per start LSN in this process", () => {
  assert.equal(walHistoryId(0x169AD58n), walHistoryId(0x169AD58n));
  assert.notEqual(walHistoryId(0x169AD58n), walHistoryId(0x169AD60n));
  assert.match(walHistoryId(0x169AD58n), /^[0-9a-f-]{36}@0\/169AD58$/);
});

Deno.test("walPullCommand: instance_id comes last when given", () => {
  assert.equal(
    walPullCommand({
      host: "h",
      port: 1,
      user: "u",
      applicationName: "n",
      startLsn: 16n,
      instanceId: "i'd",
    }),
    "START_WAL_PULL (host 'h', port '1', user 'u', application_name 'n', start_lsn '0/10', " +
      "instance_id 'i''d')",
  );
});
