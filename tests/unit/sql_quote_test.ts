import assert from "node:assert/strict";
import type { GenericOption } from "../../src/api/spec.ts";
import {
  databaseOptionsSql,
  dollarQuote,
  optionAsConfLine,
  optionAsSql,
  optionsAsSql,
  quoteConfValue,
  quoteIdent,
  quoteLiteral,
  roleOptionsSql,
  settingsBlock,
} from "../../src/postgres/sql_quote.ts";

Deno.test("quoteIdent always quotes and doubles inner double quotes", () => {
  assert.equal(quoteIdent("alexk"), '"alexk"');
  assert.equal(quoteIdent("MixedCase"), '"MixedCase"');
  // The reference's injection probe: quotes plus a literal backslash-n.
  assert.equal(quoteIdent('"name";\\n select 1;'), '"""name"";\\n select 1;"');
  assert.equal(quoteIdent(quoteIdent("a")), '"""a"""');
});

Deno.test("quoteLiteral matches the reference cases", () => {
  assert.equal(quoteLiteral("test"), "'test'");
  assert.equal(quoteLiteral("test'"), "'test'''");
  assert.equal(quoteLiteral("test\\'"), "E'test\\\\'''");
  assert.equal(quoteLiteral("test\\'\\'"), "E'test\\\\''\\\\'''");
  assert.equal(quoteLiteral(""), "''");
});

Deno.test("quoteConfValue never uses the E prefix", () => {
  assert.equal(quoteConfValue("C.UTF-8"), "'C.UTF-8'");
  assert.equal(quoteConfValue("a\\b'c"), "'a\\\\b''c'");
  assert.equal(
    quoteConfValue(`here's a backslash \\ and a quote ' and a double-quote " hooray`),
    `'here''s a backslash \\\\ and a quote '' and a double-quote " hooray'`,
  );
});

Deno.test("dollarQuote reproduces every row of the reference table", () => {
  const table: [string, string, string][] = [
    ["name", "$x$name$x$", "xx"],
    ["name$", "$x$name$$x$", "xx"],
    ["name$$", "$x$name$$$x$", "xx"],
    ["name$$$", "$x$name$$$$x$", "xx"],
    ["name$$$$", "$x$name$$$$$x$", "xx"],
    ["name$x$", "$xx$name$x$$xx$", "xxx"],
    ["x", "$xx$x$xx$", "xxx"],
    ["xx", "$xxx$xx$xxx$", "xxxx"],
    ["$x", "$xx$$x$xx$", "xxx"],
    ["x$", "$xx$x$$xx$", "xxx"],
    ["$x$", "$xx$$x$$xx$", "xxx"],
    ["xx$", "$xxx$xx$$xxx$", "xxxx"],
    ["$xx", "$xxx$$xx$xxx$", "xxxx"],
    ["$xx$", "$xxx$$xx$$xxx$", "xxxx"],
  ];
  for (const [input, quoted, outerTag] of table) {
    assert.deepEqual(dollarQuote(input), { quoted, outerTag }, `input ${input}`);
  }
});

Deno.test("dollarQuote tags never occur in the quoted text", () => {
  for (const input of ["", "x".repeat(63), "';db $$ $x$ $;", "$xxx$ and $xxxx$"]) {
    const { quoted, outerTag } = dollarQuote(input);
    const tag = outerTag.slice(0, -1);
    assert.ok(!input.includes(tag));
    assert.ok(!input.includes(outerTag));
    assert.equal(quoted, `$${tag}$${input}$${tag}$`);
  }
});

const opt = (name: string, value: string | null, vartype: string): GenericOption => ({
  name,
  value,
  vartype,
});

Deno.test("optionAsConfLine quotes only string vartypes and keeps valueless names bare", () => {
  assert.equal(optionAsConfLine(opt("fsync", "off", "bool")), "fsync = off");
  assert.equal(optionAsConfLine(opt("port", "55432", "integer")), "port = 55432");
  assert.equal(optionAsConfLine(opt("port", "55432", "int")), "port = 55432");
  assert.equal(optionAsConfLine(opt("wal_level", "logical", "enum")), "wal_level = logical");
  assert.equal(
    optionAsConfLine(opt("listen_addresses", "0.0.0.0", "string")),
    "listen_addresses = '0.0.0.0'",
  );
  assert.equal(optionAsConfLine(opt("odd", null, "string")), "odd");
  assert.equal(optionAsConfLine({ name: "odd", vartype: "bool" }), "odd");
});

