/**
 * The pure and in-memory parts of the extension server, LFC jobs and
 * promotion: check order, de-duplication, state machines and single flight,
 * with fakes for downloads, endpoint storage and Postgres.
 */

import assert from "node:assert/strict";
import { zstdCompressSync } from "node:zlib";
import { parseComputeSpecJson, type ParsedSpec, parseSpec } from "../../src/api/parsed_spec.ts";
import {
  ExtensionServer,
  ExtensionServerError,
  KeyedSingleFlight,
} from "../../src/compute/extension_server.ts";
import { FailpointRegistry } from "../../src/compute/failpoints.ts";
import { Lfc, lfcStateLocation } from "../../src/compute/lfc.ts";
import { Promoter } from "../../src/compute/promote.ts";
import type { ExtensionDownloadRequest } from "../../src/storage/extension_store.ts";
import { parseFromEndpoint } from "../../src/http/routes/lfc_prewarm.ts";
import { parseIsLibrary } from "../../src/http/routes/extension_server.ts";
import { HttpError } from "../../src/http/errors.ts";

const TENANT = "b0554b632bd4d547a63b86c3630317e8";
const TIMELINE = "2414a61ffc94e428f14b5758fe308e13";
/** Nothing listens here: connecting fails at once. */
const DEAD_CONNSTR = "postgresql://cloud_admin@127.0.0.1:1/postgres";

function pspec(overrides: Record<string, unknown> = {}): ParsedSpec {
  return parseSpec(parseComputeSpecJson({
    format_version: 1.0,
    suspend_timeout_seconds: -1,
    cluster: { roles: [], databases: [] },
    tenant_id: TENANT,
    timeline_id: TIMELINE,
    endpoint_id: "ep-one",
    pageserver_connstring: "postgresql://no_user@127.0.0.1:6400",
    safekeeper_connstrings: ["127.0.0.1:6501"],
    ...overrides,
  }));
}

const REMOTE = {
  public_extensions: ["pg_trgm"],
  custom_extensions: null,
  library_index: { pg_trgm: "pg_trgm" },
  extension_data: { pg_trgm: { control_data: {}, archive_path: "" } },
};

function deferred<T = void>() {
  return Promise.withResolvers<T>();
}

Deno.test("keyed single flight: one run per key, shared result, retry after failure", async () => {
  const flights = new KeyedSingleFlight();
  let runs = 0;
  const gate = deferred();
  const task = async () => {
    runs++;
    await gate.promise;
  };
  const callers = [flights.run("a", task), flights.run("a", task), flights.run("a", task)];
  assert.equal(runs, 1);
  gate.resolve();
  await Promise.all(callers);
  assert.ok(flights.isDone("a"));
  await flights.run("a", task);
  assert.equal(runs, 1, "done keys return at once");

  let failures = 0;
  const failing = () => {
    failures++;
    return Promise.reject(new Error("nope"));
  };
  const both = [flights.run("b", failing), flights.run("b", failing)];
  for (const result of await Promise.allSettled(both)) assert.equal(result.status, "rejected");
  assert.equal(failures, 1, "concurrent callers share the failure");
  await assert.rejects(flights.run("b", failing));
  assert.equal(failures, 2, "a later call tries again");
});

Deno.test("extension server: Neon's check order, one download per archive", async () => {
  const downloads: ExtensionDownloadRequest[] = [];
  const gate = deferred();
  let spec: ParsedSpec | null = null;
  const server = (baseUrl?: string) =>
    new ExtensionServer({
      baseUrl,
      pgbin: "/pg/bin/postgres",
      currentSpec: () => spec,
      buildTag: "tag",
      arch: "amd64",
      readPgConfig: () =>
        Promise.resolve({ version: "PostgreSQL 15.4", sharedir: "/s", pkglibdir: "/l" }),
      download: async (request) => {
        downloads.push(request);
        await gate.promise;
        return { bytes: 1, files: [] };
      },
    });
  const kind = async (promise: Promise<void>) => {
    try {
      await promise;
    } catch (error) {
      assert.ok(error instanceof ExtensionServerError);
      return `${error.kind}: ${error.message}`;
    }
    return "ok";
  };
  assert.equal(
    await kind(server().download("pg_trgm", false)),
    "not_configured: remote storage is not configured",
  );
  const configured = server("http://store/");
  assert.match(await kind(configured.download("pg_trgm", false)), /^no_spec: /);
  spec = pspec();
  assert.equal(
    await kind(configured.download("pg_trgm", false)),
    "no_remote_extensions: information about remote extensions is unavailable",
  );
  spec = pspec({ remote_extensions: REMOTE });
  assert.equal(
    await kind(configured.download("x.so", true)),
    "not_found: library x is not found",
  );

  const waiting = [
    configured.download("pg_trgm", false),
    configured.download("pg_trgm.so", true),
    configured.download("pg_trgm", false),
  ];
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(downloads.length, 1);
  assert.equal(downloads[0].path, "tag/amd64/v15/extensions/pg_trgm.tar.zst");
  assert.deepEqual(downloads[0].dirs, {
    version: "PostgreSQL 15.4",
    sharedir: "/s",
    pkglibdir: "/l",
  });
  gate.resolve();
  await Promise.all(waiting);
  await configured.download("pg_trgm", false);
  assert.equal(downloads.length, 1, "installed archives are not fetched again");

  const failing = new ExtensionServer({
    baseUrl: "http://store/",
    pgbin: "/pg/bin/postgres",
    currentSpec: () => spec,
    readPgConfig: () =>
      Promise.resolve({ version: "PostgreSQL 15.4", sharedir: "/s", pkglibdir: "/l" }),
    download: () => Promise.reject(new Error('error downloading extension "pg_trgm": "x"')),
  });
  assert.equal(
    await kind(failing.download("pg_trgm", false)),
    'download_failed: Failed to download a remote file: error downloading extension "pg_trgm": "x"',
  );
});

