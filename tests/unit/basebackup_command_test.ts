import assert from "node:assert/strict";
import { CommandParseError, parsePageserverCommand } from "../../harness/pageserver.ts";
import { parseLsn } from "../../src/api/lsn.ts";
import {
  basebackupCommand,
  BasebackupError,
  libpqClientConfig,
  tarEntryPath,
  UnsafeTarEntryError,
} from "../../src/storage/basebackup.ts";

const TENANT = "0123456789abcdef0123456789abcdef";
const TIMELINE = "fedcba9876543210fedcba9876543210";
const LSN = parseLsn("0/169AD58");

Deno.test("basebackupCommand produces compute_ctl's four exact strings", () => {
  const base = { tenantId: TENANT, timelineId: TIMELINE };
  assert.equal(
    basebackupCommand({ ...base, lsn: 0n, mode: "Primary" }),
    `basebackup ${TENANT} ${TIMELINE} --gzip`,
  );
  assert.equal(
    basebackupCommand({ ...base, lsn: 0n, mode: "Replica" }),
    `basebackup ${TENANT} ${TIMELINE} --gzip --replica`,
  );
  assert.equal(
    basebackupCommand({ ...base, lsn: LSN, mode: "Primary" }),
    `basebackup ${TENANT} ${TIMELINE} 0/169AD58 --gzip`,
  );
  assert.equal(
    basebackupCommand({ ...base, lsn: LSN, mode: { Static: "0/169AD58" } }),
    `basebackup ${TENANT} ${TIMELINE} 0/169AD58 --gzip --replica`,
  );
});

Deno.test("basebackupCommand leaves out --gzip only when asked to", () => {
  const command = basebackupCommand({
    tenantId: TENANT,
    timelineId: TIMELINE,
    lsn: parseLsn("1/0"),
    mode: "Primary",
    gzip: false,
  });
  assert.equal(command, `basebackup ${TENANT} ${TIMELINE} 1/0`);
});

Deno.test("libpqClientConfig reads the URL and lets the token replace the password", () => {
  const config = libpqClientConfig("postgresql://no_user:secret@127.0.0.1:6400", {
    applicationName: "compute_ctl",
    options: "-c neon.compute_mode=primary",
  });
  assert.equal(config.host, "127.0.0.1");
  assert.equal(config.port, 6400);
  assert.equal(config.user, "no_user");
  assert.equal(config.password, "secret");
  assert.equal(config.application_name, "compute_ctl");
  assert.equal(config.options, "-c neon.compute_mode=primary");
  const withToken = libpqClientConfig("postgresql://no_user:secret@[::1]/db", {
    password: "jwt",
    applicationName: "compute_ctl",
  });
  assert.equal(withToken.password, "jwt");
  assert.equal(withToken.host, "::1");
  assert.equal(withToken.port, 5432);
  assert.equal(withToken.database, "db");
  assert.throws(() => libpqClientConfig("host=x port=1", { applicationName: "x" }), /libpq URL/);
});

Deno.test("tarEntryPath keeps relative names and refuses to leave PGDATA", () => {
  assert.equal(tarEntryPath("base/1/1259"), "base/1/1259");
  assert.equal(tarEntryPath("./global/pg_control"), "global/pg_control");
  assert.equal(tarEntryPath("pg_wal/"), "pg_wal");
  assert.equal(tarEntryPath("./"), null);
  for (const bad of ["/etc/passwd", "../outside", "base/../../x", "a/..", "x\0y"]) {
    assert.throws(() => tarEntryPath(bad), UnsafeTarEntryError, bad);
  }
});

Deno.test("BasebackupError names the LSN and keeps the cause", () => {
  const cause = new Error("not found");
  const error = new BasebackupError(LSN, cause);
  assert.equal(error.message, "failed to get basebackup@0/169AD58: not found");
  assert.equal(error.cause, cause);
});

Deno.test("the fake pageserver parses every command the compute sends", () => {
  for (const lsn of [0n, LSN]) {
    for (const mode of ["Primary", "Replica"] as const) {
      const parsed = parsePageserverCommand(
        basebackupCommand({ tenantId: TENANT, timelineId: TIMELINE, lsn, mode }),
      );
      assert.deepEqual(parsed, {
        kind: "basebackup",
        tenantId: TENANT,
        timelineId: TIMELINE,
        lsn: lsn === 0n ? null : lsn,
        gzip: true,
        replica: mode === "Replica",
      });
    }
  }
});

Deno.test("the fake pageserver's grammar errors follow Neon's", () => {
  const cases: [string, RegExp][] = [
    ["pagestream_v2", /^cannot parse query: pagestream_v2$/],
    ["frobnicate a b", /^unsupported command frobnicate in frobnicate a b$/],
    [`basebackup ${TENANT}`, /^invalid number of parameters for basebackup command/],
    [`basebackup xyz ${TIMELINE}`, /^Failed to parse tenant id from xyz/],
    [`basebackup ${TENANT} ${TIMELINE} 0/1 --gzip --gzip`, /^duplicate parameter .*--gzip$/],
    [`basebackup ${TENANT} ${TIMELINE} --gzip 0/1`, /^invalid parameter .*: 0\/1$/],
    [`basebackup ${TENANT} ${TIMELINE} --zstd`, /^invalid parameter .*: --zstd$/],
    [`basebackup ${TENANT} ${TIMELINE} nope`, /^Failed to parse lsn from nope/],
    [`lease foo ${TENANT} ${TIMELINE} 0/1`, /^invalid lease command: lease$/],
    [`lease lsn ${TENANT} ${TIMELINE}`, /^invalid number of parameters for lease lsn/],
  ];
  for (const [query, message] of cases) {
    assert.throws(() => parsePageserverCommand(query), (error: Error) => {
      assert.ok(error instanceof CommandParseError, query);
      assert.match(error.message, message, query);
      return true;
    });
  }
  assert.deepEqual(parsePageserverCommand(`BASEBACKUP ${TENANT} ${TIMELINE} latest --replica`), {
    kind: "basebackup",
    tenantId: TENANT,
    timelineId: TIMELINE,
    lsn: null,
    gzip: false,
    replica: true,
  });
  assert.deepEqual(parsePageserverCommand(`lease lsn ${TENANT}-0001 ${TIMELINE} 0/10`), {
    kind: "lease_lsn",
    tenantId: TENANT,
    shard: { number: 0, count: 1 },
    timelineId: TIMELINE,
    lsn: 16n,
  });
  assert.deepEqual(parsePageserverCommand("SET datestyle TO 'ISO'"), { kind: "set" });
});
