/**
 * The fake safekeeper's command grammar: the manager's `START_WAL_PULL`
 * announcement (as `src/storage/wal_source.ts` writes it) and the walsender's
 * `START_REPLICATION`, as PostgreSQL's walreceiver and the peers send it.
 */

import assert from "node:assert/strict";
import { parseWalPull } from "../../harness/safekeeper.ts";
import { parseStartReplication } from "../../harness/safekeeper_sender.ts";
import { walHistoryId, walPullCommand } from "../../src/storage/wal_source.ts";

Deno.test("START_WAL_PULL: what the manager sends is what the safekeeper reads", () => {
  const params = {
    host: "127.0.0.1",
    port: 55432,
    user: "o'brien",
    applicationName: "safekeeper_127_0_0_1_5454",
    startLsn: 0x1500780n,
    instanceId: walHistoryId(0x1500780n),
  };
  assert.deepEqual(parseWalPull(walPullCommand(params)), params);
  const { instanceId: _, ...withoutInstance } = params;
  assert.deepEqual(parseWalPull(walPullCommand(withoutInstance)), {
    ...withoutInstance,
    instanceId: undefined,
  });
});

Deno.test("START_WAL_PULL: bad announcements are refused with the reason", () => {
  const valid = "host 'h', port '5432', user 'u', application_name 'n', start_lsn '0/10'";
  assert.throws(() => parseWalPull("START_WAL_PULL host 'h'"), /cannot parse START_WAL_PULL/);
  assert.throws(
    () => parseWalPull(`START_WAL_PULL (${valid.replace("host 'h', ", "")})`),
    /START_WAL_PULL needs host/,
  );
  assert.throws(
    () => parseWalPull(`START_WAL_PULL (${valid.replace("'5432'", "'99999'")})`),
    /invalid port 99999/,
  );
  assert.throws(
    () => parseWalPull(`START_WAL_PULL (${valid.replace("'0/10'", "'zz'")})`),
    /invalid start_lsn zz/,
  );
  assert.throws(
    () => parseWalPull(`START_WAL_PULL (${valid}, junk)`),
    /cannot parse START_WAL_PULL options/,
  );
});

Deno.test("START_REPLICATION: the forms walreceivers and peers send", () => {
  assert.deepEqual(parseStartReplication("START_REPLICATION 0/3000000 TIMELINE 1"), {
    startLsn: 0x3000000n,
    timeline: 1,
  });
  assert.deepEqual(
    parseStartReplication('START_REPLICATION SLOT "repl_x_" PHYSICAL 1/A0 TIMELINE 2'),
    { startLsn: 0x1000000A0n, timeline: 2 },
  );
  assert.deepEqual(parseStartReplication("start_replication physical 0/10"), {
    startLsn: 0x10n,
    timeline: 1,
  });
  assert.throws(() => parseStartReplication("START_REPLICATION LOGICAL 0/10"), /syntax error/);
});
