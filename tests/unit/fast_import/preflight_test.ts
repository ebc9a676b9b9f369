/**
 * The preflight's pure rules: the catalog JSON, what the destination already
 * has of the source (schemas but `public`, relations), and a source newer
 * than pg_dump.
 */

import assert from "node:assert/strict";
import {
  conflictMessage,
  type DatabaseCatalog,
  findConflicts,
  parseCatalog,
  sourceVersionProblem,
} from "../../../src/fast_import/preflight.ts";

const catalog = (
  schemas: string[],
  relations: [string, string][],
): DatabaseCatalog => ({
  serverVersionNum: 150018,
  schemas,
  relations,
  tables: relations.length,
  tableBytes: 0,
});

Deno.test("the catalog query's JSON parses; anything else throws", () => {
  assert.deepEqual(
    parseCatalog(JSON.stringify({
      server_version_num: 150018,
      schemas: ["public", "sales"],
      relations: [["public", "t"], ["sales", "orders"]],
      tables: 2,
      table_bytes: 81920,
    })),
    {
      serverVersionNum: 150018,
      schemas: ["public", "sales"],
      relations: [["public", "t"], ["sales", "orders"]],
      tables: 2,
      tableBytes: 81920,
    },
  );
  assert.throws(() => parseCatalog("{}"));
  assert.throws(() => parseCatalog("not json"));
});

Deno.test("conflicts: shared schemas other than public, and shared relations", () => {
  const source = catalog(["odd schema", "public", "sales"], [
    ["public", "t1"],
    ["sales", "orders"],
    ["odd schema", "odd table"],
  ]);
  assert.deepEqual(findConflicts(source, catalog(["public"], [])), []);
  assert.deepEqual(findConflicts(source, catalog(["public"], [["public", "other"]])), []);
  assert.deepEqual(
    findConflicts(source, catalog(["public", "sales"], [["public", "t1"], ["sales", "orders"]])),
    ["schema sales", "public.t1", "sales.orders"],
  );
});

Deno.test("the conflict message lists at most five and says why", () => {
  const names = Array.from({ length: 7 }, (_, i) => `public.t${i}`);
  const message = conflictMessage(names);
  assert.match(message, /already has 7 of the source's schemas and relations/);
  assert.match(message, /public\.t0, public\.t1, public\.t2, public\.t3, public\.t4, and 2 more/);
  assert.match(message, /restore into a database that has none of them/);
});

Deno.test("a source newer than pg_dump is refused", () => {
  assert.equal(sourceVersionProblem(150018, 15), null);
  assert.equal(sourceVersionProblem(140011, 15), null);
  assert.match(
    sourceVersionProblem(160002, 15) ?? "",
    /the source runs PostgreSQL 16, which pg_dump 15 cannot dump/,
  );
});
