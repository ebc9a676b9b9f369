/**
 * `src/permissions/`: what the command line, the install of `--pgbin` and a
 * spec make the manager use, checked against a fake permission query that
 * grants like Deno does (paths by prefix, programs exactly, hosts with any
 * port, unix sockets exactly), and the one-line refusals that name the
 * setting and the grant.
 */

import assert from "node:assert/strict";
import { SpecError } from "../../src/api/parsed_spec.ts";
import { parseCli } from "../../src/cli.ts";
import { type PermissionQuery, refusals } from "../../src/permissions/refusals.ts";
import {
  assertSpecGranted,
  grantedConfig,
  PermissionRefusedError,
  specRequirements,
} from "../../src/permissions/spec.ts";
import {
  communicatorWarning,
  installCheck,
  startupRequirements,
} from "../../src/permissions/startup.ts";
import { InstallLayoutError } from "../../src/postgres/install_layout.ts";
import { testParsedSpec } from "../_support/specs.ts";

const PG_BIN = "/usr/lib/postgresql/15/bin";

/** Grants, as a permission set lists them. */
interface Grants {
  read?: string[];
  write?: string[];
  run?: string[];
  net?: string[];
}

/** The `compute` set's grants that matter here, as `deno.json` has them. */
const COMPUTE_SET: Required<Grants> = {
  read: ["/tmp", "/var/db/postgres", "/usr/lib/postgresql"],
  write: ["/tmp", "/var/db/postgres"],
  run: [`${PG_BIN}/postgres`, `${PG_BIN}/pg_ctl`],
  net: ["127.0.0.1", "localhost", "[::1]", "0.0.0.0"],
};

/** A query granting `grants` the way Deno matches them; records every descriptor asked. */
function fakeQuery(grants: Grants): PermissionQuery & { asked: string[] } {
  const asked: string[] = [];
  const underAny = (path: string, entries: string[] = []) =>
    entries.some((entry) => path === entry || path.startsWith(`${entry}/`));
  const query = (descriptor: Deno.PermissionDescriptor): Promise<Deno.PermissionState> => {
    let granted = false;
    if (descriptor.name === "read" || descriptor.name === "write") {
      asked.push(`${descriptor.name} ${descriptor.path}`);
      granted = underAny(String(descriptor.path), grants[descriptor.name]);
    } else if (descriptor.name === "run") {
      asked.push(`run ${descriptor.command}`);
      granted = (grants.run ?? []).includes(String(descriptor.command));
    } else if (descriptor.name === "net") {
      const target = String(descriptor.host);
      asked.push(`net ${target}`);
      const host = target.startsWith("unix:") ? target : target.replace(/:\d+$/, "");
      granted = (grants.net ?? []).some((entry) => entry === target || entry === host);
    }
    return Promise.resolve(granted ? "granted" : "prompt");
  };
  return Object.assign(query, { asked });
}

/** A command line as the harness gives one, with `flags` replacing or adding flags. */
function cli(flags: Record<string, string> = {}) {
  const all: Record<string, string> = {
    "--pgdata": "/tmp/compute/pgdata",
    "--connstr": "postgresql://cloud_admin@127.0.0.1:55432/postgres",
    "--compute-id": "compute-one",
    "--pgbin": `${PG_BIN}/postgres`,
    "--external-http-bind": "127.0.0.1",
    ...flags,
  };
  if (all["--control-plane-uri"] === undefined) all["--config"] ??= "/tmp/compute/config.json";
  return parseCli(Object.entries(all).flat(), {});
}

/** The tail every refusal ends with, for `key` and `grant`. */
function howToGrant(grant: string, ...keys: string[]): string {
  const quotedKeys = keys.map((key) => `"${key}"`).join(" and ");
  const flags = keys.map((key) => `--allow-${key}=${grant},<the set's "${key}" list>`).join(" ");
  return `under the permissions this process was started with: add ${JSON.stringify(grant)} to ` +
    `${quotedKeys} in the "compute" permission set of deno.json, or run with ${flags}`;
}

Deno.test("start-up: a harness command line under the compute set is refused nothing", async () => {
  const query = fakeQuery(COMPUTE_SET);
  assert.deepEqual(await refusals(startupRequirements(cli())), []);
  assert.deepEqual(await refusals(startupRequirements(cli()), query), []);
  assert.deepEqual(query.asked, [
    "read /tmp/compute/pgdata",
    "write /tmp/compute/pgdata",
    `run ${PG_BIN}/postgres`,
    `run ${PG_BIN}/pg_ctl`,
    `read ${PG_BIN}/postgres`,
    "net 127.0.0.1:55432",
    "net 127.0.0.1:3080",
    "net 127.0.0.1:3081",
    "read /tmp/compute/config.json",
  ]);
});

