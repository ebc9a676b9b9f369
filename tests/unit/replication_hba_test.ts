import assert from "node:assert/strict";
import {
  ensureReplicationHbaLines,
  hbaAddresses,
  MD5_HBA_LINE,
  replicationHbaLines,
} from "../../src/postgres/files.ts";
import { parseSafekeeperAddress } from "../../src/storage/safekeepers.ts";

Deno.test("hbaAddresses: /32 for IPv4, /128 for IPv6, both loopbacks for localhost", () => {
  assert.deepEqual(hbaAddresses("127.0.0.1"), ["127.0.0.1/32"]);
  assert.deepEqual(hbaAddresses("10.1.2.3"), ["10.1.2.3/32"]);
  assert.deepEqual(hbaAddresses("::1"), ["::1/128"]);
  assert.deepEqual(hbaAddresses("[fe80::1]"), ["fe80::1/128"], "brackets stripped");
  assert.deepEqual(hbaAddresses("localhost"), ["127.0.0.1/32", "::1/128"]);
  assert.deepEqual(hbaAddresses("LocalHost"), ["127.0.0.1/32", "::1/128"]);
  assert.deepEqual(hbaAddresses("sk-1.storage.svc"), ["sk-1.storage.svc"]);
  assert.deepEqual(hbaAddresses("999.1.1.1"), ["999.1.1.1"], "not an IPv4 literal");
});

Deno.test("replicationHbaLines: one trust line per distinct address, in order", () => {
  assert.deepEqual(replicationHbaLines(["127.0.0.1", "127.0.0.1", "localhost"], "cloud_admin"), [
    "host\treplication\tcloud_admin\t127.0.0.1/32\ttrust",
    "host\treplication\tcloud_admin\t::1/128\ttrust",
  ]);
  assert.deepEqual(replicationHbaLines(["sk1", "::1"], "postgres"), [
    "host\treplication\tpostgres\tsk1\ttrust",
    "host\treplication\tpostgres\t::1/128\ttrust",
  ]);
  assert.deepEqual(replicationHbaLines([], "cloud_admin"), []);
});

Deno.test("replicationHbaLines: hosts as parseSafekeeperAddress gives them", () => {
  const entries = ["127.0.0.1:6501", "127.0.0.1:6502", "[::1]:6503"];
  const hosts = entries.map((entry) => parseSafekeeperAddress(entry).host);
  assert.deepEqual(replicationHbaLines(hosts, "cloud_admin"), [
    "host\treplication\tcloud_admin\t127.0.0.1/32\ttrust",
    "host\treplication\tcloud_admin\t::1/128\ttrust",
  ]);
});

Deno.test("replicationHbaLines: an unusual user name is double-quoted", () => {
  assert.deepEqual(replicationHbaLines(["127.0.0.1"], 'we "ird'), [
    'host\treplication\t"we ""ird"\t127.0.0.1/32\ttrust',
  ]);
  assert.deepEqual(replicationHbaLines(["127.0.0.1"], "all"), [
    'host\treplication\t"all"\t127.0.0.1/32\ttrust',
  ]);
});

Deno.test("ensureReplicationHbaLines appends the missing lines once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "replication_hba_test_" });
  try {
    const path = `${dir}/pg_hba.conf`;
    await Deno.writeTextFile(path, `local all all trust\n${MD5_HBA_LINE}`);
    await ensureReplicationHbaLines(dir, ["127.0.0.1"], "cloud_admin");
    await ensureReplicationHbaLines(dir, ["localhost", "127.0.0.1"], "cloud_admin");
    assert.equal(
      await Deno.readTextFile(path),
      [
        "local all all trust",
        MD5_HBA_LINE,
        "host\treplication\tcloud_admin\t127.0.0.1/32\ttrust",
        "host\treplication\tcloud_admin\t::1/128\ttrust",
      ].join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
