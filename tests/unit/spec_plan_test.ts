import assert from "node:assert/strict";
import { type ComputeSpec, computeSpecSchema } from "../../src/api/spec.ts";
import type {
  CatalogSnapshot,
  DatabaseDetails,
  DatabaseState,
  RoleState,
} from "../../src/postgres/catalog.ts";
import {
  databasesToInspect,
  formatPlan,
  planSpecApply,
  type PlanStep,
  type SpecPhase,
  SpecPlanError,
} from "../../src/postgres/spec_plan/mod.ts";
import { concurrencyForReconfigure, concurrencyForStartup } from "../../src/postgres/spec_apply.ts";

const PRIV = "neon_superuser";
const OPTIONS = { privilegedRoleName: PRIV, systemDatabase: "postgres" };
const MD5 = "6b1d16b78004bbd51fa06af9eda75972";
const SCRAM =
  "SCRAM-SHA-256$4096:hBT22QjqpydQWqEulorfXA==$miBogcoj68JWYdsNB5PW1X6PjSLBEcNuctuhtGkb4PY=:hxk2gxkwxGo6P7GCtfpMlhA9zwHvPMsCz+NQf2HfvWk=";

/** Phase order of neon-03 §3.2 (Neon mode). */
const PHASE_ORDER: SpecPhase[] = [
  "CreatePrivilegedRole",
  "DropInvalidDatabases",
  "RenameRoles",
  "CreateAndAlterRoles",
  "RenameAndDeleteDatabases",
  "CreateAndAlterDatabases",
  "CreateSchemaNeon",
  "DeleteDBRoleReferences",
  "ChangeSchemaPerms",
  "DropLogicalSubscriptions",
  "HandleOtherExtensions",
  "HandleNeonExtension",
  "CreateAvailabilityCheck",
  "DropRoles",
  "FinalizeDropLogicalSubscriptions",
  "CreatePgauditExtension",
  "CreatePgauditlogtofileExtension",
  "DisablePostgresDBPgAudit",
];

function spec(fields: Record<string, unknown> & { cluster?: Record<string, unknown> } = {}) {
  const { cluster = {}, ...rest } = fields;
  return computeSpecSchema.parse({
    format_version: 1,
    suspend_timeout_seconds: 0,
    ...rest,
    cluster: { roles: [], databases: [], ...cluster },
  });
}

const APPLIED_DETAILS: DatabaseDetails = {
  publicSchemaOwner: "pg_database_owner",
  webAccessCanCreate: false,
  tableDefaultsGranted: true,
  sequenceDefaultsGranted: true,
};

interface SnapshotInput {
  roles?: Record<string, string | null>;
  databases?: Record<string, Partial<DatabaseState> & { owner: string }>;
  details?: Record<string, DatabaseDetails>;
  system?: Partial<CatalogSnapshot["system"]>;
}

/** A catalog as initdb leaves it, plus the given roles and databases. */
function snapshot(input: SnapshotInput = {}): CatalogSnapshot {
  const roles = new Map<string, RoleState>();
  for (const [name, password] of Object.entries({ cloud_admin: null, ...input.roles })) {
    roles.set(name, { name, password });
  }
  const databases = new Map<string, DatabaseState>();
  const base = {
    postgres: { owner: "cloud_admin" },
    template0: { owner: "cloud_admin", restrictConn: true, isTemplate: true },
    template1: { owner: "cloud_admin", isTemplate: true },
  };
  for (const [name, db] of Object.entries({ ...base, ...input.databases })) {
    databases.set(name, {
      name,
      restrictConn: false,
      invalid: false,
      isTemplate: false,
      settings: [],
      subscriptions: 0,
      ...db,
    });
  }
  return {
    serverVersionNum: 150018,
    currentUser: "cloud_admin",
    roles,
    databases,
    system: {
      name: "postgres",
      neonSchema: false,
      healthCheckTable: false,
      extensions: new Map(),
      neonExtensionDefaultVersion: null,
      dropSubscriptionsDone: false,
      ...input.system,
    },
    details: new Map(Object.entries(input.details ?? {})),
  };
}

