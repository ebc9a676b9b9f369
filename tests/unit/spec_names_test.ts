/**
 * What a spec must be for PostgreSQL to take it as it is, without Postgres:
 * the `postgresql.conf` scanner's rules (checked against a real Postgres 15's
 * `pg_file_settings` while writing them), name rules, role and database
 * option clauses, the 422 issue paths the spec schema gives, the planner's
 * refusals that need the catalog, the admission of pushed specs, and the
 * files a failed reconfiguration puts back.
 */

import assert from "node:assert/strict";
import { confTextProblem, isBareConfValue } from "../../src/api/conf_syntax.ts";
import { computeSpecSchema, formatIssues } from "../../src/api/spec.ts";
import {
  NAME_RULES,
  nameProblem,
  roleNameProblem,
  settingNameProblem,
  settingValueProblem,
} from "../../src/api/spec_names.ts";
import {
  type ClauseOption,
  databaseOptionProblems,
  OPTION_RULES,
  roleOptionProblems,
} from "../../src/api/spec_options.ts";
import { restoreConfigFiles, saveConfigFiles } from "../../src/compute/config_files.ts";
import { acceptsPushedSpec, specAdmission } from "../../src/compute/config_requests.ts";
import { ComputeState, InvalidStatusError } from "../../src/compute/state.ts";
import type { CatalogSnapshot, DatabaseState, RoleState } from "../../src/postgres/catalog.ts";
import { planSpecApply, SpecPlanError } from "../../src/postgres/spec_plan/mod.ts";
import { DEAD_CONNSTR, testParsedSpec } from "../_support/specs.ts";

Deno.test("unquoted setting values: exactly what Postgres 15's scanner takes as one value", () => {
  // Each verdict was read from pg_file_settings for `test.v = <value>`.
  const accepted = [
    "12MB",
    "on",
    "0.5",
    "-1",
    "+5",
    "0x1F",
    "0x1Fkb",
    "a.b.c",
    "C.UTF-8",
    "'q'",
    "'q''x'",
    ".",
    "-.",
    "é",
    "a-b",
    "_x:y/z",
  ];
  const refused = ["12 MB", "a.b", "/path", "1e5", "1.e", "1a2", "3.5GB", "$x", "x$", "", "'a"];
  for (const value of accepted) assert.equal(isBareConfValue(value), true, value);
  for (const value of refused) assert.equal(isBareConfValue(value), false, value);
  // Postgres reads `a#b` as `a` (a comment follows): not the value given, so refused.
  assert.equal(isBareConfValue("a#b"), false);
});

Deno.test("postgresql_conf text: blank, comment and name [=] value lines; the first bad line named", () => {
  const good = "# comment\n\nmax_wal_senders=10\nwal_keep_size 0 # trailing\n" +
    "x.y = 'it''s \\\\ fine'\r\nshared_buffers = 128MB";
  assert.equal(confTextProblem(good), undefined);
  assert.equal(confTextProblem(""), undefined);
  assert.equal(confTextProblem("a = 1\nb = 2 3\n"), "line 2 is not valid postgresql.conf syntax");
  assert.equal(confTextProblem("a =\n"), "line 1 is not valid postgresql.conf syntax");
  assert.equal(confTextProblem("= 1"), "line 1 is not valid postgresql.conf syntax");
  assert.equal(confTextProblem("a.b.c = 1"), "line 1 is not valid postgresql.conf syntax");
  assert.equal(confTextProblem("a = 'open\nb = 1"), "line 1 is not valid postgresql.conf syntax");
  for (const directive of ["include '/etc/passwd'", "Include_If_Exists = 'x'", "include_dir 'd'"]) {
    assert.equal(
      confTextProblem(`a = 1\n${directive}`),
      "line 2 is an include directive, which a spec may not use",
      directive,
    );
  }
});

Deno.test("names: NUL, empty and over 63 UTF-8 bytes refused; role names Postgres reserves", () => {
  assert.equal(nameProblem("x".repeat(63)), undefined);
  assert.equal(nameProblem("bi\ud800x"), NAME_RULES.surrogate, "a lone surrogate");
  assert.equal(nameProblem("\u{1F418}"), undefined, "a surrogate pair is fine");
  assert.equal(nameProblem("é".repeat(31) + "x"), undefined, "63 bytes");
  assert.equal(nameProblem("é".repeat(32)), NAME_RULES.tooLong, "64 bytes in 32 characters");
  assert.equal(nameProblem("x".repeat(64)), NAME_RULES.tooLong);
  assert.equal(nameProblem(""), NAME_RULES.empty);
  assert.equal(nameProblem("a\0b"), NAME_RULES.nul);
  for (const hostile of ["'; DROP TABLE x; --", 'a"b', "back\\slash", "$$", "$x$", "🐘 🐘"]) {
    assert.equal(roleNameProblem(hostile), undefined, hostile);
  }
  for (const reserved of ["public", "none", "pg_monitor", "pg_"]) {
    assert.equal(roleNameProblem(reserved), NAME_RULES.reservedRole, reserved);
  }
  assert.equal(roleNameProblem("Public"), undefined, "quoted names keep their case");
  assert.equal(NAME_RULES.tooLong, "is longer than 63 bytes (PostgreSQL's limit for names)");
  assert.equal(NAME_RULES.nul, "contains a NUL byte");
});

