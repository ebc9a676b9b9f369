/**
 * @module
 * LSN leases against the harness's fake pageservers on loopback sockets: one
 * request (granted, and refused for a tenant that is not attached), then the
 * loop leasing on both shards of a two-pageserver tenant.
 */

import { locatePostgresOnce } from "../../harness/pg_locate.ts";
import assert from "node:assert/strict";
import { startPageserver } from "../../harness/pageserver.ts";
import { createTimelineStore, type TimelineStore } from "../../harness/timeline_store.ts";
import { parseLsn } from "../../src/api/lsn.ts";
import { parseComputeSpecJson, parseSpec } from "../../src/api/parsed_spec.ts";
import { leaseSleepMs, startLsnLeaseLoop } from "../../src/compute/lsn_lease.ts";
import {
  leaseLsn,
  type LeaseLsnRequest,
  LeaseTimeoutError,
  tenantShardId,
} from "../../src/storage/lsn_lease.ts";

const PGBIN = (await locatePostgresOnce()).pgbin;
const TENANT = "0123456789abcdef0123456789abcdef";
const OTHER_TENANT = "ffffffffffffffffffffffffffffffff";
const TIMELINE = "fedcba9876543210fedcba9876543210";
const LSN = parseLsn("0/169AD58");
const LEASE_MS = 5 * 60_000;

/** A store (in its own temp dir) holding TENANT/TIMELINE; closing it removes it. */
async function storeWithTimeline(): Promise<TimelineStore> {
  const dir = await Deno.makeTempDir({ prefix: "lsn-lease-test-store-" });
  await Deno.remove(dir);
  const store = createTimelineStore({ dir, pgbin: PGBIN });
  try {
    await store.createTimeline(TENANT, TIMELINE);
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

Deno.test("leaseLsn against the fake pageserver", async (t) => {
  await using store = await storeWithTimeline();
  await using pageserver = startPageserver({ id: 1, store, leaseDurationMs: LEASE_MS });
  pageserver.attach(TENANT);

  await t.step("an attached tenant gets a lease of the configured length", async () => {
    const before = Date.now();
    const expiry = await leaseLsn(pageserver.libpqUrl, {
      tenantShardId: TENANT,
      timelineId: TIMELINE,
      lsn: LSN,
    });
    assert.ok(expiry instanceof Date);
    assert.ok(expiry.getTime() >= before + LEASE_MS, expiry.toISOString());
    assert.ok(expiry.getTime() <= Date.now() + LEASE_MS, expiry.toISOString());
  });

  await t.step("a sharded tenant id is accepted", async () => {
    const expiry = await leaseLsn(pageserver.libpqUrl, {
      tenantShardId: tenantShardId(TENANT, 1, 2),
      timelineId: TIMELINE,
      lsn: LSN,
    });
    assert.ok(expiry instanceof Date);
  });

  await t.step("a tenant not attached there rejects with the pageserver's text", async () => {
    await assert.rejects(
      leaseLsn(pageserver.libpqUrl, {
        tenantShardId: OTHER_TENANT,
        timelineId: TIMELINE,
        lsn: LSN,
      }),
      (error: Error) => {
        assert.equal(error.message, `Not found: Tenant ${OTHER_TENANT} not found`);
        return true;
      },
    );
  });

  await t.step("an aborted request rejects with the abort reason", async () => {
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await assert.rejects(
      leaseLsn(pageserver.libpqUrl, {
        tenantShardId: TENANT,
        timelineId: TIMELINE,
        lsn: LSN,
        signal: controller.signal,
      }),
      /stop/,
    );
  });
});

/** A TCP server that accepts connections and never says a word; `accepted`: the first came. */
function startSilentServer(): AsyncDisposable & { url: string; accepted: Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepted = Promise.withResolvers<void>();
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      accepted.resolve();
    }
  })();
  return {
    url: `postgresql://no_user@127.0.0.1:${listener.addr.port}`,
    accepted: accepted.promise,
    [Symbol.asyncDispose]: async () => {
      listener.close();
      await accepting.catch(() => {});
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // already closed by the peer
        }
      }
    },
  };
}

Deno.test("leaseLsn against a pageserver that never answers", async (t) => {
  const request = { tenantShardId: TENANT, timelineId: TIMELINE, lsn: LSN };

  await t.step("times out", async () => {
    await using silent = startSilentServer();
    await assert.rejects(
      leaseLsn(silent.url, { ...request, timeoutMs: 100 }),
      (error: Error) => {
        assert.ok(error instanceof LeaseTimeoutError, String(error));
        assert.match(error.message, /did not answer lease lsn within 100 ms/);
        return true;
      },
    );
  });

  await t.step("stops at once when aborted", async () => {
    await using silent = startSilentServer();
    const controller = new AbortController();
    const pending = leaseLsn(silent.url, { ...request, signal: controller.signal });
    await silent.accepted;
    controller.abort(new Error("stop"));
    await assert.rejects(pending, /stop/);
  });
});

Deno.test("the lease loop asks both pageservers of a two-shard tenant", async () => {
  await using store = await storeWithTimeline();
  await using ps1 = startPageserver({ id: 1, store, leaseDurationMs: LEASE_MS });
  await using ps2 = startPageserver({ id: 2, store, leaseDurationMs: 2 * LEASE_MS });
  ps1.attach(TENANT);
  ps2.attach(TENANT);
  const pspec = parseSpec(parseComputeSpecJson({
    format_version: 1.0,
    suspend_timeout_seconds: -1,
    cluster: { roles: [], databases: [] },
    tenant_id: TENANT,
    timeline_id: TIMELINE,
    mode: { Static: "0/169AD58" },
    pageserver_connection_info: {
      shard_count: 2,
      stripe_size: 2048,
      shards: {
        "0002": { pageservers: [{ id: 1, libpq_url: ps1.libpqUrl }] },
        "0102": { pageservers: [{ id: 2, libpq_url: ps2.libpqUrl }] },
      },
    },
  }));

  const calls: { url: string; request: LeaseLsnRequest; expiry: Date | null }[] = [];
  const sleeping = Promise.withResolvers<number>();
  const controller = new AbortController();
  const loop = startLsnLeaseLoop({
    tenantId: TENANT,
    timelineId: TIMELINE,
    lsn: LSN,
    currentSpec: () => pspec,
    signal: controller.signal,
    lease: async (url, request) => {
      const expiry = await leaseLsn(url, request);
      calls.push({ url, request, expiry });
      return expiry;
    },
    sleep: (ms, signal) => {
      sleeping.resolve(ms);
      return new Promise((_, reject) => {
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    },
  });
  try {
    const sleptMs = await sleeping.promise;
    assert.deepEqual(calls.map((call) => [call.url, call.request.tenantShardId]), [
      [ps1.libpqUrl, `${TENANT}-0002`],
      [ps2.libpqUrl, `${TENANT}-0102`],
    ]);
    assert.ok(calls.every((call) => call.expiry instanceof Date));
    // The earliest expiry (ps1's, LEASE_MS from its answer) decides the sleep.
    const first = calls[0].expiry!.getTime();
    assert.ok(sleptMs <= leaseSleepMs(LEASE_MS), String(sleptMs));
    assert.ok(sleptMs >= leaseSleepMs(first - Date.now()), String(sleptMs));
  } finally {
    controller.abort();
    await loop.stopped;
  }
});