/** The snapshot after `spec` was applied: everything in place. */
function appliedSnapshot(input: SnapshotInput = {}): CatalogSnapshot {
  return snapshot({
    ...input,
    roles: { [PRIV]: null, ...input.roles },
    system: { neonSchema: true, healthCheckTable: true, ...input.system },
  });
}

const sqlOf = (steps: PlanStep[]) => steps.map((step) => step.sql);
const phaseSql = (steps: PlanStep[], phase: SpecPhase) =>
  sqlOf(steps.filter((step) => step.phase === phase));

Deno.test("fresh cluster: phases in the reference order, global before per-database", () => {
  const plan = planSpecApply(
    snapshot(),
    spec({
      cluster: {
        roles: [{ name: "alice", encrypted_password: MD5 }],
        databases: [{ name: "app", owner: "alice" }],
        settings: [{
          name: "shared_preload_libraries",
          value: "neon,pg_stat_statements",
          vartype: "string",
        }],
      },
    }),
    OPTIONS,
  );
  const phases = plan.steps.map((step) => step.phase);
  const ranks = phases.map((phase) => PHASE_ORDER.indexOf(phase));
  assert.deepEqual(ranks, [...ranks].sort((a, b) => a - b), phases.join(", "));
  assert.deepEqual([...new Set(phases)], [
    "CreatePrivilegedRole",
    "CreateAndAlterRoles",
    "CreateAndAlterDatabases",
    "CreateSchemaNeon",
    "ChangeSchemaPerms",
    "HandleOtherExtensions",
    "CreateAvailabilityCheck",
  ]);
  assert.deepEqual(sqlOf(plan.steps.slice(0, 4)), [
    'CREATE ROLE "neon_superuser" CREATEDB CREATEROLE NOLOGIN REPLICATION BYPASSRLS IN ROLE pg_read_all_data, pg_write_all_data',
    `CREATE ROLE "alice" INHERIT CREATEROLE CREATEDB BYPASSRLS REPLICATION IN ROLE "neon_superuser" LOGIN PASSWORD 'md5${MD5}'`,
    'CREATE DATABASE "app" OWNER "alice"',
    'GRANT ALL PRIVILEGES ON DATABASE "app" TO "neon_superuser"',
  ]);
  // A database the snapshot has not looked into gets run-time guarded statements.
  const perDb = plan.steps.filter((step) => step.stage === "per-database");
  assert.ok(perDb.every((step) => step.database === "app" && step.sql.startsWith("DO $")));
  assert.equal(perDb.length, 3);
  assert.ok(plan.steps.every((step) => step.stage !== "per-database" || step.database));
  assert.match(plan.notes.join("\n"), /neon extension is not available/);
});

Deno.test("an already-applied spec plans nothing", () => {
  const applied = spec({
    cluster: {
      roles: [
        { name: "md5 role", encrypted_password: MD5 },
        { name: "scram role", encrypted_password: SCRAM },
        { name: "no password", encrypted_password: null },
        { name: "web_access" },
      ],
      databases: [{ name: "app", owner: "md5 role" }, { name: "postgres", owner: "cloud_admin" }],
      settings: [{
        name: "shared_preload_libraries",
        value: "pg_stat_statements",
        vartype: "string",
      }],
    },
    delta_operations: [
      { action: "delete_db", name: "gone db" },
      { action: "rename_db", name: "old app", new_name: "app" },
      { action: "rename_role", name: "old role", new_name: "md5 role" },
      { action: "delete_role", name: "gone role" },
    ],
    drop_subscriptions_before_start: true,
    audit_log_level: "Base",
  });
  const plan = planSpecApply(
    appliedSnapshot({
      roles: {
        "md5 role": `md5${MD5}`,
        "scram role": SCRAM,
        "no password": null,
        "web_access": null,
      },
      databases: {
        app: { owner: "md5 role" },
        postgres: { owner: "cloud_admin", settings: ["pgaudit.log=none"] },
      },
      details: {
        app: { ...APPLIED_DETAILS, webAccessCanCreate: true },
        postgres: { ...APPLIED_DETAILS, webAccessCanCreate: true },
      },
      system: {
        dropSubscriptionsDone: true,
        extensions: new Map([
          ["pg_stat_statements", { version: "1.10", schema: "public", relocatable: true }],
          ["pgaudit", { version: "1.7", schema: "public", relocatable: true }],
        ]),
      },
    }),
    applied,
    OPTIONS,
  );
  assert.deepEqual(plan.steps, []);
  assert.equal(formatPlan(plan).includes(";"), false);
});