Deno.test("settings: names postgresql.conf takes, values it reads back whole", () => {
  for (const name of ["work_mem", "neon.pageserver_connstring", "_x.y", "A1"]) {
    assert.equal(settingNameProblem(name), undefined, name);
  }
  for (const name of ["a$b", "a.b.c", "x.1y", "1x", "", "a b", "a-b", "work_mem;"]) {
    assert.equal(settingNameProblem(name), NAME_RULES.settingName, name);
  }
  assert.equal(settingNameProblem("Include_Dir"), NAME_RULES.directive);
  assert.equal(settingNameProblem("a\0"), NAME_RULES.nul);
  const value = (value: string | null, vartype = "string") =>
    settingValueProblem({ value, vartype });
  assert.equal(value("it's \\ fine"), undefined);
  assert.equal(value("two\nlines"), NAME_RULES.lineBreak);
  assert.equal(value("nul\0"), NAME_RULES.nul);
  assert.equal(value(null), NAME_RULES.noValue);
  assert.equal(value("12MB", "integer"), undefined);
  assert.equal(value("12 MB", "integer"), NAME_RULES.bareValue);
  assert.equal(value("1; shared_preload_libraries = 'x'", "enum"), NAME_RULES.bareValue);
});

const option = (name: string, value: string | null = null, vartype = "bool"): ClauseOption => ({
  name,
  value,
  vartype,
});

Deno.test("role options: only CREATE ROLE clauses, shaped as Postgres wants them", () => {
  const ok = [
    option("NOSUPERUSER"),
    option("connection limit", "5", "integer"),
    option("VALID UNTIL", "2099-12-31", "string"),
  ];
  assert.deepEqual(roleOptionProblems(ok, { jwksRole: false }), []);
  const problems = roleOptionProblems([
    option("SUPERUSER; DROP DATABASE x"),
    option("LOGIN"),
    option("SUPERUSER", "true"),
    option("CONNECTION LIMIT", "5", "string"),
    option("CONNECTION LIMIT", "-2", "integer"),
    option("VALID UNTIL", "2099-12-31", "timestamp"),
    option("NOSUPERUSER"),
    option("CREATEDB"),
  ], { jwksRole: false });
  assert.deepEqual(problems, [
    { index: 0, field: "name", message: OPTION_RULES.roleOption },
    { index: 1, field: "name", message: OPTION_RULES.roleOption },
    { index: 2, field: "value", message: OPTION_RULES.noValue },
    { index: 3, field: "value", message: OPTION_RULES.integer(-1) },
    { index: 4, field: "name", message: OPTION_RULES.repeated },
    { index: 4, field: "value", message: OPTION_RULES.integer(-1) },
    { index: 5, field: "value", message: OPTION_RULES.string },
    { index: 6, field: "name", message: OPTION_RULES.repeated },
    { index: 7, field: "name", message: OPTION_RULES.granted },
  ]);
  assert.deepEqual(roleOptionProblems([option("NOBYPASSRLS")], { jwksRole: true }), []);
});

Deno.test("database options: CREATE DATABASE's options but OWNER, raw values one SQL token", () => {
  assert.deepEqual(
    databaseOptionProblems([
      option("LC_COLLATE", "C", "string"),
      option("TEMPLATE", "template0", "enum"),
      option("CONNECTION LIMIT", "20", "integer"),
      option("is_template", "false", "bool"),
    ]),
    [],
  );
  assert.deepEqual(
    databaseOptionProblems([
      option("OWNER", "x", "string"),
      option("TEMPLATE", "template0; DROP DATABASE x", "enum"),
      option("LOCALE"),
      option("connection_limit", "20", "string"),
      option("frobnicate", "1", "integer"),
      option("TEMPLATE", "template1", "string"),
    ]),
    [
      { index: 0, field: "name", message: OPTION_RULES.owner },
      { index: 1, field: "value", message: OPTION_RULES.bare },
      { index: 2, field: "value", message: OPTION_RULES.needsValue },
      { index: 3, field: "value", message: OPTION_RULES.integer(-1) },
      { index: 4, field: "name", message: OPTION_RULES.databaseOption },
      { index: 5, field: "name", message: OPTION_RULES.repeated },
    ],
  );
});

