/**
 * Where Neon's compute_ctl behaves differently by PostgreSQL major, ours must
 * too, for 14, 15, 16 and 17. Neon has three such places (everything else it
 * writes or runs is the same for every major):
 *
 * - `sql/default_grants.sql`: `GRANT CREATE ON SCHEMA public TO web_access`
 *   only from 15 on (15 stopped letting everyone create in `public`); with
 *   `set_public_schema_owner.sql`, which hands `public` to the database owner
 *   only while the admin owns it, as on 14 (from 15 `pg_database_owner` does);
 * - migrations 3 and 10: `pg_create_subscription`, `pg_export_snapshot` and
 *   `pg_log_standby_snapshot` for the privileged role only from 16 on (the
 *   role and the latter function are new in 16);
 * - the remote extension archives, filed under `v14` … `v17`.
 *
 * The planner decides the first from `server_version_num` when it plans; the
 * migrations ask the server as Neon's do.
 */

import assert from "node:assert/strict";
import { remoteExtensionPath } from "../../src/api/remote_extensions.ts";
import { computeSpecSchema } from "../../src/api/spec.ts";
import type { CatalogSnapshot, DatabaseDetails } from "../../src/postgres/catalog.ts";
import { MIGRATIONS } from "../../src/postgres/migrations.ts";
import { pgMajorLabel, SUPPORTED_PG_MAJORS } from "../../src/postgres/pg_version.ts";
import { planSpecApply } from "../../src/postgres/spec_plan/mod.ts";
import { settleSchemaPerms } from "../../src/postgres/spec_plan/per_database.ts";

const PRIV = "neon_superuser";
const Q_PRIV = `"${PRIV}"`;
const OPTIONS = { privilegedRoleName: PRIV, systemDatabase: "postgres" };

/** `server_version_num` of a release of `major`. */
const versionNum = (major: number) => major * 10000 + 5;

/** What `initdb` leaves for schema `public` in a new database of `major`. */
function freshDetails(major: number): DatabaseDetails {
  return {
    publicSchemaOwner: major >= 15 ? "pg_database_owner" : "cloud_admin",
    webAccessCanCreate: false,
    tableDefaultsGranted: false,
    sequenceDefaultsGranted: false,
  };
}

/** A catalog of `major` with the privileged role, `web_access`, and database `app`. */
function catalog(major: number, details?: DatabaseDetails): CatalogSnapshot {
  const db = (name: string) => ({
    name,
    owner: "cloud_admin",
    restrictConn: name === "template0",
    invalid: false,
    isTemplate: name.startsWith("template"),
    settings: [],
    subscriptions: 0,
  });
  return {
    serverVersionNum: versionNum(major),
    currentUser: "cloud_admin",
    roles: new Map(
      ["cloud_admin", PRIV, "web_access", "alice"].map((name) => [name, { name, password: null }]),
    ),
    databases: new Map(["postgres", "template0", "template1", "app"].map((n) => [n, db(n)])),
    system: {
      name: "postgres",
      neonSchema: true,
      healthCheckTable: true,
      extensions: new Map(),
      neonExtensionDefaultVersion: null,
      dropSubscriptionsDone: false,
    },
    details: new Map(details ? [["app", details]] : []),
  };
}

const SPEC = computeSpecSchema.parse({
  format_version: 1,
  suspend_timeout_seconds: 0,
  cluster: {
    roles: [{ name: "alice", encrypted_password: null }, { name: "web_access" }],
    databases: [{ name: "app", owner: "alice" }],
  },
});

function schemaPermsSql(snapshot: CatalogSnapshot): string[] {
  return planSpecApply(snapshot, SPEC, OPTIONS).steps
    .filter((step) => step.phase === "ChangeSchemaPerms")
    .map((step) => step.sql);
}

const DEFAULTS = [
  `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO ${Q_PRIV} WITH GRANT OPTION`,
  `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO ${Q_PRIV} WITH GRANT OPTION`,
];

Deno.test("ChangeSchemaPerms on a fresh database of each major", () => {
  const expected: Record<number, string[]> = {
    14: ['ALTER SCHEMA public OWNER TO "alice"', ...DEFAULTS],
    15: ["GRANT CREATE ON SCHEMA public TO web_access", ...DEFAULTS],
    16: ["GRANT CREATE ON SCHEMA public TO web_access", ...DEFAULTS],
    17: ["GRANT CREATE ON SCHEMA public TO web_access", ...DEFAULTS],
  };
  for (const major of SUPPORTED_PG_MAJORS) {
    assert.deepEqual(
      schemaPermsSql(catalog(major, freshDetails(major))),
      expected[major],
      `${major}`,
    );
  }
});

Deno.test("ChangeSchemaPerms of a database not inspected: the web_access grant from 15 on", () => {
  for (const major of SUPPORTED_PG_MAJORS) {
    const sql = schemaPermsSql(catalog(major));
    const grants = sql.filter((text) =>
      text.includes("GRANT CREATE ON SCHEMA public TO web_access")
    );
    assert.equal(grants.length, major >= 15 ? 1 : 0, `${major}: ${sql.join("\n")}`);
    assert.ok(sql[0].includes("ALTER SCHEMA public OWNER TO"), `${major}: the owner, guarded`);
  }
});

Deno.test("what ChangeSchemaPerms leaves, per major, so the next apply plans nothing", () => {
  for (const major of SUPPORTED_PG_MAJORS) {
    const settled = settleSchemaPerms("alice", freshDetails(major), {
      webAccessExists: true,
      serverVersionNum: versionNum(major),
    });
    assert.deepEqual(settled, {
      publicSchemaOwner: major >= 15 ? "pg_database_owner" : "alice",
      webAccessCanCreate: major >= 15,
      tableDefaultsGranted: true,
      sequenceDefaultsGranted: true,
    });
    assert.deepEqual(schemaPermsSql(catalog(major, settled)), [], `${major}`);
  }
});

Deno.test("migrations: PostgreSQL 16's role and function only behind the server's version", () => {
  const guard = "IF pg_catalog.current_setting('server_version_num')::int4 >= 160000 THEN";
  const sixteenOnly = ["pg_create_subscription", "pg_log_standby_snapshot", "pg_export_snapshot"];
  for (const [index, text] of MIGRATIONS.entries()) {
    const named = sixteenOnly.filter((name) => text.includes(name));
    if (named.length === 0) continue;
    const guarded = text.slice(text.indexOf(guard) + guard.length, text.indexOf("END IF;"));
    assert.ok(text.includes(guard), `migration ${index + 1} names ${named} without the guard`);
    for (const name of named) assert.ok(guarded.includes(name), `${index + 1}: ${name}`);
  }
  assert.ok(MIGRATIONS[2].includes("GRANT pg_create_subscription TO {privileged_role_name}"));
  assert.ok(MIGRATIONS[9].includes("pg_catalog.pg_log_standby_snapshot()"));
});

Deno.test("remote extension archives are filed under the install's major", () => {
  for (const major of SUPPORTED_PG_MAJORS) {
    const target = { buildTag: "latest", arch: "amd64", pgMajor: pgMajorLabel(major) };
    assert.equal(
      remoteExtensionPath(target, "postgis"),
      `latest/amd64/v${major}/extensions/postgis.tar.zst`,
    );
  }
});
