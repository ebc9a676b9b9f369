/**
 * `/lfc/prewarm`, `/lfc/offload` and `/failpoints` on real computes.
 *
 * Vanilla PostgreSQL has no Local File Cache: prewarm and offload run their
 * real steps (endpoint storage, then the `neon.*` functions) and end `failed`
 * with Postgres's error. SQL stand-ins for the three `neon.*` functions then
 * let the success paths run end to end. Failpoints: `compute-migration` set
 * over HTTP before `/configure`, `compute-prewarm`, `exit`, the 400/412/422
 * answers, and a `FAILPOINTS` value that does not parse.
 */

import assert from "node:assert/strict";
import { zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { type ComputeHandle, startCluster } from "../../harness/cluster.ts";
import { assertRequestId } from "../_support/http.ts";
import { eventually, metricValue, query, within } from "./_helpers.ts";

const TOKEN = "endpoint-storage-token";

/** A fake endpoint storage keeping `lfc_state` objects in memory. */
function startEndpointStorage() {
  const objects = new Map<string, Uint8Array>();
  const requests: { method: string; path: string; authorization: string | null }[] = [];
  let gate: Promise<void> = Promise.resolve();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    requests.push({ method: req.method, path, authorization: req.headers.get("authorization") });
    await gate;
    if (req.method === "PUT") {
      objects.set(path, new Uint8Array(await req.arrayBuffer()));
      return new Response(null, { status: 200 });
    }
    const object = objects.get(path);
    return object === undefined
      ? new Response(null, { status: 404 })
      : new Response(object as Uint8Array<ArrayBuffer>);
  });
  return {
    addr: `127.0.0.1:${server.addr.port}`,
    objects,
    requests,
    hold() {
      let release!: () => void;
      gate = new Promise((resolve) => release = resolve);
      return () => release();
    },
    close: () => server.shutdown(),
  };
}

/** Polls `GET path` until its status is not `busy`; returns the body. */
async function settled(compute: ComputeHandle, path: string, busy: string) {
  let body: { status: string; error?: string } = { status: busy };
  await eventually(async () => {
    const result = await compute.request("GET", path);
    assert.equal(result.status, 200, result.text);
    assertRequestId(result);
    body = result.body;
    return body.status !== busy;
  }, `${path} leaves ${busy}`);
  return body;
}

async function counter(compute: ComputeHandle, name: string): Promise<number | undefined> {
  return metricValue(await compute.metrics(), name);
}

