import assert from "node:assert/strict";
import {
  collectionIntervalFor,
  DEFAULT_COLLECTION_INTERVAL_SECONDS,
  recordInstalledExtensions,
  runInstalledExtensionsStats,
  updateCollectionInterval,
} from "../../src/compute/installed_extensions.ts";
import { ComputeState } from "../../src/compute/state.ts";
import { renderMetrics } from "../../src/metrics.ts";
import { aggregateExtensions } from "../../src/postgres/installed_extensions.ts";
import { metricValue } from "../integration/_helpers.ts";

Deno.test("extensions are counted per name, version and owner kind across databases", () => {
  const stats = aggregateExtensions([
    [
      { extname: "plpgsql", extversion: "1.0", extowner: 10 },
      { extname: "pg_trgm", extversion: "1.6", extowner: 10 },
    ],
    [
      { extname: "plpgsql", extversion: "1.0", extowner: 10 },
      { extname: "pg_trgm", extversion: "1.6", extowner: 16384 },
    ],
    [
      { extname: "plpgsql", extversion: "1.0", extowner: 10 },
      { extname: "pg_trgm", extversion: "1.5", extowner: 10 },
    ],
  ]);
  assert.deepEqual(stats.extensions, [
    { extname: "plpgsql", version: "1.0", n_databases: 3, owned_by_superuser: "1" },
    { extname: "pg_trgm", version: "1.6", n_databases: 1, owned_by_superuser: "1" },
    { extname: "pg_trgm", version: "1.6", n_databases: 1, owned_by_superuser: "0" },
    { extname: "pg_trgm", version: "1.5", n_databases: 1, owned_by_superuser: "1" },
  ]);
  assert.deepEqual(aggregateExtensions([]), { extensions: [] });
});

Deno.test("the collection interval follows suspend_timeout_seconds; -1 and 0 mean 3600", () => {
  assert.equal(collectionIntervalFor({ suspend_timeout_seconds: -1 }), 3600);
  assert.equal(collectionIntervalFor({ suspend_timeout_seconds: 0 }), 3600);
  assert.equal(collectionIntervalFor({ suspend_timeout_seconds: 300 }), 300);
  assert.equal(DEFAULT_COLLECTION_INTERVAL_SECONDS, 3600);
  const interval = { seconds: 60 };
  updateCollectionInterval(interval, { suspend_timeout_seconds: 900 });
  assert.equal(interval.seconds, 900);
});

Deno.test("the statistics task, stopped, awaits the first scan it started", async () => {
  const state = new ComputeState();
  state.transition("init");
  state.transition("running");
  const scan = Promise.withResolvers<void>();
  let scanEnded = false;
  const stop = new AbortController();
  const task = runInstalledExtensionsStats({
    connstr: "postgresql://unused",
    state,
    interval: { seconds: 3600 },
    isPrimary: () => true,
    collect: async () => {
      stop.abort();
      await scan.promise;
      scanEnded = true;
    },
  }, stop.signal);
  let taskEnded = false;
  task.then(() => taskEnded = true);
  // One turn of the event loop: without the wait for its scan, the aborted task ends in it.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(taskEnded, false, "the task ended while its first scan was still running");
  scan.resolve();
  await task;
  assert.equal(scanEnded, true);
});

Deno.test("compute_installed_extensions gets one series per entry; old series stay", async () => {
  recordInstalledExtensions({
    extensions: [{ extname: "unit_ext", version: "1.0", n_databases: 2, owned_by_superuser: "0" }],
  });
  recordInstalledExtensions({
    extensions: [{ extname: "unit_ext", version: "2.0", n_databases: 1, owned_by_superuser: "0" }],
  });
  const text = await renderMetrics();
  const value = (version: string) =>
    metricValue(text, "compute_installed_extensions", {
      extension_name: "unit_ext",
      version,
      owned_by_superuser: "0",
    });
  assert.equal(value("1.0"), 2);
  assert.equal(value("2.0"), 1);
  assert.match(
    text,
    /# HELP compute_installed_extensions Number of databases where the version of extension is installed/,
  );
});