Deno.test("passwords: md5 and SCRAM compare with what pg_authid stores", () => {
  const roles = [
    { name: "same md5", encrypted_password: MD5 },
    { name: "new md5", encrypted_password: MD5 },
    { name: "same scram", encrypted_password: SCRAM },
    { name: "md5 to scram", encrypted_password: SCRAM },
    { name: "to null", encrypted_password: null },
    { name: "both null" },
  ];
  const plan = planSpecApply(
    appliedSnapshot({
      roles: {
        "same md5": `md5${MD5}`,
        "new md5": "md50123456789abcdef0123456789abcdef",
        "same scram": SCRAM,
        "md5 to scram": `md5${MD5}`,
        "to null": `md5${MD5}`,
        "both null": null,
      },
    }),
    spec({ cluster: { roles } }),
    OPTIONS,
  );
  assert.deepEqual(phaseSql(plan.steps, "CreateAndAlterRoles"), [
    `ALTER ROLE "new md5" LOGIN PASSWORD 'md5${MD5}'`,
    `ALTER ROLE "md5 to scram" LOGIN PASSWORD '${SCRAM}'`,
    `ALTER ROLE "to null" LOGIN PASSWORD NULL`,
  ]);
});

Deno.test("role options are kept, jwks roles get no privileges", () => {
  const plan = planSpecApply(
    appliedSnapshot(),
    spec({
      cluster: {
        roles: [
          {
            name: "limited",
            options: [{ name: "CONNECTION LIMIT", value: "5", vartype: "integer" }],
          },
          { name: "jwt_user" },
        ],
      },
      local_proxy_config: {
        jwks: [{ id: "1", role_names: ["jwt_user"], jwks_url: "https://x", provider_name: "p" }],
      },
    }),
    OPTIONS,
  );
  assert.deepEqual(phaseSql(plan.steps, "CreateAndAlterRoles"), [
    `CREATE ROLE "limited" INHERIT CREATEROLE CREATEDB BYPASSRLS REPLICATION IN ROLE "neon_superuser" CONNECTION LIMIT 5 LOGIN PASSWORD NULL`,
    `CREATE ROLE "jwt_user" LOGIN PASSWORD NULL`,
  ]);
});

Deno.test("rename_role renames an existing role and sets its password again", () => {
  const renamed = spec({
    cluster: { roles: [{ name: 'zenith "new"', encrypted_password: MD5 }] },
    delta_operations: [{ action: "rename_role", name: "zenith new", new_name: 'zenith "new"' }],
  });
  const plan = planSpecApply(
    appliedSnapshot({ roles: { "zenith new": `md5${MD5}` } }),
    renamed,
    OPTIONS,
  );
  assert.deepEqual(sqlOf(plan.steps), [
    'ALTER ROLE "zenith new" RENAME TO "zenith ""new"""',
    `ALTER ROLE "zenith ""new""" LOGIN PASSWORD 'md5${MD5}'`,
  ]);
  assert.deepEqual(sqlOf(plan.steps).map((_, i) => plan.steps[i].phase), [
    "RenameRoles",
    "CreateAndAlterRoles",
  ]);

  // Already renamed: nothing to do.
  const again = planSpecApply(
    appliedSnapshot({ roles: { 'zenith "new"': `md5${MD5}` } }),
    renamed,
    OPTIONS,
  );
  assert.deepEqual(again.steps, []);
});

