/**
 * Everything Postgres would refuse is refused at the door, on a running
 * compute: each rule of spec validation (names with a NUL byte or over 63
 * bytes, reserved role names, settings `postgresql.conf` cannot hold, option
 * clauses Postgres does not take, owners neither the spec nor the catalog has,
 * delta operations on compute_ctl's own objects), query parameters and bodies
 * that cannot name a database, and oversized or deeply nested bodies, each
 * answered 4xx with its exact message while the status, the catalog, the
 * settings and `postgresql.conf` stay as they were. Then a spec full of
 * hostile but legal names (quotes, backslashes, `$$`, semicolons, 63-byte
 * and unicode names) is applied exactly, twice, the second time without DDL.
 */

import { type ComputeHandle, type JsonObject, startCluster } from "../../harness/cluster.ts";
import { catalogFingerprint, fingerprintChanges } from "../_support/bad_input_target.ts";
import { migrationsRecorded, RecoveryTally, respec } from "../_support/recovery_tally.ts";
import { eventually, loggedDdl, logThroughMarker, query, show } from "./_helpers.ts";

const COMPUTE_CTL_CONFIG = { jwks: { keys: [] } };
const SHAPE = "failed to deserialize the json body into the target type: ";

/** One request that must be refused, and its exact answer. */
interface Refusal {
  label: string;
  send(compute: ComputeHandle): Promise<{ status: number; text: string; body: unknown }>;
  status: number;
  error: string;
}

const role = (name: string, options: JsonObject[] | null = null) => ({ name, options });
const setting = (name: string, value: string | null, vartype = "string") => ({
  name,
  value,
  vartype,
});

/** `/configure` with the generated spec's roles/databases plus `changes` (and `extra` on top). */
function configureWith(
  cluster: (generated: JsonObject) => JsonObject,
  extra: JsonObject = {},
): Refusal["send"] {
  return (compute) =>
    compute.configure({
      spec: respec(compute, cluster(compute.spec.cluster as JsonObject), extra),
      compute_ctl_config: COMPUTE_CTL_CONFIG,
    });
}

const addRole = (entry: JsonObject) => (generated: JsonObject) => ({
  roles: [...generated.roles as JsonObject[], entry],
});
const addDatabase = (entry: JsonObject) => (generated: JsonObject) => ({
  databases: [...generated.databases as JsonObject[], entry],
});
const settings = (...entries: JsonObject[]) => () => ({ settings: entries });
const deltas = (...ops: JsonObject[]) => configureWith(() => ({}), { delta_operations: ops });

const TOO_LONG = "is longer than 63 bytes (postgresql's limit for names)";

/** Refused by the spec schema: 422, the path and the rule (lower-cased, as every 422 is). */
const SCHEMA_REFUSALS: Refusal[] = [
  [
    "role name with NUL",
    addRole(role("bad\0role")),
    "spec.cluster.roles.1.name: contains a nul byte",
  ],
  ["64-byte role name", addRole(role("r".repeat(64))), `spec.cluster.roles.1.name: ${TOO_LONG}`],
  [
    "64-byte unicode role name",
    addRole(role("é".repeat(32))),
    `spec.cluster.roles.1.name: ${TOO_LONG}`,
  ],
  [
    "1.5 MB database name",
    addDatabase({ name: "d".repeat(1_500_000), owner: "alice" }),
    `spec.cluster.databases.1.name: ${TOO_LONG}`,
  ],
  [
    "reserved role name",
    addRole(role("pg_evil")),
    'spec.cluster.roles.1.name: is reserved in postgresql ("public", "none" and names starting with "pg_")',
  ],
  [
    "password with NUL",
    addRole({ name: "pw", encrypted_password: "abc\0" }),
    "spec.cluster.roles.1.encrypted_password: contains a nul byte",
  ],
  [
    "setting name with SQL",
    settings(setting("work_mem; drop", "1MB")),
    "spec.cluster.settings.0.name: is not a valid setting name",
  ],
  [
    "include directive as a setting",
    settings(setting("include", "/etc/passwd")),
    "spec.cluster.settings.0.name: is a postgresql.conf directive, not a setting",
  ],
  [
    "unquoted value of two tokens",
    settings(setting("work_mem", "12 MB", "integer")),
    'spec.cluster.settings.0.value: is not a single postgresql.conf value: give it vartype "string" to have it quoted',
  ],
  [
    "quoted value with a line break",
    settings(setting("application_name", "a\nshared_preload_libraries='x'")),
    "spec.cluster.settings.0.value: contains a line break, which postgresql.conf cannot hold",
  ],
  [
    "setting without a value",
    settings(setting("work_mem", null)),
    "spec.cluster.settings.0.value: has no value",
  ],
  [
    "role option that is SQL",
    addRole(role("opt", [setting("SUPERUSER; DROP DATABASE appdb; --", null, "bool")])),
    "spec.cluster.roles.1.options.0.name: is not a role option compute_ctl can apply (superuser, " +
    "createdb, createrole, inherit, replication, bypassrls, their no forms, connection limit or valid until)",
  ],
  [
    "role option compute_ctl already writes",
    addRole(role("opt", [setting("NOCREATEDB", null, "bool")])),
    "spec.cluster.roles.1.options.0.name: conflicts with inherit createrole createdb bypassrls " +
    "replication, which compute_ctl gives every role that local_proxy_config.jwks does not name",
  ],
  [
    "database OWNER option",
    addDatabase({ name: "o", owner: "alice", options: [setting("OWNER", "cloud_admin")] }),
    "spec.cluster.databases.1.options.0.name: is set by the database's owner field",
  ],
  [
    "database option value that is SQL",
    addDatabase({
      name: "o",
      owner: "alice",
      options: [setting("TEMPLATE", "template0; DROP", "enum")],
    }),
    'spec.cluster.databases.1.options.0.value: must be an integer or a plain identifier unless its vartype is "string"',
  ],
  [
    "postgresql_conf that does not parse",
    () => ({ postgresql_conf: "port = 5432\nthis is not = a setting\n" }),
    "spec.cluster.postgresql_conf: line 2 is not valid postgresql.conf syntax",
  ],
].map(([label, cluster, error]) => ({
  label: label as string,
  send: configureWith(cluster as (generated: JsonObject) => JsonObject),
  status: 422,
  error: `${SHAPE}${error}`,
}));

