import assert from "node:assert/strict";
import {
  parseComputeSpecJson,
  type ParsedSpec,
  parseSpec,
  SpecError,
} from "../../src/api/parsed_spec.ts";
import { type ConfOptions, renderPostgresqlConf } from "../../src/postgres/conf.ts";
import { readOvercommitMemory } from "../../src/postgres/overcommit.ts";

const FIXTURES = new URL("../../fixtures/", import.meta.url);

// deno-lint-ignore no-explicit-any -- tests edit fixture JSON freely before parsing it
type Json = any;

function fixture(name: string): Json {
  return JSON.parse(Deno.readTextFileSync(new URL(`specs/${name}.json`, FIXTURES)));
}

function parsed(json: Json): ParsedSpec {
  return parseSpec(parseComputeSpecJson(json));
}

const OPTIONS: ConfOptions = { privilegedRoleName: "neon_superuser", internalHttpPort: 3081 };

function render(json: Json, options: Partial<ConfOptions> = {}): string {
  return renderPostgresqlConf(parsed(json), { ...OPTIONS, ...options });
}

function lines(json: Json, options: Partial<ConfOptions> = {}): string[] {
  const text = render(json, options);
  assert.ok(text.endsWith("\n"));
  return text.slice(0, -1).split("\n");
}

Deno.test("full.json renders exactly the golden file", () => {
  const golden = Deno.readTextFileSync(new URL("golden/full.postgresql.conf", FIXTURES));
  const text = render(fixture("full"), { platform: "linux", overcommitMemory: 2, tls: true });
  assert.equal(text, golden);
});

Deno.test("minimal primary: every unconditional line, in order", () => {
  assert.deepEqual(lines(fixture("minimal_primary")), [
    "# Neon storage settings",
    "",
    "# derived from compute spec's pageserver_connection_info field",
    "neon.pageserver_connstring='postgresql://no_user@127.0.0.1:64000'",
    "neon.safekeepers='127.0.0.1:65001,127.0.0.1:65002,127.0.0.1:65003'",
    "neon.tenant_id='0a1b2c3d4e5f60718293a4b5c6d7e8f9'",
    "neon.timeline_id='f9e8d7c6b5a40392817160f5e4d3c2b1'",
    "lc_messages='C.UTF-8'",
    "lc_monetary='C.UTF-8'",
    "lc_time='C.UTF-8'",
    "lc_numeric='C.UTF-8'",
    "neon.compute_mode=primary",
    "neon.privileged_role_name='neon_superuser'",
    "neon.extension_server_port=3081",
    "neon.disable_logical_replication_subscribers=false",
    "include_if_exists = 'compute_ctl_temp_override.conf'",
  ]);
});

Deno.test("postgresql_conf comes first, verbatim, followed by a newline", () => {
  const spec = fixture("minimal_primary");
  spec.cluster.postgresql_conf = "port=55432\nlisten_addresses='*'";
  assert.ok(
    render(spec).startsWith("port=55432\nlisten_addresses='*'\n# Neon storage settings\n\n"),
  );
  spec.cluster.postgresql_conf = "port=55432\n";
  assert.ok(render(spec).startsWith("port=55432\n\n# Neon storage settings\n"));
});

Deno.test("static mode: hot_standby and the canonical recovery_target_lsn", () => {
  const out = lines(fixture("static"));
  const mode = out.indexOf("neon.compute_mode=static");
  assert.deepEqual(out.slice(mode, mode + 3), [
    "neon.compute_mode=static",
    "hot_standby=on",
    "recovery_target_lsn='0/169AD58'",
  ]);
  // No safekeepers in the spec, so no neon.safekeepers line.
  assert.ok(!out.some((line) => line.startsWith("neon.safekeepers")));
});