Deno.test("settingsBlock renders the reference fixture's 25 settings", () => {
  const settings: GenericOption[] = [
    opt("fsync", "off", "bool"),
    opt("wal_level", "logical", "enum"),
    opt("hot_standby", "on", "bool"),
    opt("autoprewarm", "off", "bool"),
    opt("offload_lfc_interval_seconds", "20", "integer"),
    opt("neon.safekeepers", "127.0.0.1:6502,127.0.0.1:6503,127.0.0.1:6501", "string"),
    opt("wal_log_hints", "on", "bool"),
    opt("log_connections", "on", "bool"),
    opt("shared_buffers", "32768", "integer"),
    opt("port", "55432", "integer"),
    opt("max_connections", "100", "integer"),
    opt("max_wal_senders", "10", "integer"),
    opt("listen_addresses", "0.0.0.0", "string"),
    opt("wal_sender_timeout", "0", "integer"),
    opt("password_encryption", "md5", "enum"),
    opt("maintenance_work_mem", "65536", "integer"),
    opt("max_parallel_workers", "8", "integer"),
    opt("max_worker_processes", "8", "integer"),
    opt("neon.tenant_id", "b0554b632bd4d547a63b86c3630317e8", "string"),
    opt("max_replication_slots", "10", "integer"),
    opt("neon.timeline_id", "2414a61ffc94e428f14b5758fe308e13", "string"),
    opt("shared_preload_libraries", "neon", "string"),
    opt("synchronous_standby_names", "walproposer", "string"),
    opt("neon.pageserver_connstring", "host=127.0.0.1 port=6400", "string"),
    opt(
      "test.escaping",
      `here's a backslash \\ and a quote ' and a double-quote " hooray`,
      "string",
    ),
  ];
  const expected = [
    "fsync = off",
    "wal_level = logical",
    "hot_standby = on",
    "autoprewarm = off",
    "offload_lfc_interval_seconds = 20",
    "neon.safekeepers = '127.0.0.1:6502,127.0.0.1:6503,127.0.0.1:6501'",
    "wal_log_hints = on",
    "log_connections = on",
    "shared_buffers = 32768",
    "port = 55432",
    "max_connections = 100",
    "max_wal_senders = 10",
    "listen_addresses = '0.0.0.0'",
    "wal_sender_timeout = 0",
    "password_encryption = md5",
    "maintenance_work_mem = 65536",
    "max_parallel_workers = 8",
    "max_worker_processes = 8",
    "neon.tenant_id = 'b0554b632bd4d547a63b86c3630317e8'",
    "max_replication_slots = 10",
    "neon.timeline_id = '2414a61ffc94e428f14b5758fe308e13'",
    "shared_preload_libraries = 'neon'",
    "synchronous_standby_names = 'walproposer'",
    "neon.pageserver_connstring = 'host=127.0.0.1 port=6400'",
    `test.escaping = 'here''s a backslash \\\\ and a quote '' and a double-quote " hooray'`,
  ];
  assert.equal(settingsBlock(settings), `${expected.join("\n")}\n`);
});

Deno.test("settingsBlock: null gives nothing, an empty list a single newline", () => {
  assert.equal(settingsBlock(null), "");
  assert.equal(settingsBlock(undefined), "");
  assert.equal(settingsBlock([]), "\n");
});

Deno.test("optionAsSql and optionsAsSql render SQL clauses", () => {
  assert.equal(optionAsSql(opt("LC_COLLATE", "C", "string")), "LC_COLLATE 'C'");
  assert.equal(optionAsSql(opt("TEMPLATE", "template0", "enum")), "TEMPLATE template0");
  assert.equal(optionAsSql(opt("CONNECTION LIMIT", "5", "integer")), "CONNECTION LIMIT 5");
  assert.equal(optionAsSql(opt("NOSUPERUSER", null, "bool")), "NOSUPERUSER");
  assert.equal(optionAsSql(opt("VALID UNTIL", "it's\\", "string")), "VALID UNTIL E'it''s\\\\'");
  assert.equal(optionsAsSql(null), "");
  assert.equal(optionsAsSql(undefined), "");
  assert.equal(optionsAsSql([]), "");
  assert.equal(
    optionsAsSql([opt("IN ROLE", "pg_monitor", "enum"), opt("CONNECTION LIMIT", "3", "int")]),
    "IN ROLE pg_monitor CONNECTION LIMIT 3",
  );
});

Deno.test("databaseOptionsSql: options then OWNER, as in the reference's params_serialize", () => {
  assert.equal(
    databaseOptionsSql({
      name: "DB2",
      owner: "alexk",
      options: [
        opt("LC_COLLATE", "C", "string"),
        opt("LC_CTYPE", "C", "string"),
        opt("TEMPLATE", "template0", "enum"),
      ],
    }),
    `LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0 OWNER "alexk"`,
  );
  assert.equal(
    databaseOptionsSql({ name: "zen", owner: 'zenith "new"' }),
    ` OWNER "zenith ""new"""`,
  );
});

Deno.test("roleOptionsSql: options, LOGIN and the password rules", () => {
  assert.equal(
    roleOptionsSql({ name: "postgres", encrypted_password: "6b1d16b78004bbd51fa06af9eda75972" }),
    " LOGIN PASSWORD 'md56b1d16b78004bbd51fa06af9eda75972'",
  );
  const scram = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy";
  assert.equal(
    roleOptionsSql({ name: "s", encrypted_password: scram }),
    ` LOGIN PASSWORD '${scram}'`,
  );
  assert.equal(roleOptionsSql({ name: "n", encrypted_password: null }), " LOGIN PASSWORD NULL");
  assert.equal(roleOptionsSql({ name: "n" }), " LOGIN PASSWORD NULL");
  assert.equal(
    roleOptionsSql({
      name: "o",
      encrypted_password: null,
      options: [
        opt("CONNECTION LIMIT", "5", "integer"),
        opt("VALID UNTIL", "2099-12-31", "string"),
      ],
    }),
    "CONNECTION LIMIT 5 VALID UNTIL '2099-12-31' LOGIN PASSWORD NULL",
  );
});

Deno.test("roleOptionsSql keeps a hostile password inside its literal", () => {
  assert.equal(
    roleOptionsSql({ name: "evil", encrypted_password: "x'; DROP ROLE admin; --" }),
    " LOGIN PASSWORD 'md5x''; DROP ROLE admin; --'",
  );
});
