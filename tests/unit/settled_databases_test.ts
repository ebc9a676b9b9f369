import assert from "node:assert/strict";
import { computeSpecSchema } from "../../src/api/spec.ts";
import type {
  CatalogSnapshot,
  ClusterSnapshot,
  DatabaseDetails,
  DatabaseState,
  RoleState,
} from "../../src/postgres/catalog.ts";
import {
  planDetailReads,
  settledAfter,
  type SettledDatabases,
} from "../../src/postgres/settled_databases.ts";
import { planSpecApply } from "../../src/postgres/spec_plan/mod.ts";
import { settleSchemaPerms } from "../../src/postgres/spec_plan/per_database.ts";

const PRIV = "neon_superuser";
const OPTIONS = { privilegedRoleName: PRIV, systemDatabase: "postgres" };
const STARTED = "2025-01-01 00:00:00+00";

function spec(
  databases: Record<string, string>,
  { roles = ["alice"], delta = [] as Record<string, unknown>[] } = {},
) {
  return computeSpecSchema.parse({
    format_version: 1,
    suspend_timeout_seconds: 0,
    cluster: {
      roles: roles.map((name) => ({ name, encrypted_password: null, options: null })),
      databases: Object.entries(databases).map(([name, owner]) => ({ name, owner, options: null })),
    },
    delta_operations: delta.length > 0 ? delta : null,
  });
}

/** A cluster that has `databases` (name → oid, owned by alice) and `roles` (name → oid). */
function cluster(
  databases: Record<string, number>,
  roles: Record<string, number> = {},
  started = STARTED,
): ClusterSnapshot {
  const roleMap = new Map<string, RoleState>();
  const allRoles = { cloud_admin: 10, [PRIV]: 16384, alice: 16385, ...roles };
  for (const [name, oid] of Object.entries(allRoles)) {
    roleMap.set(name, { name, oid, password: null });
  }
  const databaseMap = new Map<string, DatabaseState>();
  for (const [name, oid] of Object.entries({ postgres: 5, ...databases })) {
    databaseMap.set(name, {
      name,
      oid,
      owner: name === "postgres" ? "cloud_admin" : "alice",
      restrictConn: false,
      invalid: false,
      isTemplate: false,
      settings: [],
      subscriptions: 0,
    });
  }
  return {
    serverVersionNum: 150018,
    postmasterStartTime: started,
    currentUser: "cloud_admin",
    roles: roleMap,
    databases: databaseMap,
    system: {
      name: "postgres",
      neonSchema: true,
      healthCheckTable: true,
      extensions: new Map(),
      neonExtensionDefaultVersion: null,
      dropSubscriptionsDone: false,
    },
  };
}

const FRESH: DatabaseDetails = {
  publicSchemaOwner: "pg_database_owner",
  webAccessCanCreate: false,
  tableDefaultsGranted: false,
  sequenceDefaultsGranted: false,
};

const SETTLED: DatabaseDetails = {
  publicSchemaOwner: "pg_database_owner",
  webAccessCanCreate: false,
  tableDefaultsGranted: true,
  sequenceDefaultsGranted: true,
};

/** What an apply on `cluster` left in each of `names` (all settled). */
function settledOn(c: ClusterSnapshot, names: string[]): SettledDatabases {
  const snapshot: CatalogSnapshot = {
    ...c,
    details: new Map(names.map((name) => [name, FRESH])),
  };
  const databases = Object.fromEntries(names.map((name) => [name, "alice"]));
  const plan = planSpecApply(snapshot, spec(databases), OPTIONS);
  const left = settledAfter(c, plan, PRIV);
  assert.ok(left !== null);
  return left;
}

Deno.test("without a record every spec database is inspected", () => {
  const reads = planDetailReads(
    cluster({ a: 20, b: 21 }),
    spec({ a: "alice", b: "alice" }),
    undefined,
    PRIV,
  );
  assert.deepEqual(reads.inspect, ["a", "b"]);
  assert.equal(reads.known.size, 0);
});

