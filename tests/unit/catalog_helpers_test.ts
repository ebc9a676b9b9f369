/**
 * The pure parts of the catalog and probe routes: SQL for `/extensions` and
 * `/grants`, pg_dump and pg_isready command lines, the `database` query
 * parameter, the request body schemas, the cause chain and the HTTP/1.1
 * response parsing of the communicator client.
 */

import assert from "node:assert/strict";
import { setRoleGrantsRequestSchema } from "../../src/api/catalog.ts";
import { causeChain } from "../../src/cause_chain.ts";
import { HttpError } from "../../src/http/errors.ts";
import { parseDatabaseQuery } from "../../src/http/routes/database_schema.ts";
import { extensionInstallSql } from "../../src/postgres/extensions.ts";
import { grantSql, missingPrivileges } from "../../src/postgres/grants.ts";
import {
  dumpTarget,
  isMissingDatabaseLine,
  pgDumpArgs,
  SchemaDumpError,
} from "../../src/postgres/pg_dump.ts";
import { MissingPortError, pgIsReadyArgs, probeTarget } from "../../src/postgres/pg_isready.ts";
import {
  bodyFraming,
  HttpProtocolError,
  parseResponseHead,
  requestHead,
} from "../../src/postgres/_http1.ts";

Deno.test("extensionInstallSql: nothing, ALTER … UPDATE TO, or CREATE … VERSION, all quoted", () => {
  assert.equal(extensionInstallSql("hstore", "1.8", "1.8"), null);
  assert.equal(
    extensionInstallSql("hstore", "1.8", "1.7"),
    `ALTER EXTENSION "hstore" UPDATE TO "1.8"`,
  );
  assert.equal(
    extensionInstallSql("hstore", "1.7", null),
    `CREATE EXTENSION IF NOT EXISTS "hstore" WITH SCHEMA public VERSION "1.7"`,
  );
  assert.equal(
    extensionInstallSql(`we"ird`, `1"; DROP`, null),
    `CREATE EXTENSION IF NOT EXISTS "we""ird" WITH SCHEMA public VERSION "1""; DROP"`,
  );
});

Deno.test("missingPrivileges keeps request order, drops held and repeated ones", () => {
  assert.deepEqual(
    missingPrivileges(["USAGE", "CREATE", "USAGE"], new Set(["CREATE"])),
    ["USAGE"],
  );
  assert.deepEqual(missingPrivileges(["USAGE"], new Set(["USAGE", "CREATE"])), []);
  assert.deepEqual(missingPrivileges([], new Set()), []);
});

Deno.test("grantSql quotes schema and role; nothing to grant gives null", () => {
  assert.equal(
    grantSql(["USAGE", "CREATE"], `my "schema"`, "bob"),
    `GRANT USAGE, CREATE ON SCHEMA "my ""schema""" TO "bob"`,
  );
  assert.equal(grantSql([], "public", "bob"), null);
});

Deno.test("privileges are an upper-case enum", () => {
  const base = { database: "db", schema: "public", role: "bob" };
  assert.ok(setRoleGrantsRequestSchema.safeParse({ ...base, privileges: ["USAGE"] }).success);
  assert.ok(!setRoleGrantsRequestSchema.safeParse({ ...base, privileges: ["usage"] }).success);
  assert.ok(!setRoleGrantsRequestSchema.safeParse({ ...base, privileges: ["ALL"] }).success);
  const parsed = setRoleGrantsRequestSchema.parse({
    role: "bob",
    privileges: ["CREATE"],
    schema: "s",
    database: "d",
    extra: 1,
  });
  assert.deepEqual(Object.keys(parsed), ["database", "schema", "privileges", "role"]);
});

Deno.test("dumpTarget takes host, port and user from the connstr; all must be explicit", () => {
  assert.deepEqual(
    dumpTarget("postgresql://cloud_admin@127.0.0.1:5432/postgres"),
    { host: "127.0.0.1", port: 5432, user: "cloud_admin" },
  );
  assert.deepEqual(
    dumpTarget("postgres://cloud_admin@localhost:55/postgres?host=/tmp/sock"),
    { host: "/tmp/sock", port: 55, user: "cloud_admin" },
  );
  assert.deepEqual(
    dumpTarget("postgres://[::1]:7/postgres?user=u"),
    { host: "::1", port: 7, user: "u" },
  );
  for (
    const connstr of ["postgres://cloud_admin@localhost/postgres", "postgres://h:1/db", "nope"]
  ) {
    assert.throws(
      () => dumpTarget(connstr),
      (error) => error instanceof SchemaDumpError && error.kind === "unexpected",
      connstr,
    );
  }
});