Deno.test("start-up: --pgdata outside the grants is refused in one line naming both grants", async () => {
  const lines = await refusals(
    startupRequirements(cli({ "--pgdata": "/opt/not-granted/pgdata" })),
    fakeQuery(COMPUTE_SET),
  );
  assert.deepEqual(lines, [
    "--pgdata /opt/not-granted/pgdata is not readable or writable " +
    howToGrant("/opt/not-granted/pgdata", "read", "write"),
  ]);
});

Deno.test("start-up: --pgdata readable but not writable names write only", async () => {
  const query = fakeQuery({ ...COMPUTE_SET, read: [...COMPUTE_SET.read, "/srv"] });
  const lines = await refusals(startupRequirements(cli({ "--pgdata": "/srv/pg" })), query);
  assert.deepEqual(lines, [`--pgdata /srv/pg is not writable ${howToGrant("/srv/pg", "write")}`]);
});

Deno.test("start-up: a --pgbin elsewhere is one line naming it and pg_ctl, run and read", async () => {
  const lines = await refusals(
    startupRequirements(cli({ "--pgbin": "/opt/pg/bin/postgres" })),
    fakeQuery(COMPUTE_SET),
  );
  assert.deepEqual(lines, [
    "--pgbin /opt/pg/bin/postgres (with pg_ctl beside it) cannot be run or read under the " +
    'permissions this process was started with: add "/opt/pg/bin/postgres" and ' +
    '"/opt/pg/bin/pg_ctl" to "run", and "/opt/pg/bin/postgres" to "read" in the "compute" ' +
    "permission set of deno.json, or run with " +
    `--allow-run=/opt/pg/bin/postgres,/opt/pg/bin/pg_ctl,<the set's "run" list> ` +
    `--allow-read=/opt/pg/bin/postgres,<the set's "read" list>`,
  ]);
});

Deno.test("start-up: a readable --pgbin whose pg_ctl is not granted names pg_ctl only", async () => {
  const query = fakeQuery({
    ...COMPUTE_SET,
    read: [...COMPUTE_SET.read, "/opt"],
    run: ["/opt/pg/bin/postgres"],
  });
  const lines = await refusals(
    startupRequirements(cli({ "--pgbin": "/opt/pg/bin/postgres", "--pgdata": "/opt/pgdata" })),
    query,
  );
  assert.deepEqual(lines, [
    "--pgdata /opt/pgdata is not writable " + howToGrant("/opt/pgdata", "write"),
    "--pgbin /opt/pg/bin/postgres (with pg_ctl beside it) cannot be run " +
    howToGrant("/opt/pg/bin/pg_ctl", "run"),
  ]);
});

Deno.test("start-up: a bare --pgbin is found through PATH and not read", () => {
  const [, pgbin] = startupRequirements(cli({ "--pgbin": "postgres" }));
  assert.deepEqual(pgbin.needs.map((need) => `${need.access} ${need.target}`), [
    "run postgres",
    "run pg_ctl",
  ]);
});

Deno.test("start-up: listen addresses are checked with their ports; IPv6 in brackets", async () => {
  const query = fakeQuery({ ...COMPUTE_SET, net: ["127.0.0.1"] });
  const lines = await refusals(
    startupRequirements(
      cli({ "--external-http-bind": "0.0.0.0", "--internal-http-bind": "::" }),
    ),
    query,
  );
  assert.deepEqual(lines, [
    `--external-http-bind 0.0.0.0 (port 3080) cannot be listened on ${
      howToGrant("0.0.0.0", "net")
    }`,
    `--internal-http-bind :: (port 3081) cannot be listened on ${howToGrant("[::]", "net")}`,
  ]);
  assert.ok(query.asked.includes("net 0.0.0.0:3080"));
  assert.ok(query.asked.includes("net [::]:3081"));
});

Deno.test("start-up: URL flags are checked by host and port, never quoting the URL", async () => {
  const query = fakeQuery(COMPUTE_SET);
  const lines = await refusals(
    startupRequirements(cli({
      "--control-plane-uri": "https://user:cp-password@cp.example.internal/api",
      "--remote-ext-base-url": "http://ext.example.internal:9000",
    })),
    query,
  );
  assert.deepEqual(lines, [
    `--control-plane-uri's host cp.example.internal:443 cannot be reached ${
      howToGrant("cp.example.internal", "net")
    }`,
    `--remote-ext-base-url's host ext.example.internal:9000 cannot be reached ${
      howToGrant("ext.example.internal", "net")
    }`,
  ]);
  assert.ok(lines.every((line) => !line.includes("cp-password")));
});