Deno.test("database renames, deletes, owner changes and invalid databases", () => {
  const plan = planSpecApply(
    appliedSnapshot({
      roles: { alice: null, bob: null },
      databases: {
        "DB": { owner: "alice" },
        "zenith_test": { owner: "alice", isTemplate: true },
        "broken": { owner: "alice", invalid: true },
        "keep": { owner: "alice" },
      },
      details: { DB: APPLIED_DETAILS, keep: APPLIED_DETAILS },
    }),
    spec({
      cluster: {
        roles: [{ name: "alice" }, { name: "bob" }],
        databases: [
          { name: "DB2", owner: "alice" },
          { name: "keep", owner: "bob" },
          { name: "broken", owner: "alice" },
        ],
      },
      delta_operations: [
        { action: "delete_db", name: "zenith_test" },
        { action: "rename_db", name: "DB", new_name: "DB2" },
        { action: "delete_db", name: "never existed" },
        { action: "rename_db", name: "never existed", new_name: "x" },
        { action: "frobnicate", name: "keep" },
      ],
    }),
    OPTIONS,
  );
  assert.deepEqual(sqlOf(plan.steps.filter((step) => step.stage === "global")), [
    'DROP DATABASE IF EXISTS "broken"',
    'ALTER DATABASE "zenith_test" IS_TEMPLATE false',
    'DROP DATABASE IF EXISTS "zenith_test" WITH (FORCE)',
    'ALTER DATABASE "DB" RENAME TO "DB2"',
    'ALTER DATABASE "keep" OWNER TO "bob"',
    'CREATE DATABASE "broken" OWNER "alice"',
    'GRANT ALL PRIVILEGES ON DATABASE "broken" TO "neon_superuser"',
  ]);
  // The renamed database keeps its inspected details: nothing to do in it.
  assert.equal(plan.steps.some((step) => step.database === "DB2"), false);
  assert.ok(plan.steps.some((step) => step.database === "broken"));
});

Deno.test("rename without new_name is a plan error", () => {
  assert.throws(
    () =>
      planSpecApply(
        appliedSnapshot({ databases: { a: { owner: "cloud_admin" } } }),
        spec({ delta_operations: [{ action: "rename_db", name: "a" }] }),
        OPTIONS,
      ),
    SpecPlanError,
  );
});

Deno.test("delete_role: per-database cleanup, except where the role owns the database, then DROP ROLE", () => {
  const role = "'); MALFORMED SQL $$ $x$ $/;5%$ %I";
  const plan = planSpecApply(
    appliedSnapshot({
      roles: { [role]: null, owner1: null },
      databases: { db1: { owner: "owner1" }, owned: { owner: role } },
      details: { db1: APPLIED_DETAILS, owned: APPLIED_DETAILS },
    }),
    spec({
      cluster: {
        roles: [{ name: "owner1" }],
        databases: [{ name: "db1", owner: "owner1" }, { name: "owned", owner: role }],
      },
      delta_operations: [{ action: "delete_role", name: role }, {
        action: "delete_role",
        name: "unknown",
      }],
    }),
    OPTIONS,
  );
  const quoted = `"'); MALFORMED SQL $$ $x$ $/;5%$ %I"`;
  const cleanup = plan.steps.filter((step) => step.phase === "DeleteDBRoleReferences");
  assert.deepEqual(cleanup.map((step) => step.database), [
    "db1",
    "db1",
    "db1",
    "postgres",
    "postgres",
    "postgres",
  ]);
  assert.equal(cleanup[0].sql, `REASSIGN OWNED BY ${quoted} TO "owner1"`);
  assert.equal(cleanup[3].sql, `REASSIGN OWNED BY ${quoted} TO "cloud_admin"`);
  assert.equal(cleanup[2].sql, `DROP OWNED BY ${quoted}`);
  // The role name is a dollar-quoted literal whose tags cannot be closed by the name.
  const revoke = cleanup[1].sql;
  assert.ok(revoke.startsWith("DO $xxx$"), revoke);
  assert.ok(revoke.includes(`target name := $xx$${role}$xx$;`), revoke);
  assert.ok(revoke.trimEnd().endsWith("END $xxx$"));
  assert.deepEqual(phaseSql(plan.steps, "DropRoles"), [`DROP ROLE IF EXISTS ${quoted}`]);
  assert.equal(plan.steps.at(-1)?.phase, "DropRoles");
});

