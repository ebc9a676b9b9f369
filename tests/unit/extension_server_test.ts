/**
 * `src/compute/extension_server.ts` with fake downloads: Neon's check order,
 * de-duplication of concurrent downloads (single flight per archive), a
 * retry after a failed one, and the stop at shutdown. Real downloads are in
 * `tests/integration/extension_server_test.ts`.
 */

import assert from "node:assert/strict";
import { TaskGroupClosedError } from "../../src/_async.ts";
import {
  ExtensionServer,
  ExtensionServerError,
  KeyedSingleFlight,
} from "../../src/compute/extension_server.ts";
import type { ParsedSpec } from "../../src/api/parsed_spec.ts";
import { PostgresVersionError } from "../../src/postgres/pg_version.ts";
import type { ExtensionDownloadRequest } from "../../src/storage/extension_store.ts";
import { testParsedSpec } from "../_support/specs.ts";

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
  const downloading = deferred();
  let spec: ParsedSpec | null = null;
  const server = (baseUrl?: string) =>
    new ExtensionServer({
      baseUrl,
      pgbin: "/pg/bin/postgres",
      currentSpec: () => spec,
      buildTag: "tag",
      arch: "amd64",
      pgMajor: () => Promise.resolve(15),
      installDirs: () => Promise.resolve({ sharedir: "/s", pkglibdir: "/l" }),
      download: async (request) => {
        downloads.push(request);
        downloading.resolve();
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
  spec = testParsedSpec();
  assert.equal(
    await kind(configured.download("pg_trgm", false)),
    "no_remote_extensions: information about remote extensions is unavailable",
  );
  spec = testParsedSpec({ remote_extensions: REMOTE });
  assert.equal(
    await kind(configured.download("x.so", true)),
    "not_found: library x is not found",
  );

  // All three are asked before the (held) download can end, so none can finish first.
  const settled: boolean[] = [];
  const waiting = [
    configured.download("pg_trgm", false),
    configured.download("pg_trgm.so", true),
    configured.download("pg_trgm", false),
  ].map((call, i) => call.finally(() => settled[i] = true));
  await downloading.promise;
  assert.deepEqual(settled, [], "every call waits for the held download");
  assert.equal(downloads.length, 1);
  assert.equal(downloads[0].path, "tag/amd64/v15/extensions/pg_trgm.tar.zst");
  assert.deepEqual(downloads[0].dirs, {
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
    pgMajor: () => Promise.resolve(15),
    installDirs: () => Promise.resolve({ sharedir: "/s", pkglibdir: "/l" }),
    download: () => Promise.reject(new Error('error downloading extension "pg_trgm": "x"')),
  });
  assert.equal(
    await kind(failing.download("pg_trgm", false)),
    'download_failed: Failed to download a remote file: error downloading extension "pg_trgm": "x"',
  );
});

Deno.test("extension server: stop waits for a running download, then refuses requests", async () => {
  const gate = deferred();
  const downloading = deferred();
  const events: string[] = [];
  const server = new ExtensionServer({
    baseUrl: "http://store/",
    pgbin: "/pg/bin/postgres",
    currentSpec: () => testParsedSpec({ remote_extensions: REMOTE }),
    buildTag: "tag",
    arch: "amd64",
    pgMajor: () => Promise.resolve(15),
    installDirs: () => Promise.resolve({ sharedir: "/s", pkglibdir: "/l" }),
    download: async () => {
      downloading.resolve();
      await gate.promise;
      events.push("downloaded");
      return { bytes: 1, files: [] };
    },
  });
  const request = server.download("pg_trgm", false);
  await downloading.promise;
  const stopped = server.stop().then(() => events.push("stopped"));
  await assert.rejects(server.download("pg_trgm", false), TaskGroupClosedError);
  gate.resolve();
  await Promise.all([request, stopped]);
  assert.deepEqual(events, ["downloaded", "stopped"]);
  await assert.rejects(
    server.download("pg_trgm", false),
    /extension server: the compute is shutting down/,
  );
});

Deno.test("extension server: the archive of the install's major; an unsupported one is named", async () => {
  const paths: string[] = [];
  const server = (major: () => Promise<15 | 17>) =>
    new ExtensionServer({
      baseUrl: "http://store/",
      pgbin: "/pg/bin/postgres",
      currentSpec: () => testParsedSpec({ remote_extensions: REMOTE }),
      buildTag: "tag",
      arch: "amd64",
      pgMajor: major,
      installDirs: () => Promise.resolve({ sharedir: "/s", pkglibdir: "/l" }),
      download: (request) => {
        paths.push(request.path);
        return Promise.resolve({ bytes: 1, files: [] });
      },
    });
  await server(() => Promise.resolve(17)).download("pg_trgm", false);
  assert.deepEqual(paths, ["tag/amd64/v17/extensions/pg_trgm.tar.zst"]);
  const old = server(() =>
    Promise.reject(
      new PostgresVersionError("--pgbin /pg/bin/postgres: PostgreSQL 13 is not supported"),
    )
  );
  await assert.rejects(
    old.download("pg_trgm", false),
    new ExtensionServerError(
      "download_failed",
      "Failed to download a remote file: --pgbin /pg/bin/postgres: PostgreSQL 13 is not supported",
    ),
  );
});