Deno.test("start-up: a --connstr through a unix socket needs that socket in net", async () => {
  const lines = await refusals(
    startupRequirements(cli({
      "--connstr": "postgresql://cloud_admin@localhost:5433/postgres?host=/run/postgresql",
    })),
    fakeQuery(COMPUTE_SET),
  );
  assert.deepEqual(lines, [
    "--connstr's socket /run/postgresql/.s.PGSQL.5433 cannot be reached " +
    howToGrant("unix:/run/postgresql/.s.PGSQL.5433", "net"),
  ]);
});

Deno.test("a descriptor the query cannot parse counts as refused", async () => {
  const throwing: PermissionQuery = () => Promise.reject(new TypeError("invalid host"));
  const lines = await refusals(startupRequirements(cli()), throwing);
  assert.equal(lines.length, 6, "one line per requirement: all six refused");
});

Deno.test("spec: pageservers, safekeepers and endpoint storage, each named by its field", () => {
  const pspec = testParsedSpec({
    pageserver_connstring: undefined,
    pageserver_connection_info: {
      shard_count: 2,
      stripe_size: 2048,
      shards: {
        "0002": {
          pageservers: [{ id: 1, libpq_url: "postgresql://no_user@ps-a:6400", grpc_url: null }],
        },
        "0102": {
          pageservers: [
            { id: 2, libpq_url: "postgresql://no_user:token@[::1]:6401", grpc_url: null },
            { id: 3, libpq_url: null, grpc_url: "grpc://ps-c:51051" },
          ],
        },
      },
      prefer_protocol: "libpq",
    },
    safekeeper_connstrings: ["sk-1:5454", "[fd00::2]:5455"],
    endpoint_storage_addr: "storage.internal:9993",
  });
  assert.deepEqual(specRequirements(pspec).map((need) => [need.subject, need.needs[0].target]), [
    ["the spec's pageserver_connection_info (shard 0002) host ps-a:6400", "ps-a:6400"],
    ["the spec's pageserver_connection_info (shard 0102) host [::1]:6401", "[::1]:6401"],
    ["the spec's safekeeper_connstrings entry sk-1:5454", "sk-1:5454"],
    ["the spec's safekeeper_connstrings entry [fd00::2]:5455", "[fd00::2]:5455"],
    ["the spec's endpoint_storage_addr host storage.internal:9993", "storage.internal:9993"],
  ]);
});

Deno.test("spec: legacy fields and neon.* settings are named as such", () => {
  const legacy = testParsedSpec({ pageserver_connstring: "postgresql://no_user@127.0.0.2" });
  assert.deepEqual(specRequirements(legacy).map((need) => need.subject), [
    "the spec's pageserver_connstring host 127.0.0.2:5432",
    "the spec's safekeeper_connstrings entry 127.0.0.1:6501",
  ]);
  const fromSettings = testParsedSpec({
    pageserver_connstring: undefined,
    safekeeper_connstrings: [],
    cluster: {
      roles: [],
      databases: [],
      settings: [
        {
          name: "neon.pageserver_connstring",
          value: "postgresql://no_user@ps:6400",
          vartype: "string",
        },
        { name: "neon.safekeepers", value: "sk:5454", vartype: "string" },
      ],
    },
  });
  assert.deepEqual(specRequirements(fromSettings).map((need) => need.subject), [
    "the spec's cluster.settings neon.pageserver_connstring host ps:6400",
    "the spec's cluster.settings neon.safekeepers entry sk:5454",
  ]);
});

Deno.test("spec: a host nobody granted is a 400-class refusal naming field and flag", async () => {
  const pspec = testParsedSpec({ pageserver_connstring: "postgresql://no_user@127.0.0.2:6400" });
  const query = fakeQuery(COMPUTE_SET);
  const error = await assertSpecGranted(pspec, query).then(() => null, (error) => error);
  assert.ok(error instanceof PermissionRefusedError);
  assert.ok(error instanceof SpecError, "/configure maps SpecError to 400");
  assert.equal(
    error.message,
    `the spec's pageserver_connstring host 127.0.0.2:6400 cannot be reached ${
      howToGrant("127.0.0.2", "net")
    }`,
  );
  await assertSpecGranted(testParsedSpec(), query);
});

