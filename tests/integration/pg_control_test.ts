/**
 * `harness/pg_control.ts` against real data directories of every supported
 * major (from Debian or npm): the state, checkpoint and wal_level it reads
 * follow what the server did, and on an install that has `pg_controldata`
 * every field equals what that program prints.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { pgFileOwner, runAsPgUser } from "../../harness/_processes.ts";
import { readControlFile } from "../../harness/pg_control.ts";
import { locatePostgresOnce, SUPPORTED_PG_MAJORS } from "../../harness/pg_locate.ts";
import { parseLsn } from "../../src/api/lsn.ts";

/** Runs `postgres` with `settings` until it is up, then stops it with a fast shutdown. */
async function cycle(binDir: string, pgdata: string, settings: string): Promise<void> {
  const pgCtl = join(binDir, "pg_ctl");
  await runAsPgUser(pgCtl, [
    "start",
    "-w",
    "-D",
    pgdata,
    "-l",
    join(pgdata, "server.log"),
    "-o",
    `-c listen_addresses='' -c unix_socket_directories='${pgdata}' ${settings}`,
  ]);
  await runAsPgUser(pgCtl, ["stop", "-w", "-m", "fast", "-D", pgdata]);
}

/** `pg_controldata` output as label → value, when the install has the program. */
async function controlDataOf(binDir: string, pgdata: string): Promise<Map<string, string> | null> {
  const program = join(binDir, "pg_controldata");
  try {
    Deno.statSync(program);
  } catch {
    return null;
  }
  const { output } = await runAsPgUser(program, ["-D", pgdata]);
  const fields = new Map<string, string>();
  for (const line of output.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return fields;
}

for (const major of SUPPORTED_PG_MAJORS) {
  Deno.test(`pg_control of a PostgreSQL ${major} data directory`, async () => {
    const install = await locatePostgresOnce(major);
    const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: `pg-control-${major}-` });
    try {
      const owner = await pgFileOwner();
      if (owner) await Deno.chown(dir, owner.uid, owner.gid);
      const pgdata = join(dir, "data");
      await runAsPgUser(join(install.binDir, "initdb"), [
        "-D",
        pgdata,
        "-A",
        "trust",
        "-U",
        "postgres",
        "--no-sync",
      ]);
      const fresh = await readControlFile(pgdata);
      assert.equal(fresh.state, "shut down");
      assert.equal(fresh.timeline, 1);
      assert.ok(fresh.checkpointLsn > 0n && fresh.redoLsn <= fresh.checkpointLsn);
      assert.match(fresh.systemId, /^[1-9]\d{15,}$/);

      await cycle(install.binDir, pgdata, "-c wal_level=minimal -c max_wal_senders=0");
      const minimal = await readControlFile(pgdata);
      assert.equal(minimal.walLevel, "minimal");
      assert.equal(minimal.systemId, fresh.systemId);
      assert.ok(minimal.checkpointLsn > fresh.checkpointLsn, "the shutdown wrote a checkpoint");

      await cycle(install.binDir, pgdata, "-c wal_level=logical");
      const logical = await readControlFile(pgdata);
      assert.equal(logical.walLevel, "logical");
      assert.equal(logical.state, "shut down");

      const printed = await controlDataOf(install.binDir, pgdata);
      if (printed) {
        assert.equal(logical.systemId, printed.get("Database system identifier"));
        assert.equal(logical.state, printed.get("Database cluster state"));
        assert.equal(logical.checkpointLsn, parseLsn(printed.get("Latest checkpoint location")!));
        assert.equal(
          logical.redoLsn,
          parseLsn(printed.get("Latest checkpoint's REDO location")!),
        );
        assert.equal(String(logical.timeline), printed.get("Latest checkpoint's TimeLineID"));
        assert.equal(logical.walLevel, printed.get("wal_level setting"));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