Deno.test("LFC prewarm and offload: vanilla failures, 429, cancel, and the success paths", async () => {
  const storage = startEndpointStorage();
  try {
    await using cluster = await startCluster({
      pageservers: 1,
      computes: [{
        id: "lfc",
        spec: { endpoint_storage_addr: storage.addr, endpoint_storage_token: TOKEN },
      }],
    });
    const compute = cluster.compute("lfc");
    const statePath = (endpoint: string) =>
      `/${compute.tenantId}/${compute.timelineId}/${endpoint}/lfc_state`;

    const initial = await compute.request("GET", "/lfc/prewarm");
    assert.equal(initial.status, 200);
    assert.deepEqual(initial.body, { status: "not_prewarmed" });
    assertRequestId(initial);
    assert.deepEqual((await compute.request("GET", "/lfc/offload")).body, {
      status: "not_offloaded",
    });

    // Nothing saved yet: 404 from endpoint storage → skipped.
    const started = await compute.request("POST", "/lfc/prewarm");
    assert.equal(started.status, 202, started.text);
    assert.equal(started.text, "");
    assertRequestId(started);
    assert.deepEqual(await settled(compute, "/lfc/prewarm", "prewarming"), { status: "skipped" });
    assert.deepEqual(storage.requests.at(-1), {
      method: "GET",
      path: statePath("lfc"),
      authorization: `Bearer ${TOKEN}`,
    });

    // A saved state of another endpoint: downloaded, then vanilla Postgres has no neon schema.
    storage.objects.set(statePath("other"), zstdCompressSync(new Uint8Array([1, 2, 3])));
    assert.equal((await compute.request("POST", "/lfc/prewarm?from_endpoint=other")).status, 202);
    assert.deepEqual(await settled(compute, "/lfc/prewarm", "prewarming"), {
      status: "failed",
      error: "loading LFC state into postgres: function neon.prewarm_local_cache(unknown) " +
        "does not exist",
    });
    assert.equal(await counter(compute, "compute_ctl_lfc_prewarms_total"), 2);
    assert.equal(await counter(compute, "compute_ctl_lfc_prewarm_errors_total"), 1);

    // A query string without from_endpoint: plain-text 400.
    const badQuery = await compute.request("POST", "/lfc/prewarm?x=1");
    assert.equal(badQuery.status, 400);
    assert.equal(
      badQuery.text,
      "Failed to deserialize query string: missing field `from_endpoint`",
    );
    assert.equal(badQuery.headers.get("content-type"), "text/plain; charset=utf-8");

    // 429 while one runs; DELETE cancels it.
    const release = storage.hold();
    assert.equal((await compute.request("POST", "/lfc/prewarm")).status, 202);
    const again = await compute.request("POST", "/lfc/prewarm");
    assert.equal(again.status, 429);
    assert.deepEqual(again.body, { error: "Multiple requests for prewarm are not allowed" });
    assertRequestId(again);
    const cancel = await compute.request("DELETE", "/lfc/prewarm");
    assert.equal(cancel.status, 202);
    assert.equal(cancel.text, "");
    assert.deepEqual(await settled(compute, "/lfc/prewarm", "prewarming"), {
      status: "cancelled",
    });
    release();

    // Offload on vanilla Postgres: the state query fails.
    const offload = await compute.request("POST", "/lfc/offload");
    assert.equal(offload.status, 202, offload.text);
    assert.equal(offload.text, "");
    assert.deepEqual(await settled(compute, "/lfc/offload", "offloading"), {
      status: "failed",
      error: "querying LFC state: function neon.get_local_cache_state() does not exist",
    });
    assert.equal(await counter(compute, "compute_ctl_lfc_offloads_total"), 1);
    assert.equal(await counter(compute, "compute_ctl_lfc_offload_errors_total"), 1);

    // SQL stand-ins for the Neon extension's LFC functions: the success paths.
    await query(
      compute.postgresUrl,
      `CREATE SCHEMA IF NOT EXISTS neon;
       CREATE TABLE neon.loaded (state bytea);
       CREATE FUNCTION neon.get_local_cache_state() RETURNS bytea LANGUAGE sql
         AS $$ SELECT pg_sleep(1); SELECT '\\x0a0b0c'::bytea $$;
       CREATE FUNCTION neon.prewarm_local_cache(state bytea) RETURNS void LANGUAGE plpgsql
         AS $$ BEGIN
           IF length(state) = 1 THEN PERFORM pg_sleep(60); END IF;
           INSERT INTO neon.loaded VALUES (state);
         END $$;
       CREATE FUNCTION neon.get_prewarm_info(OUT total int, OUT prewarmed int, OUT skipped int)
         LANGUAGE sql AS $$ SELECT 10, 7, 3 $$;`,
    );
    assert.equal((await compute.request("POST", "/lfc/offload")).status, 202);
    const busy = await compute.request("POST", "/lfc/offload");
    assert.equal(busy.status, 429);
    assert.deepEqual(busy.body, { error: "Multiple requests for prewarm offload are not allowed" });
    const offloaded = await settled(compute, "/lfc/offload", "offloading");
    assert.equal(offloaded.status, "completed", JSON.stringify(offloaded));
    assert.deepEqual(Object.keys(offloaded).sort(), [
      "compress_time_ms",
      "state_query_time_ms",
      "state_upload_time_ms",
      "status",
    ]);
    const uploaded = storage.objects.get(statePath("lfc"));
    assert.ok(uploaded, "the state was PUT to endpoint storage");
    assert.deepEqual([...zstdDecompressSync(uploaded)], [0x0a, 0x0b, 0x0c]);

    assert.equal((await compute.request("POST", "/lfc/prewarm")).status, 202);
    const prewarmed = await settled(compute, "/lfc/prewarm", "prewarming");
    assert.equal(prewarmed.status, "completed", JSON.stringify(prewarmed));
    assert.deepEqual({
      ...prewarmed,
      state_download_time_ms: 0,
      uncompress_time_ms: 0,
      prewarm_time_ms: 0,
    }, {
      status: "completed",
      total: 10,
      prewarmed: 7,
      skipped: 3,
      state_download_time_ms: 0,
      uncompress_time_ms: 0,
      prewarm_time_ms: 0,
    });
    const [{ n }] = await query<{ n: number }>(
      compute.postgresUrl,
      "SELECT count(*)::int AS n FROM neon.loaded WHERE state = '\\x0a0b0c'",
    );
    assert.equal(n, 1);

    // Cancelling a running load cancels the query in Postgres.
    storage.objects.set(statePath("slow"), zstdCompressSync(new Uint8Array([9])));
    assert.equal((await compute.request("POST", "/lfc/prewarm?from_endpoint=slow")).status, 202);
    await eventually(async () => {
      const rows = await query(
        compute.postgresUrl,
        "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'select neon.prewarm_local_cache%'",
      );
      return rows.length > 0;
    }, "the slow prewarm query runs");
    assert.equal((await compute.request("DELETE", "/lfc/prewarm")).status, 202);
    assert.deepEqual(
      await within(settled(compute, "/lfc/prewarm", "prewarming"), 10_000, "cancel"),
      {
        status: "cancelled",
      },
    );
  } finally {
    await storage.close();
  }
});