function specWith(cluster: Record<string, unknown>, rest: Record<string, unknown> = {}) {
  return {
    format_version: 1,
    suspend_timeout_seconds: 0,
    ...rest,
    cluster: { roles: [], databases: [], ...cluster },
  };
}

function issues(value: unknown): string[] {
  const result = computeSpecSchema.safeParse(value);
  assert.equal(result.success, false, "the spec must be refused");
  return formatIssues(result.error!).split("; ");
}

Deno.test("the spec schema names each refused field by its path", () => {
  assert.deepEqual(
    issues(specWith({
      roles: [{ name: "a\0" }, { name: "r", options: [option("CREATEDB")] }],
      databases: [{ name: "x".repeat(64), owner: "" }],
      settings: [{ name: "a$b", value: "1", vartype: "integer" }],
      postgresql_conf: "ok = 1\nbroken\n",
    }, {
      delta_operations: [{ action: "rename_role", name: "a", new_name: "pg_b" }],
      project_id: "p\nq",
    })),
    [
      `cluster.roles.0.name: ${NAME_RULES.nul}`,
      `cluster.databases.0.name: ${NAME_RULES.tooLong}`,
      `cluster.databases.0.owner: ${NAME_RULES.empty}`,
      "cluster.postgresql_conf: line 2 is not valid postgresql.conf syntax",
      `cluster.settings.0.name: ${NAME_RULES.settingName}`,
      `delta_operations.0.new_name: ${NAME_RULES.reservedRole}`,
      `project_id: ${NAME_RULES.lineBreak}`,
      `cluster.roles.1.options.0.name: ${OPTION_RULES.granted}`,
    ],
  );
  // Ignored actions are not looked at, as Neon ignores them.
  const parsed = computeSpecSchema.safeParse(
    specWith({}, { delta_operations: [{ action: "frobnicate", name: "" }] }),
  );
  assert.equal(parsed.success, true);
});

/** A catalog with `cloud_admin`, `neon_superuser`, `postgres` and the given roles and databases. */
function catalog(roles: string[], databases: Record<string, string> = {}): CatalogSnapshot {
  const roleStates = new Map<string, RoleState>();
  for (const name of ["cloud_admin", "neon_superuser", ...roles]) {
    roleStates.set(name, { name, password: null });
  }
  const dbStates = new Map<string, DatabaseState>();
  for (const [name, owner] of Object.entries({ postgres: "cloud_admin", ...databases })) {
    dbStates.set(name, {
      name,
      owner,
      restrictConn: false,
      invalid: false,
      isTemplate: false,
      settings: [],
      subscriptions: 0,
    });
  }
  return {
    serverVersionNum: 150000,
    currentUser: "cloud_admin",
    roles: roleStates,
    databases: dbStates,
    system: {
      name: "postgres",
      neonSchema: true,
      healthCheckTable: true,
      extensions: new Map(),
      neonExtensionDefaultVersion: null,
      dropSubscriptionsDone: false,
    },
    details: new Map(),
  };
}

function planError(snapshot: CatalogSnapshot, spec: unknown): string {
  try {
    planSpecApply(snapshot, computeSpecSchema.parse(spec), {
      privilegedRoleName: "neon_superuser",
      systemDatabase: "postgres",
    });
  } catch (error) {
    assert.ok(error instanceof SpecPlanError, String(error));
    return error.message;
  }
  throw new Error("the plan was accepted");
}

Deno.test("the planner refuses what the catalog makes impossible, naming the field", () => {
  assert.equal(
    planError(catalog([]), specWith({ databases: [{ name: "db", owner: "ghost" }] })),
    'databases[0].owner: role "ghost" is neither in the spec nor in the catalog',
  );
  // Owners in the spec, in the catalog, or renamed into existence are fine.
  planSpecApply(
    catalog(["old"]),
    computeSpecSchema.parse(specWith({
      roles: [{ name: "new_owner" }, { name: "renamed" }],
      databases: [
        { name: "a", owner: "new_owner" },
        { name: "b", owner: "cloud_admin" },
        { name: "c", owner: "renamed" },
      ],
    }, { delta_operations: [{ action: "rename_role", name: "old", new_name: "renamed" }] })),
    { privilegedRoleName: "neon_superuser", systemDatabase: "postgres" },
  );
  assert.equal(
    planError(
      catalog(["a", "b"]),
      specWith({}, { delta_operations: [{ action: "rename_role", name: "a", new_name: "b" }] }),
    ),
    'delta_operations[0].new_name: role "b" already exists',
  );
  assert.equal(
    planError(
      catalog([], { x: "cloud_admin", y: "cloud_admin" }),
      specWith({}, {
        delta_operations: [
          { action: "delete_db", name: "gone" },
          { action: "rename_db", name: "x", new_name: "y" },
        ],
      }),
    ),
    'delta_operations[1].new_name: database "y" already exists',
  );
  for (
    const [action, name] of [["delete_role", "cloud_admin"], ["rename_role", "neon_superuser"]]
  ) {
    assert.match(
      planError(catalog([]), specWith({}, { delta_operations: [{ action, name, new_name: "z" }] })),
      /^delta_operations\[0\]\.name: role "[a-z_]+" is one compute_ctl works as/,
    );
  }
  assert.match(
    planError(
      catalog([]),
      specWith({}, { delta_operations: [{ action: "delete_db", name: "postgres" }] }),
    ),
    /^delta_operations\[0\]\.name: database "postgres" is the one compute_ctl connects to/,
  );
});