Deno.test("query parsing of /extension_server and /lfc/prewarm", () => {
  assert.equal(parseIsLibrary("http://h/extension_server/a"), false);
  assert.equal(parseIsLibrary("http://h/extension_server/a?is_library=true"), true);
  assert.equal(parseIsLibrary("http://h/extension_server/a?other=1"), false);
  assert.throws(
    () => parseIsLibrary("http://h/extension_server/a?is_library=yes"),
    (error) => error instanceof HttpError && error.status === 400 && !error.plainText,
  );
  assert.equal(parseFromEndpoint("http://h/lfc/prewarm"), undefined);
  assert.equal(parseFromEndpoint("http://h/lfc/prewarm?from_endpoint=ep-2"), "ep-2");
  assert.throws(
    () => parseFromEndpoint("http://h/lfc/prewarm?"),
    (error) =>
      error instanceof HttpError && error.plainText &&
      error.message === "Failed to deserialize query string: missing field `from_endpoint`",
  );
});

Deno.test("LFC state location needs a spec, an endpoint, an address and a token", () => {
  assert.throws(() => lfcStateLocation(null), /no spec yet/);
  assert.throws(() => lfcStateLocation(pspec()), /endpoint_storage_addr missing/);
  assert.throws(
    () => lfcStateLocation(pspec({ endpoint_storage_addr: "h:1" })),
    /endpoint_storage_token missing/,
  );
  assert.deepEqual(
    lfcStateLocation(pspec({ endpoint_storage_addr: "h:1", endpoint_storage_token: "t" }), "ep-2"),
    { url: `http://h:1/${TENANT}/${TIMELINE}/ep-2/lfc_state`, token: "t" },
  );
});