Deno.test("grantedConfig: passes an empty config and a granted spec, rejects the others", async () => {
  const empty = { spec: null, compute_ctl_config: { jwks: { keys: [] } } };
  const query = fakeQuery(COMPUTE_SET);
  assert.equal(await grantedConfig(empty as never, query), empty);
  const granted = { ...empty, spec: testParsedSpec().spec };
  assert.equal(await grantedConfig(granted as never, query), granted);
  const refused = {
    ...empty,
    spec: { ...testParsedSpec().spec, safekeeper_connstrings: ["[fd00::9]:1"] },
  };
  await assert.rejects(grantedConfig(refused as never, query), PermissionRefusedError);
});

Deno.test("communicatorWarning: granted socket, missing grant, path too long", async () => {
  const socket = "unix:/var/db/postgres/compute/neon-communicator.socket";
  const granted = fakeQuery({ net: [socket] });
  assert.equal(await communicatorWarning("/var/db/postgres/compute", granted), undefined);
  assert.equal(
    await communicatorWarning("/tmp/c/pgdata/", fakeQuery({})),
    "the communicator socket /tmp/c/pgdata/neon-communicator.socket (GET /autoscaling_metrics) " +
      `cannot be reached ${howToGrant("unix:/tmp/c/pgdata/neon-communicator.socket", "net")}`,
  );
  const long = `/tmp/${"d".repeat(80)}`;
  assert.match(
    (await communicatorWarning(
      long,
      fakeQuery({ net: [`unix:${long}/neon-communicator.socket`] }),
    ))!,
    /100 bytes or longer, so it is reached through a temporary link in \/tmp/,
  );
});

Deno.test("install: --remote-ext-base-url needs the install's extension directories", async () => {
  const npm = "/srv/compute_ctl/node_modules/.deno/pg/native";
  const flags = { pgbin: `${npm}/bin/postgres`, remoteExtBaseUrl: "http://ext.internal/" };
  const check = await installCheck(flags, {
    layout: () =>
      Promise.resolve({ sharedir: `${npm}/share/postgresql`, pkglibdir: `${npm}/lib/postgresql` }),
    programStatus: () => Promise.resolve("usable"),
  });
  assert.deepEqual(check.warnings, []);
  const extension = `${npm}/share/postgresql/extension`;
  const lib = `${npm}/lib/postgresql`;
  assert.deepEqual(
    await refusals(check.requirements, fakeQuery({ read: ["/srv/compute_ctl/node_modules"] })),
    [
      `--remote-ext-base-url installs extensions into ${extension} and ${lib}, which are not ` +
      "writable under the permissions this process was started with: add " +
      `"${extension}" and "${lib}" to "write" in the "compute" permission set of deno.json, ` +
      `or run with --allow-write=${extension},${lib},<the set's "write" list>`,
    ],
  );
  const granted = fakeQuery({ read: [npm], write: [extension, lib] });
  assert.deepEqual(await refusals(check.requirements, granted), []);

  const without = await installCheck({ pgbin: flags.pgbin }, {
    layout: () => Promise.reject(new Error("not asked without --remote-ext-base-url")),
    programStatus: () => Promise.resolve("usable"),
  });
  assert.deepEqual(without, { requirements: [], warnings: [] });
});

Deno.test("install: an unknown layout is a warning; pg_dump missing or not granted too", async () => {
  const pgbin = "/opt/pg/bin/postgres";
  const unknown = await installCheck({ pgbin, remoteExtBaseUrl: "http://ext/" }, {
    layout: () => Promise.reject(new InstallLayoutError("cannot tell")),
    programStatus: () => Promise.resolve("missing"),
  });
  assert.deepEqual(unknown.requirements, []);
  assert.deepEqual(unknown.warnings, [
    "--remote-ext-base-url: cannot tell; the first download asks pg_config, and whether it may " +
    "write there is not checked at start",
    "/opt/pg/bin/pg_dump does not exist: pg_dump is not part of this PostgreSQL install, so " +
    "GET /database_schema answers 500",
  ]);
  const ungranted = await installCheck({ pgbin }, {
    programStatus: (_, name) => Promise.resolve(name === "pg_dump" ? "not_granted" : "usable"),
  });
  assert.deepEqual(ungranted.warnings, [
    "/opt/pg/bin/pg_dump may not be run under the permissions this process was started with, " +
    'so GET /database_schema answers 500: add "/opt/pg/bin/pg_dump" to "run" in the "compute" ' +
    `permission set of deno.json, or run with --allow-run=/opt/pg/bin/pg_dump,<the set's "run" list>`,
  ]);
});