Deno.test("legacy pageserver fields: stripe size first, then the connstring as given", () => {
  const out = lines(fixture("static"));
  assert.deepEqual(out.slice(2, 6), [
    "# from compute spec's shard_stripe_size field",
    "neon.stripe_size=2048",
    "# from compute spec's pageserver_connstring field",
    "neon.pageserver_connstring='postgresql://no_user@127.0.0.1:64000,postgresql://no_user@127.0.0.1:64010'",
  ]);
});

Deno.test("replica mode: hot_standby only; sharded info joins every shard's first URL", () => {
  const out = lines(fixture("replica"));
  const mode = out.indexOf("neon.compute_mode=replica");
  assert.equal(out[mode + 1], "hot_standby=on");
  assert.ok(!out.some((line) => line.startsWith("recovery_target_lsn")));
  const storage = out.indexOf("# Neon storage settings");
  assert.deepEqual(out.slice(storage + 2, storage + 6), [
    "# from compute spec's pageserver_connection_info.stripe_size field",
    "neon.stripe_size=32768",
    "# derived from compute spec's pageserver_connection_info field",
    "neon.pageserver_connstring='postgresql://no_user@127.0.0.1:64000,postgresql://no_user@127.0.0.1:64010'",
  ]);
});

Deno.test("a shard without a libpq URL gives the 'no connstring' comment", () => {
  const spec = fixture("replica");
  spec.pageserver_connection_info.shards["0102"].pageservers[0].libpq_url = null;
  const out = lines(spec);
  assert.ok(out.includes("neon.stripe_size=32768"));
  assert.ok(out.includes("# no neon.pageserver_connstring"));
  assert.ok(!out.some((line) => line.startsWith("neon.pageserver_connstring")));
});

Deno.test("a shard missing from the map is an error", () => {
  const spec = fixture("replica");
  delete spec.pageserver_connection_info.shards["0102"];
  assert.throws(
    () => render(spec),
    (error) =>
      error instanceof SpecError &&
      error.message === "shard 0102 missing from pageserver_connection_info shard map",
  );
});

Deno.test("storage info only in settings: nothing before the managed block", () => {
  const out = lines(fixture("legacy_settings"));
  assert.deepEqual(out.slice(0, 3), ["# Neon storage settings", "", "lc_messages='C.UTF-8'"]);
  const begin = out.indexOf("# Managed by compute_ctl: begin");
  assert.equal(out[begin + 1], "neon.pageserver_connstring = 'host=127.0.0.1 port=64000'");
  assert.equal(out[begin + 8], "# Managed by compute_ctl: end");
});

Deno.test("safekeepers: generation prefix only when given", () => {
  const spec = fixture("minimal_primary");
  spec.safekeepers_generation = 0;
  assert.ok(
    lines(spec).includes("neon.safekeepers='g#0:127.0.0.1:65001,127.0.0.1:65002,127.0.0.1:65003'"),
  );
});

Deno.test("optional ids are written only when present, values escaped", () => {
  const spec = fixture("minimal_primary");
  spec.project_id = "it's";
  spec.endpoint_id = "ep-1";
  const out = lines(spec);
  assert.ok(out.includes("neon.project_id='it''s'"));
  assert.ok(out.includes("neon.endpoint_id='ep-1'"));
  assert.ok(!out.some((line) => line.startsWith("neon.branch_id")));
});

Deno.test("TLS lines need both the tls_experimental feature and a TLS config", () => {
  const ssl = ["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"];
  const spec = fixture("minimal_primary");
  assert.ok(!lines(spec, { tls: true }).includes("ssl = on"));
  spec.features = ["tls_experimental"];
  assert.ok(!lines(spec).includes("ssl = on"));
  const out = lines(spec, { tls: true });
  const at = out.indexOf("ssl = on");
  assert.deepEqual(out.slice(at, at + 4), [...ssl, "lc_messages='C.UTF-8'"]);
});

