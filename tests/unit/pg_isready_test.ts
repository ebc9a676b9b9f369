/** `src/postgres/pg_isready.ts`: the probe's target and command line. */

import assert from "node:assert/strict";
import { MissingPortError, pgIsReadyArgs, probeTarget } from "../../src/postgres/pg_isready.ts";

Deno.test("probeTarget needs an explicit port; pg_isready gets -h when the URL names a host", () => {
  assert.deepEqual(probeTarget("postgresql://cloud_admin@127.0.0.1:5433/postgres"), {
    port: 5433,
    host: "127.0.0.1",
  });
  assert.deepEqual(probeTarget("postgresql://cloud_admin@localhost:5433/postgres?host=/run/pg"), {
    port: 5433,
    host: "/run/pg",
  });
  assert.throws(
    () => probeTarget("postgresql://cloud_admin@localhost/postgres"),
    (error) =>
      error instanceof MissingPortError &&
      error.message === "Failed to get the port from the connection string",
  );
  assert.deepEqual(pgIsReadyArgs({ port: 5 }), ["-p", "5"]);
  assert.deepEqual(pgIsReadyArgs({ port: 5, host: "h" }), ["-h", "h", "-p", "5"]);
});
