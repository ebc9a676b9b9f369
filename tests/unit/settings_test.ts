/**
 * `src/compute/settings.ts`: the command line and environment mapped into the
 * compute's settings, which are read-only (by type and at run time).
 */

import assert from "node:assert/strict";
import { parseCli } from "../../src/cli.ts";
import {
  basebackupRetries,
  DEFAULT_BASEBACKUP_RETRIES,
  type NodeSettings,
  nodeSettings,
} from "../../src/compute/settings.ts";

const CLI = parseCli([
  "-D",
  "/tmp/pgdata",
  "-C",
  "postgresql://cloud_admin@localhost:55432/postgres",
  "-i",
  "compute-one",
  "-c",
  "/tmp/config.json",
  "-r",
  "http://ext.local",
  "--installed-extensions-collection-interval",
  "60",
], {});

const NO_ENV = {
  NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES: undefined,
  FAILPOINTS: undefined,
  NEON_CONTROL_PLANE_TOKEN: undefined,
};

Deno.test("settings: every field from its flag or variable", () => {
  const settings = nodeSettings(CLI, {
    NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES: "3",
    FAILPOINTS: "compute-migration=return(2)",
    NEON_CONTROL_PLANE_TOKEN: "secret",
  });
  assert.deepEqual({ ...settings }, {
    pgbin: "postgres",
    pgdata: "/tmp/pgdata",
    connstr: "postgresql://cloud_admin@localhost:55432/postgres",
    privilegedRoleName: "neon_superuser",
    internalHttpPort: 3081,
    exitDelayMs: 30000,
    tlsCertCheckIntervalMs: 60000,
    basebackupRetries: 3,
    computeId: "compute-one",
    configPath: "/tmp/config.json",
    controlPlaneUri: undefined,
    controlPlaneToken: "secret",
    failpoints: "compute-migration=return(2)",
    remoteExtBaseUrl: "http://ext.local/",
    installedExtensionsCollectionIntervalSeconds: 60,
  });
});

Deno.test("settings: basebackup retries default to 10 and must be a number", () => {
  assert.equal(nodeSettings(CLI, NO_ENV).basebackupRetries, DEFAULT_BASEBACKUP_RETRIES);
  assert.equal(DEFAULT_BASEBACKUP_RETRIES, 10);
  assert.equal(basebackupRetries("0"), 0);
  assert.throws(
    () => basebackupRetries("many"),
    /NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES must be a number, got many/,
  );
});

Deno.test("settings are read-only: the type refuses writes and the object is frozen", () => {
  const settings: NodeSettings = nodeSettings(CLI, NO_ENV);
  assert.ok(Object.isFrozen(settings));
  assert.throws(() => {
    // @ts-expect-error: every field is readonly.
    settings.pgdata = "/elsewhere";
  }, TypeError);
  assert.equal(settings.pgdata, "/tmp/pgdata");
});