Deno.test("locale follows the platform; mmap only on linux with overcommit 2", () => {
  const spec = fixture("minimal_primary");
  const darwin = lines(spec, { platform: "darwin", overcommitMemory: 2 });
  for (const name of ["lc_messages", "lc_monetary", "lc_time", "lc_numeric"]) {
    assert.ok(darwin.includes(`${name}='C'`));
  }
  assert.ok(!darwin.includes("dynamic_shared_memory_type = mmap"));
  assert.ok(!lines(spec, { overcommitMemory: 0 }).includes("dynamic_shared_memory_type = mmap"));
  assert.ok(!lines(spec).includes("dynamic_shared_memory_type = mmap"));
  const linux = lines(spec, { overcommitMemory: 2 });
  const at = linux.indexOf("dynamic_shared_memory_type = mmap");
  assert.equal(linux[at - 1], "neon.compute_mode=primary");
  assert.equal(linux[at + 1], "neon.privileged_role_name='neon_superuser'");
});

Deno.test("privileged role name and extension server port come from the options", () => {
  const out = lines(fixture("minimal_primary"), {
    privilegedRoleName: "my_admin",
    internalHttpPort: 4001,
  });
  assert.ok(out.includes("neon.privileged_role_name='my_admin'"));
  assert.ok(out.includes("neon.extension_server_port=4001"));
});

Deno.test("managed settings block: absent for null settings, empty line for []", () => {
  const spec = fixture("minimal_primary");
  assert.ok(!render(spec).includes("# Managed by compute_ctl: begin"));
  spec.cluster.settings = [];
  assert.ok(
    render(spec).includes("# Managed by compute_ctl: begin\n\n# Managed by compute_ctl: end\n"),
  );
  spec.cluster.settings = [
    { name: "fsync", value: "off", vartype: "bool" },
    { name: "application_name", value: "a'b\\c", vartype: "string" },
  ];
  assert.ok(
    render(spec).includes(
      "neon.privileged_role_name='neon_superuser'\n# Managed by compute_ctl: begin\n" +
        "fsync = off\napplication_name = 'a''b\\\\c'\n# Managed by compute_ctl: end\n",
    ),
  );
});

function auditBlock(level: string, preload?: string): string[] {
  const spec = fixture("minimal_primary");
  spec.audit_log_level = level;
  if (preload !== undefined) {
    spec.cluster.settings = [{
      name: "shared_preload_libraries",
      value: preload,
      vartype: "string",
    }];
  }
  const out = lines(spec);
  const start = out.findIndex((line) =>
    line.startsWith("# Managed by compute_ctl base audit") ||
    line.startsWith("# Managed by compute_ctl compliance audit")
  );
  if (start === -1) return [];
  const end = out.indexOf("neon.extension_server_port=3081");
  return out.slice(start, end);
}

Deno.test("audit Disabled writes nothing", () => {
  assert.deepEqual(auditBlock("Disabled"), []);
});

Deno.test("audit Base and Log: ddl,role and pgaudit preloaded", () => {
  const expected = (libraries: string) => [
    "# Managed by compute_ctl base audit settings: start",
    "pgaudit.log='ddl,role'",
    "pgaudit.log_catalog=off",
    `shared_preload_libraries='${libraries}'`,
    "# Managed by compute_ctl base audit settings: end",
  ];
  assert.deepEqual(auditBlock("Base"), expected("neon,pgaudit"));
  assert.deepEqual(auditBlock("Log"), expected("neon,pgaudit"));
  assert.deepEqual(
    auditBlock("Base", "neon,pg_stat_statements"),
    expected("neon,pg_stat_statements,pgaudit"),
  );
  assert.deepEqual(auditBlock("Base", "neon,pgaudit"), expected("neon,pgaudit"));
});