Deno.test("an unchanged spec on the same server run inspects no database", () => {
  const c = cluster({ a: 20, b: 21 });
  const reads = planDetailReads(
    c,
    spec({ a: "alice", b: "alice" }),
    settledOn(c, ["a", "b"]),
    PRIV,
  );
  assert.deepEqual(reads.inspect, []);
  assert.deepEqual([...reads.known.keys()], ["a", "b"]);
  assert.deepEqual(reads.known.get("a"), SETTLED);
});

Deno.test("a new database, and one dropped and created again, are inspected; the rest are not", () => {
  const before = cluster({ a: 20, b: 21 });
  const settled = settledOn(before, ["a", "b"]);
  const after = cluster({ a: 20, b: 30, c: 31 });
  const reads = planDetailReads(after, spec({ a: "alice", b: "alice", c: "alice" }), settled, PRIV);
  assert.deepEqual(reads.inspect, ["b", "c"]);
  assert.deepEqual([...reads.known.keys()], ["a"]);
});

Deno.test("a restart, a recreated role or a role being dropped inspects every database", () => {
  const c = cluster({ a: 20 });
  const settled = settledOn(c, ["a"]);
  const one = spec({ a: "alice" });
  const restarted = cluster({ a: 20 }, {}, "2025-01-01 00:05:00+00");
  assert.deepEqual(planDetailReads(restarted, one, settled, PRIV).inspect, ["a"]);
  const webAccess = cluster({ a: 20 }, { web_access: 16400 });
  assert.deepEqual(planDetailReads(webAccess, one, settled, PRIV).inspect, ["a"]);
  const privAgain = cluster({ a: 20 }, { [PRIV]: 16500 });
  assert.deepEqual(planDetailReads(privAgain, one, settled, PRIV).inspect, ["a"]);
  assert.deepEqual(planDetailReads(c, one, settled, "other_priv").inspect, ["a"]);
  const dropsBob = spec({ a: "alice" }, { delta: [{ action: "delete_role", name: "bob" }] });
  assert.deepEqual(planDetailReads(c, dropsBob, settled, PRIV).inspect, ["a"]);
});

Deno.test("a database the apply created or renamed is not recorded; one freeing a role is not", () => {
  const c = cluster({ a: 20, old: 21 }, { bob: 16390 });
  const snapshot: CatalogSnapshot = {
    ...c,
    details: new Map([["a", FRESH], ["old", FRESH]]),
  };
  const renames = spec({ a: "alice", renamed: "alice", created: "alice" }, {
    delta: [{ action: "rename_db", name: "old", new_name: "renamed" }],
  });
  const left = settledAfter(c, planSpecApply(snapshot, renames, OPTIONS), PRIV);
  assert.deepEqual([...left!.databases.keys()], ["a"]);

  const dropsBob = spec({ a: "alice" }, { delta: [{ action: "delete_role", name: "bob" }] });
  const freed = settledAfter(c, planSpecApply(snapshot, dropsBob, OPTIONS), PRIV);
  assert.deepEqual([...freed!.databases.keys()], []);
});

Deno.test("settled details plan no ChangeSchemaPerms, whatever they started from", () => {
  const owners = [null, "cloud_admin", "zenith_admin", "pg_database_owner", "alice"];
  for (const publicSchemaOwner of owners) {
    for (const webAccess of [false, true]) {
      for (const granted of [false, true]) {
        const details: DatabaseDetails = {
          publicSchemaOwner,
          webAccessCanCreate: webAccess && granted,
          tableDefaultsGranted: granted,
          sequenceDefaultsGranted: !granted,
        };
        const roles: Record<string, number> = webAccess ? { web_access: 16400 } : {};
        const context = { webAccessExists: webAccess, serverVersionNum: 150018 };
        const snapshot: CatalogSnapshot = {
          ...cluster({ a: 20 }, roles),
          details: new Map([["a", settleSchemaPerms("alice", details, context)]]),
        };
        const plan = planSpecApply(snapshot, spec({ a: "alice" }), OPTIONS);
        const perms = plan.steps.filter((step) => step.phase === "ChangeSchemaPerms");
        assert.deepEqual(perms, [], JSON.stringify(details));
        assert.deepEqual(plan.settled?.get("a"), snapshot.details.get("a"));
      }
    }
  }
});