Deno.test("tricky names are quoted, never interpolated raw", () => {
  const names = [
    "role with spaces",
    "'; SELECT pg_sleep(1000);",
    "\";with ';injections $$ $x$ $ %I !/\\&#@",
    '"quoted"',
    "role$x$",
    "$xx$",
    "x".repeat(63),
    "emoji 🐘\t",
  ];
  const plan = planSpecApply(
    appliedSnapshot(),
    spec({
      cluster: {
        roles: names.map((name) => ({ name })),
        databases: names.map((name) => ({ name, owner: name })),
      },
    }),
    OPTIONS,
  );
  for (const name of names) {
    const q = `"${name.replaceAll('"', '""')}"`;
    assert.ok(plan.steps.some((step) => step.sql.startsWith(`CREATE ROLE ${q} `)), name);
    assert.ok(plan.steps.some((step) => step.sql === `CREATE DATABASE ${q} OWNER ${q}`), name);
    const ownerBlock = plan.steps.find((step) =>
      step.database === name && step.sql.includes("ALTER SCHEMA public OWNER TO %I")
    );
    assert.ok(ownerBlock, name);
    const outer = ownerBlock.sql.match(/^DO (\$x+\$)/)?.[1] as string;
    assert.ok(outer, ownerBlock.sql);
    // The outer tag appears exactly twice: it opens and closes the block.
    assert.equal(ownerBlock.sql.split(outer).length, 3, ownerBlock.sql);
  }
});

Deno.test("ChangeSchemaPerms plans only what the snapshot lacks", () => {
  const plan = planSpecApply(
    appliedSnapshot({
      roles: { owner: null, web_access: null },
      databases: { a: { owner: "owner" }, b: { owner: "owner" }, c: { owner: "owner" } },
      details: {
        a: { ...APPLIED_DETAILS, publicSchemaOwner: "cloud_admin", webAccessCanCreate: true },
        b: { ...APPLIED_DETAILS, tableDefaultsGranted: false },
        c: { ...APPLIED_DETAILS, publicSchemaOwner: null, tableDefaultsGranted: false },
      },
    }),
    spec({
      cluster: {
        roles: [{ name: "owner" }, { name: "web_access" }],
        databases: ["a", "b", "c"].map((name) => ({ name, owner: "owner" })),
      },
    }),
    OPTIONS,
  );
  assert.deepEqual(plan.steps.map((step) => [step.database, step.sql]), [
    ["a", 'ALTER SCHEMA public OWNER TO "owner"'],
    ["b", "GRANT CREATE ON SCHEMA public TO web_access"],
    [
      "b",
      'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO "neon_superuser" WITH GRANT OPTION',
    ],
  ]);
});

Deno.test("restricted and missing databases get no per-database work", () => {
  const plan = planSpecApply(
    appliedSnapshot({
      roles: { o: null, victim: null },
      databases: { locked: { owner: "o", restrictConn: true } },
    }),
    spec({
      cluster: { roles: [{ name: "o" }], databases: [{ name: "locked", owner: "o" }] },
      delta_operations: [{ action: "delete_role", name: "victim" }],
    }),
    OPTIONS,
  );
  assert.equal(plan.steps.some((step) => step.database === "locked"), false);
  assert.match(plan.notes.join("\n"), /"locked" does not accept connections/);
});