/** Refused after a look at the running Postgres: 400, before the status changes. */
const CATALOG_REFUSALS: Refusal[] = [
  {
    label: "owner nobody has",
    send: configureWith(addDatabase({ name: "orphan", owner: "ghost" })),
    status: 400,
    error: 'databases[1].owner: role "ghost" is neither in the spec nor in the catalog',
  },
  {
    label: "setting this Postgres does not have",
    send: configureWith(settings(setting("work_mme", "1MB"))),
    status: 400,
    error: 'settings[0].name: unrecognized configuration parameter "work_mme"',
  },
  {
    label: "rename onto an existing role",
    send: deltas({ action: "rename_role", name: "alice", new_name: "neon_superuser" }),
    status: 400,
    error: 'delta_operations[0].new_name: role "neon_superuser" already exists',
  },
  {
    label: "drop the database compute_ctl connects to",
    send: deltas({ action: "delete_db", name: "postgres" }),
    status: 400,
    error: 'delta_operations[0].name: database "postgres" is the one compute_ctl connects to; ' +
      "it cannot be dropped or renamed",
  },
  {
    label: "drop the role compute_ctl works as",
    send: deltas({ action: "delete_role", name: "cloud_admin" }),
    status: 400,
    error: 'delta_operations[0].name: role "cloud_admin" is one compute_ctl works as; ' +
      "it cannot be dropped or renamed",
  },
  {
    label: "delta operation naming a NUL",
    send: deltas({ action: "delete_db", name: "x\0" }),
    status: 422,
    error: `${SHAPE}spec.delta_operations.0.name: contains a nul byte`,
  },
];

const raw = (body: string) => (compute: ComputeHandle) =>
  compute.request("POST", "/configure", { body });
const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

/** Query parameters and bodies that cannot name a database, and oversized or nested bodies. */
const OTHER_REFUSALS: Refusal[] = [
  ["%00", "database: contains a NUL byte"],
  ["", "database: is empty"],
  ["x".repeat(64), "database: is longer than 63 bytes (PostgreSQL's limit for names)"],
].map(([value, error]) => ({
  label: `/database_schema?database=${value.slice(0, 8)}`,
  send: (compute: ComputeHandle) => compute.request("GET", `/database_schema?database=${value}`),
  status: 400,
  error,
}));
OTHER_REFUSALS.push(
  {
    label: "/grants to a role with NUL",
    send: (compute) =>
      compute.request("POST", "/grants", {
        internal: true,
        body: { database: "appdb", schema: "public", privileges: ["USAGE"], role: "alice\0" },
      }),
    status: 422,
    error: `${SHAPE}role: contains a nul byte`,
  },
  {
    label: "/extensions in a 64-byte database",
    send: (compute) =>
      compute.request("POST", "/extensions", {
        internal: true,
        body: { extension: "hstore", database: "d".repeat(64), version: "1.8" },
      }),
    status: 422,
    error: `${SHAPE}database: ${TOO_LONG}`,
  },
  {
    label: "body over 2 MiB",
    send: raw(" ".repeat(3 * 1024 * 1024)),
    status: 413,
    error: "failed to buffer the request body: length limit exceeded",
  },
  {
    label: "spec nested 100000 deep",
    send: raw(`{"spec": ${deep(100_000)}, "compute_ctl_config": {"jwks": {"keys": []}}}`),
    status: 422,
    error: `${SHAPE}spec: invalid input: expected object, received array`,
  },
  {
    label: "object nested 100000 deep",
    send: raw(`{"spec": ${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}}`),
    status: 422,
    error: `${SHAPE}spec.format_version: missing field; spec.cluster: missing field; ` +
      "spec.suspend_timeout_seconds: missing field; compute_ctl_config: missing field",
  },
);

