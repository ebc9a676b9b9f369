/**
 * Where the connection strings come from: the plain spec file (Neon's is
 * encrypted and refused with a hint) or the flags, never both, with Neon's
 * messages for what is missing.
 */

import assert from "node:assert/strict";
import type { DumpRestoreCommand, PgdataCommand } from "../../../src/fast_import/cli.ts";
import { parseImportSpec, resolveConnections, SpecError } from "../../../src/fast_import/spec.ts";

const pgdata = (source?: string): PgdataCommand => ({
  name: "pgdata",
  sourceConnectionString: source,
  interactive: false,
  pgPort: 5432,
});
const dumpRestore = (source?: string, destination?: string): DumpRestoreCommand => ({
  name: "dump-restore",
  sourceConnectionString: source,
  destinationConnectionString: destination,
});

function specError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof SpecError, `expected SpecError, got ${error}`);
    return error.message;
  }
  assert.fail("accepted");
}

Deno.test("a plain spec parses; Neon's extra fields are ignored", () => {
  const spec = parseImportSpec(
    JSON.stringify({
      source_connstring: "postgresql://s/db",
      destination_connstring: "postgresql://d/db",
      project_id: "p",
      branch_id: "b",
    }),
    "/spec.json",
  );
  assert.equal(spec.source_connstring, "postgresql://s/db");
  assert.equal(spec.destination_connstring, "postgresql://d/db");
});

Deno.test("bad specs are refused naming the file and the problem", () => {
  assert.match(specError(() => parseImportSpec("{", "/s.json")), /parse spec \/s\.json as json/);
  assert.match(
    specError(() => parseImportSpec("{}", "/s.json")),
    /\/s\.json: source_connstring: missing field/,
  );
  assert.match(
    specError(() =>
      parseImportSpec(
        JSON.stringify({
          encryption_secret: { KMS: { key_id: "k" } },
          source_connstring_ciphertext_base64: "AAAA",
        }),
        "/s.json",
      )
    ),
    /encrypted \(KMS\).*source_connstring/,
  );
});

Deno.test("pgdata: the source from the spec or the flag, exactly one", () => {
  const spec = { source_connstring: "from-spec" };
  assert.deepEqual(resolveConnections(pgdata(), spec), { source: "from-spec" });
  assert.deepEqual(resolveConnections(pgdata("from-flag"), undefined), { source: "from-flag" });
  assert.equal(
    specError(() => resolveConnections(pgdata(), undefined)),
    "spec must be provided for pgdata command",
  );
  assert.equal(
    specError(() => resolveConnections(pgdata("from-flag"), spec)),
    "only one of spec or source_connection_string can be provided",
  );
});

Deno.test("dump-restore: both connections, from the spec or from the flags", () => {
  assert.deepEqual(
    resolveConnections(dumpRestore(), { source_connstring: "s", destination_connstring: "d" }),
    { source: "s", destination: "d" },
  );
  assert.deepEqual(resolveConnections(dumpRestore("s", "d"), undefined), {
    source: "s",
    destination: "d",
  });
  assert.equal(
    specError(() => resolveConnections(dumpRestore(), { source_connstring: "s" })),
    "destination connection string must be provided in spec for dump_restore command",
  );
  assert.equal(
    specError(() => resolveConnections(dumpRestore("s"), undefined)),
    "destination connection string must be provided for dump_restore command",
  );
  assert.equal(
    specError(() => resolveConnections(dumpRestore(undefined, "d"), undefined)),
    "source connection string must be provided for dump_restore command",
  );
  assert.match(
    specError(() =>
      resolveConnections(dumpRestore(undefined, "d"), {
        source_connstring: "s",
        destination_connstring: "d2",
      })
    ),
    /only one of spec or destination_connection_string/,
  );
});