Deno.test("drop_subscriptions_before_start: once per timeline", () => {
  const input: SnapshotInput = {
    roles: { o: null },
    databases: {
      subs: { owner: "o", subscriptions: 2 },
      nosubs: { owner: "o" },
      "gone db": { owner: "o", subscriptions: 1 },
    },
    details: { subs: APPLIED_DETAILS, nosubs: APPLIED_DETAILS },
  };
  const withDrop = spec({
    cluster: {
      roles: [{ name: "o" }],
      databases: [{ name: "subs", owner: "o" }, { name: "nosubs", owner: "o" }],
    },
    delta_operations: [{ action: "delete_db", name: "gone db" }],
    drop_subscriptions_before_start: true,
    timeline_id: "f9e8d7c6b5a40392817160f5e4d3c2b1",
  });
  const plan = planSpecApply(appliedSnapshot(input), withDrop, OPTIONS);
  assert.deepEqual(
    plan.steps.map((step) => [step.stage, step.phase, step.database ?? ""]),
    [
      ["pre-drop", "DropLogicalSubscriptions", "gone db"],
      ["global", "RenameAndDeleteDatabases", ""],
      ["per-database", "DropLogicalSubscriptions", "subs"],
      ["final", "FinalizeDropLogicalSubscriptions", ""],
      ["final", "FinalizeDropLogicalSubscriptions", ""],
    ],
  );
  assert.match(plan.steps[0].sql, /WHERE d\.datname = \$x\$gone db\$x\$;/);
  assert.match(plan.steps.at(-1)!.sql, /VALUES \(1, 'f9e8d7c6b5a40392817160f5e4d3c2b1'\)/);

  // Recorded for this timeline: nothing, even though "subs" still has subscriptions.
  const recorded = planSpecApply(
    appliedSnapshot({
      roles: input.roles,
      databases: { subs: { owner: "o", subscriptions: 2 }, nosubs: { owner: "o" } },
      details: input.details,
      system: { dropSubscriptionsDone: true },
    }),
    withDrop,
    OPTIONS,
  );
  assert.deepEqual(recorded.steps, []);
});

Deno.test("neon extension: planned when the server has it, a note otherwise", () => {
  const none = planSpecApply(appliedSnapshot(), spec(), OPTIONS);
  assert.deepEqual(none.steps, []);
  assert.equal(none.notes.length, 1);

  const available = planSpecApply(
    appliedSnapshot({ system: { neonExtensionDefaultVersion: "1.6" } }),
    spec(),
    OPTIONS,
  );
  assert.deepEqual(phaseSql(available.steps, "HandleNeonExtension"), [
    "CREATE EXTENSION IF NOT EXISTS neon WITH SCHEMA neon",
  ]);
  const misplaced = planSpecApply(
    appliedSnapshot({
      system: {
        neonExtensionDefaultVersion: "1.6",
        extensions: new Map([["neon", { version: "1.5", schema: "public", relocatable: false }]]),
      },
    }),
    spec(),
    OPTIONS,
  );
  assert.deepEqual(phaseSql(misplaced.steps, "HandleNeonExtension"), [
    "UPDATE pg_catalog.pg_extension SET extrelocatable = true WHERE extname = 'neon' AND extrelocatable = false",
    "ALTER EXTENSION neon SET SCHEMA neon",
    "ALTER EXTENSION neon UPDATE",
  ]);
});

Deno.test("audit levels add pgaudit phases last", () => {
  const plan = planSpecApply(appliedSnapshot(), spec({ audit_log_level: "Full" }), OPTIONS);
  assert.deepEqual(plan.steps.map((step) => step.phase), [
    "CreatePgauditExtension",
    "CreatePgauditlogtofileExtension",
    "DisablePostgresDBPgAudit",
  ]);
  assert.equal(plan.steps[2].sql, "ALTER DATABASE postgres SET pgaudit.log TO 'none'");
});

Deno.test("skip_pg_catalog_updates plans nothing", () => {
  const plan = planSpecApply(
    snapshot(),
    spec({ skip_pg_catalog_updates: true, cluster: { roles: [{ name: "a" }] } }),
    OPTIONS,
  );
  assert.deepEqual(plan.steps, []);
});

Deno.test("databasesToInspect lists spec databases and rename sources", () => {
  assert.deepEqual(
    databasesToInspect(spec({
      cluster: { databases: [{ name: "a", owner: "o" }, { name: "b", owner: "o" }] },
      delta_operations: [{ action: "rename_db", name: "old b", new_name: "b" }, {
        action: "delete_db",
        name: "c",
      }],
    })),
    ["a", "b", "old b"],
  );
});

Deno.test("formatPlan prints each statement with its phase and purpose", () => {
  const plan = planSpecApply(snapshot(), spec(), OPTIONS);
  const text = formatPlan(plan);
  assert.match(text, /^-- note: the neon extension is not available/m);
  assert.match(
    text,
    /^-- CreatePrivilegedRole: create the privileged role "neon_superuser"\nCREATE ROLE/m,
  );
  assert.match(text, /^CREATE SCHEMA IF NOT EXISTS neon;$/m);
});