Deno.test("failpoints: 412 without the flag, 400/422, migration and prewarm failpoints, exit", async () => {
  const storage = startEndpointStorage();
  try {
    await using cluster = await startCluster({
      pageservers: 1,
      computes: [
        { id: "fp", empty: true, extraArgs: ["--enable-failpoints"] },
        { id: "fp-off", empty: true },
      ],
    });
    const compute = cluster.compute("fp");
    const failpoints = (body: unknown, target = compute) =>
      target.request("POST", "/failpoints", { internal: true, body });

    const off = await failpoints(
      [{ name: "compute-migration", actions: "return(3)" }],
      cluster.compute("fp-off"),
    );
    assert.equal(off.status, 412, off.text);
    assert.deepEqual(off.body, {
      error: "Cannot manage failpoints because neon was compiled without failpoints support",
    });
    assertRequestId(off);

    const invalid = await failpoints([{ name: "compute-prewarm", actions: "bogus" }]);
    assert.equal(invalid.status, 400, invalid.text);
    assert.deepEqual(invalid.body, {
      error: 'failed to configure failpoints: unrecognized command "bogus"',
    });
    const wrongKey = await failpoints([{ name: "compute-prewarm", action: "return" }]);
    assert.equal(wrongKey.status, 422, wrongKey.text);
    assert.match(
      wrongKey.body.error,
      /^failed to deserialize the json body into the target type: /,
    );

    const set = await failpoints([
      { name: "compute-migration", actions: "return(3)" },
      { name: "compute-prewarm", actions: "return" },
    ]);
    assert.equal(set.status, 200, set.text);
    assert.equal(set.text, "");
    assertRequestId(set);

    // Configured at run time, read when the migrations start: migration 3 fails.
    const configured = await compute.configure({
      spec: { ...compute.spec, endpoint_storage_addr: storage.addr, endpoint_storage_token: TOKEN },
      compute_ctl_config: (await compute.readConfig()).compute_ctl_config,
    });
    assert.equal(configured.status, 200, configured.text);
    await eventually(
      async () =>
        metricValue(await compute.metrics(), "compute_ctl_db_migration_failed_total", {
          migration_id: "3",
        }) === 1,
      "migration 3 fails",
    );
    const [{ id }] = await query<{ id: string }>(
      compute.postgresUrl,
      "SELECT id FROM neon_migration.migration_id",
    );
    assert.equal(Number(id), 2);

    assert.equal((await compute.request("POST", "/lfc/prewarm")).status, 202);
    assert.deepEqual(await settled(compute, "/lfc/prewarm", "prewarming"), {
      status: "failed",
      error: "compute-prewarm failpoint",
    });
    assert.equal(storage.requests.length, 0, "the failpoint fires before endpoint storage");

    // `exit`: the manager ends with code 1 when the failpoint is reached.
    assert.equal((await failpoints([{ name: "compute-prewarm", actions: "exit" }])).status, 200);
    await compute.request("POST", "/lfc/prewarm").catch(() => undefined);
    assert.equal(await within(compute.exited, 30_000, "exit by failpoint"), 1);
  } finally {
    await storage.close();
  }
});

Deno.test("FAILPOINTS: applied at start; a value that does not parse stops the manager", async () => {
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "fp-env", env: { FAILPOINTS: "compute-migration=return(2)" } }],
  });
  const compute = cluster.compute("fp-env");
  await eventually(
    async () =>
      metricValue(await compute.metrics(), "compute_ctl_db_migration_failed_total", {
        migration_id: "2",
      }) === 1,
    "migration 2 fails",
  );

  const broken = await cluster.startCompute({
    id: "fp-broken",
    empty: true,
    env: { FAILPOINTS: "compute-migration=explode" },
    waitFor: null,
  });
  // `stop()` after the exit only waits until compute.log has everything the manager wrote.
  assert.equal(await within(broken.exited, 30_000, "manager exit"), 1);
  assert.equal(await broken.stop(), 1);
  assert.match(
    await broken.readLog(),
    /unable to configure failpoint "compute-migration": unrecognized command "explode"/,
  );
});
