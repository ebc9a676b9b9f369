/**
 * `POST /extension_server/…` against real PostgreSQL: a private copy of the
 * install without pg_trgm and fuzzystrmatch, a fake extension storage serving
 * those two real contrib extensions as `.tar.zst` archives, and a compute that
 * downloads them on request, after which `CREATE EXTENSION` works. Also every
 * documented refusal (400, 404 ×3, 409, 412 ×2, 500), de-duplication of
 * concurrent downloads and the `compute_ctl_remote_ext_requests_total` counter.
 */

import assert from "node:assert/strict";
import { type JsonObject, startCluster } from "../../harness/cluster.ts";
import { startExtensionStore } from "../../harness/extension_store.ts";
import { copyPgInstall } from "../../harness/pg_install.ts";
import { assertRequestId } from "../_support/http.ts";
import { eventually, metricValue, query } from "./_helpers.ts";

const REMOTE_EXTENSIONS: JsonObject = {
  public_extensions: ["pg_trgm", "fuzzystrmatch", "broken", "no_data"],
  custom_extensions: null,
  library_index: { pg_trgm: "pg_trgm", fuzzystrmatch: "fuzzystrmatch", hidden: "secret" },
  extension_data: {
    pg_trgm: { control_data: {}, archive_path: "" },
    fuzzystrmatch: { control_data: {}, archive_path: "" },
    broken: { control_data: {}, archive_path: "" },
    secret: { control_data: {}, archive_path: "" },
  },
};