/** Names Postgres takes as they are; the spec applies them exactly. */
const HOSTILE_ROLES = [
  "'; DROP TABLE users; --",
  'double"quote',
  "back\\slash",
  "$$",
  "$x$ tag",
  "semi;colon",
  "r".repeat(63),
  "é".repeat(31) + "x",
  "🐘 unicode ⚡",
  "Public",
  "tab\there",
];
const HOSTILE_DATABASES: [string, string][] = [
  ["db '; DROP DATABASE postgres; --", 'double"quote'],
  ["$$db$$", "$x$ tag"],
  ["é".repeat(31) + "y", "r".repeat(63)],
  ['db "quoted" \\', "back\\slash"],
];
const HOSTILE_VALUE = `it's a \\ "quote" $$ ; -- x`;

function hostileSpec(compute: ComputeHandle): JsonObject {
  const generated = compute.spec.cluster as JsonObject;
  return respec(compute, {
    roles: [...generated.roles as JsonObject[], ...HOSTILE_ROLES.map((name) => role(name))],
    databases: [
      ...generated.databases as JsonObject[],
      ...HOSTILE_DATABASES.map(([name, owner]) => ({ name, owner })),
    ],
    settings: [setting("test.hostile", HOSTILE_VALUE), setting("work_mem", "12MB", "integer")],
  });
}

Deno.test("what Postgres would refuse is refused at the door; hostile legal names apply exactly", async () => {
  const tally = new RecoveryTally("validation at the door");
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "door", postgresqlConf: ["log_statement='all'"] }],
  });
  const compute = cluster.compute("door");
  await migrationsRecorded(compute);
  const confPath = `${compute.pgdata}/postgresql.conf`;
  const conf = await Deno.readTextFile(confPath);
  const before = await catalogFingerprint(compute);

  for (const refusal of [...SCHEMA_REFUSALS, ...CATALOG_REFUSALS, ...OTHER_REFUSALS]) {
    const answer = await refusal.send(compute);
    const error = (answer.body as { error?: string } | null)?.error;
    tally.answer(
      refusal.label,
      answer.status === refusal.status && error === refusal.error,
      `${answer.status} ${answer.text.slice(0, 300)}`,
    );
    const status = await compute.status();
    if (status.status !== "running" || status.error !== null) {
      tally.fail(`${refusal.label}: status`, JSON.stringify(status));
    }
    const changes = fingerprintChanges(before, await catalogFingerprint(compute));
    if (changes.length > 0) tally.fail(`${refusal.label}: catalog`, changes.join("; "));
    if (await Deno.readTextFile(confPath) !== conf) tally.fail(refusal.label, "conf rewritten");
  }

  const spec = hostileSpec(compute);
  for (const round of ["first", "second"]) {
    const ddlBefore = loggedDdl(await logThroughMarker(compute)).length;
    const answer = await compute.configure({ spec, compute_ctl_config: COMPUTE_CTL_CONFIG });
    if (!tally.answer(`hostile names, ${round} apply`, answer.status === 200, answer.text)) {
      tally.unusable(`hostile names, ${round} apply`, answer.text);
    }
    const ddl = loggedDdl(await logThroughMarker(compute)).slice(ddlBefore);
    if (round === "second" && ddl.length > 0) {
      tally.fail("the same spec again", `DDL ran: ${ddl.join(" | ").slice(0, 300)}`);
    }
  }
  const url = compute.postgresUrl;
  const roles = await query<{ rolname: string }>(
    url,
    "SELECT rolname FROM pg_roles WHERE rolname = ANY($1)",
    [HOSTILE_ROLES],
  );
  const missingRoles = HOSTILE_ROLES.filter((name) => !roles.some((row) => row.rolname === name));
  if (missingRoles.length > 0) tally.fail("roles applied exactly", JSON.stringify(missingRoles));
  const databases = await query<{ datname: string; owner: string }>(
    url,
    "SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = ANY($1)",
    [HOSTILE_DATABASES.map(([name]) => name)],
  );
  const found = databases.map((row) => [row.datname, row.owner]);
  for (const expected of HOSTILE_DATABASES) {
    if (!found.some(([name, owner]) => name === expected[0] && owner === expected[1])) {
      tally.fail("databases applied exactly", JSON.stringify(expected));
    }
  }
  // The reload is a SIGHUP, taken in asynchronously.
  let shown: string[] = [];
  await eventually(async () => {
    shown = [await show(url, "test.hostile"), await show(url, "work_mem")];
    return shown[0] === HOSTILE_VALUE && shown[1] === "12MB";
  }, "settings applied exactly").catch(() => tally.fail("settings", JSON.stringify(shown)));
  await tally.finish();
});