Deno.test("pgDumpArgs: schema only, no database on the command line", () => {
  assert.deepEqual(pgDumpArgs({ host: "127.0.0.1", port: 5432, user: "cloud_admin" }), [
    "--host",
    "127.0.0.1",
    "--port",
    "5432",
    "--username",
    "cloud_admin",
    "--schema-only",
  ]);
});

Deno.test("isMissingDatabaseLine matches pg_dump's FATAL line (two spaces) for that name only", () => {
  const line = `pg_dump: error: connection to server at "127.0.0.1", port 5432 failed: ` +
    `FATAL:  database "a=b c" does not exist`;
  assert.ok(isMissingDatabaseLine(line, "a=b c"));
  assert.ok(!isMissingDatabaseLine(line, "a=b"));
  assert.ok(!isMissingDatabaseLine(line.replace("FATAL:  ", "FATAL: "), "a=b c"));
});

Deno.test("probeTarget needs an explicit port; pg_isready gets -h when the URL names a host", () => {
  assert.deepEqual(probeTarget("postgresql://cloud_admin@127.0.0.1:5433/postgres"), {
    port: 5433,
    host: "127.0.0.1",
  });
  assert.deepEqual(probeTarget("postgresql://cloud_admin@localhost:5433/postgres?host=/run/pg"), {
    port: 5433,
    host: "/run/pg",
  });
  assert.throws(
    () => probeTarget("postgresql://cloud_admin@localhost/postgres"),
    (error) =>
      error instanceof MissingPortError &&
      error.message === "Failed to get the port from the connection string",
  );
  assert.deepEqual(pgIsReadyArgs({ port: 5 }), ["-p", "5"]);
  assert.deepEqual(pgIsReadyArgs({ port: 5, host: "h" }), ["-h", "h", "-p", "5"]);
});

Deno.test("parseDatabaseQuery: exactly one database parameter, decoded", () => {
  assert.equal(parseDatabaseQuery("http://c/database_schema?database=a%3Db+c"), "a=b c");
  assert.equal(parseDatabaseQuery("http://c/database_schema?database="), "");
  for (
    const [url, message] of [
      ["http://c/database_schema", "failed to deserialize query string: missing field `database`"],
      [
        "http://c/database_schema?db=x",
        "failed to deserialize query string: missing field `database`",
      ],
      [
        "http://c/database_schema?database=a&database=b",
        "failed to deserialize query string: duplicate field `database`",
      ],
    ]
  ) {
    assert.throws(
      () => parseDatabaseQuery(url),
      (error) =>
        error instanceof HttpError && error.status === 400 && error.message === message &&
        !error.plainText,
    );
  }
});

Deno.test("causeChain joins every message, outermost first", () => {
  const inner = new Error("No such file or directory (os error 2)");
  const outer = new Error("connecting to communicator control socket", { cause: inner });
  assert.equal(
    causeChain(outer),
    "connecting to communicator control socket: No such file or directory (os error 2)",
  );
  assert.equal(causeChain("plain"), "plain");
  const loop = new Error("a");
  loop.cause = loop;
  assert.equal(causeChain(loop), "a");
});

Deno.test("HTTP/1.1 request and response head", () => {
  assert.equal(
    requestHead("GET", "/autoscaling_metrics", "localhost"),
    "GET /autoscaling_metrics HTTP/1.1\r\nhost: localhost\r\ncontent-length: 0\r\n" +
      "connection: close\r\n\r\n",
  );
  const head = parseResponseHead(
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/text\r\nX-A:  b ",
  );
  assert.equal(head.status, 503);
  assert.equal(head.headers.get("content-type"), "application/text");
  assert.equal(head.headers.get("x-a"), "b");
  assert.equal(parseResponseHead("HTTP/1.0 200").status, 200);
  assert.throws(() => parseResponseHead("SSH-2.0-OpenSSH"), HttpProtocolError);
  assert.throws(() => parseResponseHead("HTTP/1.1 200 OK\r\nbroken"), HttpProtocolError);
});

Deno.test("bodyFraming follows RFC 9112", () => {
  const framing = (status: number, headers: Record<string, string>) =>
    bodyFraming({ status, headers: new Map(Object.entries(headers)) });
  assert.deepEqual(framing(200, { "transfer-encoding": "chunked" }), { kind: "chunked" });
  assert.deepEqual(framing(200, { "transfer-encoding": "gzip, chunked", "content-length": "3" }), {
    kind: "chunked",
  });
  assert.deepEqual(framing(200, { "content-length": "12" }), { kind: "length", length: 12 });
  assert.deepEqual(framing(200, {}), { kind: "close" });
  assert.deepEqual(framing(204, { "content-length": "12" }), { kind: "none" });
  assert.deepEqual(framing(304, {}), { kind: "none" });
  assert.throws(() => framing(200, { "content-length": "x" }), HttpProtocolError);
});