function stateThrough(...statuses: Parameters<ComputeState["transition"]>[0][]): ComputeState {
  const state = new ComputeState();
  for (const status of statuses) state.transition(status);
  return state;
}

Deno.test("a pushed spec is taken when empty, running, or failed by a reconfiguration only", () => {
  assert.equal(acceptsPushedSpec(stateThrough()), true);
  assert.equal(acceptsPushedSpec(stateThrough("init", "running")), true);
  assert.equal(
    acceptsPushedSpec(
      stateThrough("init", "running", "configuration_pending", "configuration", "failed"),
    ),
    true,
  );
  assert.equal(acceptsPushedSpec(stateThrough("init", "failed")), false, "a failed start");
  assert.equal(acceptsPushedSpec(stateThrough("init")), false);
  assert.equal(
    acceptsPushedSpec(stateThrough("init", "running", "refresh_configuration_pending")),
    false,
  );
});

Deno.test("specs are admitted one at a time: the second finds the first queued and gets 412", async () => {
  const state = new ComputeState();
  const installed: string[] = [];
  const admit = specAdmission({
    settings: () => ({ connstr: DEAD_CONNSTR, privilegedRoleName: "neon_superuser" }),
    state,
    postgresEnded: () => new AbortController().signal,
    install: (pspec) => installed.push(pspec.spec.endpoint_id ?? ""),
  });
  const results = await Promise.allSettled([
    admit(testParsedSpec({ endpoint_id: "first" })),
    admit(testParsedSpec({ endpoint_id: "second" })),
  ]);
  assert.equal(results[0].status, "fulfilled");
  assert.equal(results[1].status, "rejected");
  assert.ok((results[1] as PromiseRejectedResult).reason instanceof InvalidStatusError);
  assert.deepEqual(installed, ["first"]);
  assert.equal(state.status, "configuration_pending");
});

Deno.test("a spec arriving after Postgres ended is refused before anything changes", async () => {
  const state = stateThrough("init", "running");
  const ended = new AbortController();
  ended.abort(new Error("postgres is gone"));
  const admit = specAdmission({
    settings: () => ({ connstr: DEAD_CONNSTR, privilegedRoleName: "neon_superuser" }),
    state,
    postgresEnded: () => ended.signal,
    install: () => assert.fail("nothing may be installed"),
  });
  await assert.rejects(admit(testParsedSpec()), /postgres is gone/);
  assert.equal(state.status, "running");
});

Deno.test("the files a failed reconfiguration rewrote are put back; new ones removed", async () => {
  const pgdata = await Deno.makeTempDir({ prefix: "config_files_" });
  try {
    await Deno.writeTextFile(`${pgdata}/postgresql.conf`, "work_mem = '4MB'\n");
    await Deno.writeTextFile(`${pgdata}/pg_hba.conf`, "local all all trust\n");
    await Deno.chmod(`${pgdata}/pg_hba.conf`, 0o640);
    const saved = await saveConfigFiles(pgdata);
    assert.deepEqual(await restoreConfigFiles(saved), [], "nothing changed, nothing written");

    await Deno.writeTextFile(`${pgdata}/postgresql.conf`, "work_mem = 'lots'\n");
    await Deno.writeTextFile(`${pgdata}/pg_hba.conf`, "host all all all trust\n");
    await Deno.writeTextFile(`${pgdata}/server.key`, "new key");
    assert.deepEqual(await restoreConfigFiles(saved), [
      "postgresql.conf",
      "pg_hba.conf",
      "server.key",
    ]);
    assert.equal(await Deno.readTextFile(`${pgdata}/postgresql.conf`), "work_mem = '4MB'\n");
    assert.equal(await Deno.readTextFile(`${pgdata}/pg_hba.conf`), "local all all trust\n");
    assert.equal((await Deno.stat(`${pgdata}/pg_hba.conf`)).mode! & 0o777, 0o640, "mode kept");
    await assert.rejects(Deno.stat(`${pgdata}/server.key`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(pgdata, { recursive: true });
  }
});