Deno.test("extension_server downloads real extensions; every refusal has its code", async () => {
  await using install = await copyPgInstall({ withoutExtensions: ["pg_trgm", "fuzzystrmatch"] });
  await using store = await startExtensionStore({
    source: { sharedir: install.original.sharedir, pkglibdir: install.original.pkglibdir },
    extensions: ["pg_trgm", "fuzzystrmatch"],
  });
  const remoteExt = ["--remote-ext-base-url", store.url];
  await using cluster = await startCluster({
    pageservers: 1,
    pgbin: install.pgbin,
    computes: [
      {
        id: "ext",
        extraArgs: remoteExt,
        spec: { remote_extensions: REMOTE_EXTENSIONS },
        // Debug logs a line as each request arrives: the evidence the de-duplication check waits for.
        env: { COMPUTE_CTL_LOG_LEVEL: "debug" },
      },
      { id: "ext-no-spec", empty: true, extraArgs: remoteExt },
      { id: "ext-off", empty: true },
    ],
  });
  const compute = cluster.compute("ext");
  const post = async (path: string, requestId?: string) => {
    const result = await compute.request("POST", `/extension_server/${path}`, {
      internal: true,
      headers: requestId ? { "x-request-id": requestId } : {},
    });
    assertRequestId(result, requestId);
    return result;
  };

  // Before: the extension is not in the private install.
  await assert.rejects(
    query(compute.postgresUrl, "CREATE EXTENSION pg_trgm"),
    /extension "pg_trgm" is not available|could not open extension control file/,
  );

  // The control file request downloads the archive; CREATE EXTENSION then loads the library too.
  const downloaded = await post("pg_trgm", "ext-request-1");
  assert.equal(downloaded.status, 200, downloaded.text);
  assert.equal(downloaded.text, "");
  assert.equal(downloaded.headers.get("content-type"), null);
  await query(compute.postgresUrl, "CREATE EXTENSION pg_trgm");
  const [{ similar }] = await query<{ similar: boolean }>(
    compute.postgresUrl,
    "SELECT similarity('compute', 'computer') > 0.5 AS similar",
  );
  assert.equal(similar, true);
  const files = await Array.fromAsync(Deno.readDir(`${install.sharedir}/extension`));
  assert.ok(files.some((file) => file.name === "pg_trgm.control"));
  await Deno.stat(`${install.pkglibdir}/pg_trgm.so`);

  // The library of an installed archive: 200 at once, nothing fetched.
  const library = await post("pg_trgm.so?is_library=true");
  assert.equal(library.status, 200, library.text);
  assert.equal(store.requests("pg_trgm"), 1);

  // Concurrent requests for one archive share one download: the store holds the first
  // download until the manager has received all three, so none can finish before the others
  // arrive; without de-duplication each would have asked the store.
  const release = store.hold();
  const ids = ["dedup-1", "dedup-2", "dedup-3"];
  const concurrent = [
    post("fuzzystrmatch", ids[0]),
    post("fuzzystrmatch.so?is_library=true", ids[1]),
    post("fuzzystrmatch", ids[2]),
  ];
  const arrived = (log: string, id: string) =>
    new RegExp(`DEBUG compute_ctl::http: POST /extension_server/\\S+ .*request_id=${id}\\b`)
      .test(log);
  await eventually(async () => {
    const log = await compute.readLog();
    return store.requests("fuzzystrmatch") >= 1 && ids.every((id) => arrived(log, id));
  }, "the download is held and all three requests have reached the manager");
  release();
  for (const result of await Promise.all(concurrent)) assert.equal(result.status, 200, result.text);
  assert.equal(store.requests("fuzzystrmatch"), 1);
  await query(compute.postgresUrl, "CREATE EXTENSION fuzzystrmatch");
  const [{ distance }] = await query<{ distance: number }>(
    compute.postgresUrl,
    "SELECT levenshtein('kitten', 'sitting') AS distance",
  );
  assert.equal(distance, 3);

  // Refusals.
  const refusals: [string, number, string][] = [
    ["nothing.so?is_library=true", 404, "library nothing is not found"],
    ["hidden.so.1?is_library=true", 404, "extension secret is not found"],
    ["no_data", 404, "real_ext_name no_data is not found"],
    [
      "pg_trgm?is_library=maybe",
      400,
      "failed to deserialize query string: provided string was not `true` or `false`",
    ],
    [
      "broken",
      500,
      'Failed to download a remote file: error downloading extension "broken": ' +
      '"unexpected remote extensions server response status code: 404 Not Found"',
    ],
  ];
  for (const [path, status, error] of refusals) {
    const result = await post(path);
    assert.equal(result.status, status, `${path}: ${result.text}`);
    assert.deepEqual(result.body, { error }, path);
  }
  const wrongMethod = await compute.request("GET", "/extension_server/pg_trgm", { internal: true });
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.get("allow"), "POST");

  const metrics = await compute.metrics();
  const requests = (status: string, filename: string) =>
    metricValue(metrics, "compute_ctl_remote_ext_requests_total", {
      http_status: status,
      filename,
    });
  assert.equal(requests("200 OK", "pg_trgm.tar.zst"), 1);
  assert.equal(requests("200 OK", "fuzzystrmatch.tar.zst"), 1);
  assert.equal(requests("404 Not Found", "broken.tar.zst"), 1);

  // 409: a spec without remote_extensions.
  const configured = await compute.configure({
    spec: { ...compute.spec, remote_extensions: null },
    compute_ctl_config: (await compute.readConfig()).compute_ctl_config,
  });
  assert.equal(configured.status, 200, configured.text);
  const conflict = await post("pg_trgm");
  assert.equal(conflict.status, 409, conflict.text);
  assert.deepEqual(conflict.body, { error: "information about remote extensions is unavailable" });

  // 412: no spec yet (Neon would panic and drop the connection), and no remote storage at all.
  const noSpec = await cluster.compute("ext-no-spec").request("POST", "/extension_server/pg_trgm", {
    internal: true,
  });
  assert.equal(noSpec.status, 412, noSpec.text);
  assert.match(noSpec.body.error, /no spec yet/);
  const off = await cluster.compute("ext-off").request("POST", "/extension_server/pg_trgm", {
    internal: true,
  });
  assert.equal(off.status, 412, off.text);
  assert.deepEqual(off.body, { error: "remote storage is not configured" });
  assertRequestId(off);
});