Deno.test("concurrency: max_connections mapping for startup, clamp for reconfigure", () => {
  const withMax = (value: string | null, conf?: string): ComputeSpec =>
    spec({
      cluster: {
        settings: value === null ? [] : [{ name: "max_connections", value, vartype: "integer" }],
        postgresql_conf: conf,
      },
    });
  assert.equal(concurrencyForStartup(withMax("0")), 1);
  assert.equal(concurrencyForStartup(withMax("5")), 5);
  assert.equal(concurrencyForStartup(withMax("10")), 10);
  assert.equal(concurrencyForStartup(withMax("29")), 10);
  assert.equal(concurrencyForStartup(withMax("100")), 33);
  assert.equal(concurrencyForStartup(withMax("299")), 99);
  assert.equal(concurrencyForStartup(withMax("300")), 100);
  assert.equal(concurrencyForStartup(withMax("5000")), 100);
  assert.equal(concurrencyForStartup(withMax(null)), 10);
  assert.equal(
    concurrencyForStartup(withMax(null, "shared_buffers=1MB\n max_connections = 60 \n")),
    20,
  );
  assert.equal(concurrencyForStartup(withMax("lots")), 10);
  assert.equal(concurrencyForReconfigure(spec({ reconfigure_concurrency: 0 })), 1);
  assert.equal(concurrencyForReconfigure(spec({ reconfigure_concurrency: 8 })), 8);
  assert.equal(concurrencyForReconfigure(spec()), 1);
});

Deno.test("lanes: role and database statements, never renames, drops, templates or OIDs", () => {
  const plan = planSpecApply(
    snapshot({
      roles: { old: null, alice: null },
      databases: { gone: { owner: "alice" }, owned: { owner: "cloud_admin" } },
      details: { owned: APPLIED_DETAILS },
    }),
    spec({
      cluster: {
        roles: [
          { name: "alice", encrypted_password: MD5 },
          { name: "bob" },
          {
            name: "carol",
            options: [{ name: "CONNECTION LIMIT", value: "3", vartype: "integer" }],
          },
        ],
        databases: [
          { name: "a", owner: "alice" },
          { name: "owned", owner: "bob" },
          {
            name: "copy",
            owner: "bob",
            options: [{ name: "TEMPLATE", value: "a", vartype: "enum" }],
          },
          {
            name: "clean",
            owner: "bob",
            options: [{ name: "TEMPLATE", value: "template0", vartype: "enum" }],
          },
          {
            name: "fixed",
            owner: "bob",
            options: [{ name: "OID", value: "70000", vartype: "int" }],
          },
        ],
      },
      delta_operations: [
        { action: "rename_role", name: "old", new_name: "older" },
        { action: "delete_db", name: "gone" },
      ],
    }),
    OPTIONS,
  );
  const lanes = plan.steps
    .filter((step) => step.stage === "global")
    .map((step) => [step.phase, step.lane ?? null]);
  assert.deepEqual(lanes, [
    ["CreatePrivilegedRole", null],
    ["RenameRoles", null],
    ["CreateAndAlterRoles", 'role "alice"'],
    ["CreateAndAlterRoles", 'role "bob"'],
    ["CreateAndAlterRoles", 'role "carol"'],
    ["RenameAndDeleteDatabases", null],
    ["CreateAndAlterDatabases", 'database "a"'],
    ["CreateAndAlterDatabases", 'database "a"'],
    ["CreateAndAlterDatabases", 'database "owned"'],
    ["CreateAndAlterDatabases", null],
    ["CreateAndAlterDatabases", null],
    ["CreateAndAlterDatabases", 'database "clean"'],
    ["CreateAndAlterDatabases", 'database "clean"'],
    ["CreateAndAlterDatabases", null],
    ["CreateAndAlterDatabases", null],
    ["CreateSchemaNeon", null],
  ]);
  assert.ok(plan.steps.every((step) => step.database === undefined || step.lane === undefined));
});