/** A fake endpoint storage: answers `status` (and a small zstd state for 200) after `gate`. */
function endpointStorage(status: number, gate: Promise<void> = Promise.resolve()) {
  const seen: { path: string; authorization: string | null }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    seen.push({
      path: new URL(req.url).pathname,
      authorization: req.headers.get("authorization"),
    });
    await gate;
    return status === 200
      ? new Response(zstdCompressSync(new Uint8Array([1, 2, 3])))
      : new Response(null, { status });
  });
  return { addr: `127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

Deno.test("prewarm: 429 while running, 404 skipped, load failure failed, cancel quirk", async () => {
  const gate = deferred();
  const storage404 = endpointStorage(404, gate.promise);
  try {
    let spec = pspec({ endpoint_storage_addr: storage404.addr, endpoint_storage_token: "tok" });
    const lfc = new Lfc({
      currentSpec: () => spec,
      connstr: DEAD_CONNSTR,
      failpoints: new FailpointRegistry(),
    });
    assert.deepEqual(lfc.prewarmState(), { status: "not_prewarmed" });
    assert.equal(lfc.startPrewarm(), true);
    assert.deepEqual(lfc.prewarmState(), { status: "prewarming" });
    assert.equal(lfc.startPrewarm(), false, "a second prewarm is refused while one runs");
    gate.resolve();
    await lfc.idle();
    assert.deepEqual(lfc.prewarmState(), { status: "skipped" });
    assert.deepEqual(storage404.seen, [{
      path: `/${TENANT}/${TIMELINE}/ep-one/lfc_state`,
      authorization: "Bearer tok",
    }]);

    const storage200 = endpointStorage(200);
    try {
      spec = pspec({ endpoint_storage_addr: storage200.addr, endpoint_storage_token: "tok" });
      assert.equal(lfc.startPrewarm("ep-other"), true);
      await lfc.idle();
      const state = lfc.prewarmState();
      assert.equal(state.status, "failed");
      assert.match((state as { error: string }).error, /^connecting to postgres: /);
      assert.equal(storage200.seen[0].path, `/${TENANT}/${TIMELINE}/ep-other/lfc_state`);

      // DELETE while idle: the next prewarm ends cancelled, the one after runs again.
      lfc.cancelPrewarm();
      assert.equal(lfc.startPrewarm(), true);
      await lfc.idle();
      assert.deepEqual(lfc.prewarmState(), { status: "cancelled" });
      assert.equal(lfc.startPrewarm(), true);
      await lfc.idle();
      assert.equal(lfc.prewarmState().status, "failed");
    } finally {
      await storage200.close();
    }
  } finally {
    await storage404.close();
  }
});

Deno.test("prewarm without spec or endpoint storage fails; failpoint fails it too", async () => {
  let spec: ParsedSpec | null = null;
  const failpoints = new FailpointRegistry();
  const lfc = new Lfc({ currentSpec: () => spec, connstr: DEAD_CONNSTR, failpoints });
  lfc.startPrewarm();
  await lfc.idle();
  assert.deepEqual(lfc.prewarmState(), {
    status: "failed",
    error: "the compute has no spec yet",
  });
  spec = pspec();
  lfc.startPrewarm();
  await lfc.idle();
  assert.deepEqual(lfc.prewarmState(), {
    status: "failed",
    error: "pspec.endpoint_storage_addr missing",
  });
  spec = pspec({ endpoint_storage_addr: "127.0.0.1:1", endpoint_storage_token: "t" });
  failpoints.configure("compute-prewarm", "return");
  lfc.startPrewarm();
  await lfc.idle();
  assert.deepEqual(lfc.prewarmState(), { status: "failed", error: "compute-prewarm failpoint" });
});

Deno.test("offload: 429 while running, failure without endpoint storage or LFC", async () => {
  let spec: ParsedSpec | null = pspec();
  const lfc = new Lfc({ currentSpec: () => spec, connstr: DEAD_CONNSTR });
  assert.deepEqual(lfc.offloadState(), { status: "not_offloaded" });
  assert.equal(lfc.startOffload(), true);
  assert.equal(lfc.startOffload(), false);
  await lfc.idle();
  assert.deepEqual(lfc.offloadState(), {
    status: "failed",
    error: "pspec.endpoint_storage_addr missing",
  });
  spec = pspec({ endpoint_storage_addr: "127.0.0.1:1", endpoint_storage_token: "t" });
  lfc.startOffload();
  await lfc.idle();
  const state = lfc.offloadState();
  assert.equal(state.status, "failed");
  assert.match((state as { error: string }).error, /^connecting to postgres: /);
});

Deno.test("promotion: replica only, prewarm must have ended, one result for every call", async () => {
  let spec: ParsedSpec | null = pspec();
  let prewarm: ReturnType<Lfc["prewarmState"]> = { status: "not_prewarmed" };
  let installs = 0;
  const promoter = () =>
    new Promoter({
      currentSpec: () => spec,
      connstr: DEAD_CONNSTR,
      prewarmState: () => prewarm,
      installPromotedSpec: () => {
        installs++;
        return Promise.resolve();
      },
      replay: { retries: 0, retryIntervalMs: 1 },
    });
  const config = { spec: pspec().spec, wal_flush_lsn: 0x100n };

  const onPrimary = promoter();
  const first = onPrimary.promote(config);
  const second = onPrimary.promote(config);
  assert.equal(first, second, "concurrent calls share one promotion");
  assert.deepEqual(await first, {
    status: "failed",
    error: 'compute mode "primary" is not replica',
  });
  spec = pspec({ mode: "Replica" });
  assert.deepEqual(await onPrimary.promote(config), await first, "later calls get the same result");

  assert.deepEqual(await promoter().promote(config), {
    status: "failed",
    error: "compute NotPrewarmed",
  });
  prewarm = { status: "prewarming" };
  assert.deepEqual(await promoter().promote(config), {
    status: "failed",
    error: "compute Prewarming",
  });
  prewarm = { status: "failed", error: "no LFC here" };
  const unreachable = await promoter().promote(config);
  assert.equal(unreachable.status, "failed");
  assert.match((unreachable as { error: string }).error, /^connecting to postgres: /);
  spec = null;
  assert.deepEqual(await promoter().promote(config), {
    status: "failed",
    error: "the compute has no spec yet",
  });
  assert.equal(installs, 0);

  assert.throws(
    () => promoter().promote({ ...config, spec: { ...config.spec, safekeeper_connstrings: [] } }),
    /safekeeper_connstrings is empty|safekeeper connstrings should be provided/,
  );
});