Deno.test("audit Full, Extended and Hipaa: compliance block", () => {
  const expected = (full: boolean, libraries: string) => [
    "# Managed by compute_ctl compliance audit settings: begin",
    `pgaudit.log_parameter=${full ? "on" : "off"}`,
    full ? "pgaudit.log='all'" : "pgaudit.log='all, -misc'",
    "pgaudit.log_catalog=off",
    "pgaudit.log_rotation_age=5",
    `shared_preload_libraries='${libraries}'`,
    "# Managed by compute_ctl compliance audit settings: end",
  ];
  assert.deepEqual(auditBlock("Full"), expected(true, "neon,pgaudit,pgauditlogtofile"));
  assert.deepEqual(auditBlock("Extended"), expected(false, "neon,pgaudit,pgauditlogtofile"));
  assert.deepEqual(auditBlock("Hipaa"), expected(false, "neon,pgaudit,pgauditlogtofile"));
  assert.deepEqual(auditBlock("Full", "neon"), expected(true, "neon,pgaudit,pgauditlogtofile"));
  assert.deepEqual(
    auditBlock("Extended", "neon, pgaudit"),
    expected(false, "neon, pgaudit,pgauditlogtofile"),
  );
  // Entry-wise detection: pgauditlogtofile alone does not count as pgaudit (Neon's substring
  // test would leave pgaudit out).
  assert.deepEqual(
    auditBlock("Full", "neon,pgauditlogtofile"),
    expected(true, "neon,pgauditlogtofile,pgaudit"),
  );
});

Deno.test("audit comes after the settings, so settings cannot override it", () => {
  const spec = fixture("minimal_primary");
  spec.audit_log_level = "Base";
  spec.cluster.settings = [{ name: "pgaudit.log", value: "none", vartype: "string" }];
  const out = lines(spec);
  assert.ok(out.indexOf("pgaudit.log = 'none'") < out.indexOf("pgaudit.log='ddl,role'"));
});

Deno.test("drop_subscriptions_before_start and logs_export_host", () => {
  const spec = fixture("minimal_primary");
  spec.drop_subscriptions_before_start = true;
  spec.logs_export_host = "collector:10514";
  const out = lines(spec);
  assert.deepEqual(out.slice(-4), [
    "neon.extension_server_port=3081",
    "neon.disable_logical_replication_subscribers=true",
    "log_destination='stderr,syslog'",
    "include_if_exists = 'compute_ctl_temp_override.conf'",
  ]);
});

Deno.test("the full conf keeps the reference order of sections", () => {
  const text = render(fixture("full"), { overcommitMemory: 2, tls: true });
  const order = [
    "max_wal_senders=10",
    "# Neon storage settings",
    "neon.pageserver_connstring=",
    "neon.safekeepers=",
    "neon.tenant_id=",
    "neon.timeline_id=",
    "neon.project_id=",
    "neon.branch_id=",
    "neon.endpoint_id=",
    "ssl = on",
    "lc_messages=",
    "neon.compute_mode=",
    "dynamic_shared_memory_type = mmap",
    "neon.privileged_role_name=",
    "# Managed by compute_ctl: begin",
    "# Managed by compute_ctl: end",
    "# Managed by compute_ctl compliance audit settings: begin",
    "neon.extension_server_port=",
    "neon.disable_logical_replication_subscribers=",
    "log_destination=",
    "include_if_exists = ",
  ];
  const positions = order.map((marker) => {
    const at = text.indexOf(`\n${marker}`);
    return marker === "max_wal_senders=10" ? text.indexOf(marker) : at;
  });
  positions.forEach((at, i) => assert.ok(at >= 0, `missing ${order[i]}`));
  for (let i = 1; i < positions.length; i++) {
    assert.ok(positions[i - 1] < positions[i], `${order[i - 1]} before ${order[i]}`);
  }
  assert.ok(text.endsWith("include_if_exists = 'compute_ctl_temp_override.conf'\n"));
});

Deno.test("readOvercommitMemory reads the number, undefined otherwise", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/two`, "2\n");
    await Deno.writeTextFile(`${dir}/junk`, "many\n");
    assert.equal(await readOvercommitMemory(`${dir}/two`), 2);
    assert.equal(await readOvercommitMemory(`${dir}/junk`), undefined);
    assert.equal(await readOvercommitMemory(`${dir}/missing`), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
