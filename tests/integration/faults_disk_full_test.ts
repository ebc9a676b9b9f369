/**
 * PGDATA's file system full, on a real compute whose PGDATA is on a small
 * tmpfs the test mounts (so the test needs root, as CI has; as any other user
 * it is reported as ignored, with a line saying why). While the file system
 * is full the manager stays up and answers, `/status` says `running`
 * (Postgres still serves reads), a write that needs space fails with
 * Postgres's "No space left on device" instead of hanging, and a `/configure`
 * is answered 500 with that error and leaves `failed`, Postgres keeping the
 * configuration it had (the safekeeper quorum line too, in memory and on
 * disk), also when the new `postgresql.conf` could only be half written. Once
 * space is freed the compute takes writes and `/configure` again, and a new
 * compute started from storage has every acknowledged row.
 */

import assert from "node:assert/strict";
import { type ComputeHandle, startCluster } from "../../harness/cluster.ts";
import { computeUser, isRoot } from "../../harness/_processes.ts";
import { range } from "../_support/acked_rows.ts";
import { AckedRows, faultTally } from "../_support/faults.ts";
import { query, show, within } from "./_helpers.ts";

/** Big enough for a compute's PGDATA after its basebackup, small enough to fill at once. */
const TMPFS_SIZE = "128m";

/** A tmpfs mounted on a new directory under /tmp, owned by the compute's OS user. */
interface Tmpfs extends AsyncDisposable {
  readonly path: string;
}

async function run(command: string, args: string[]): Promise<void> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
}

async function mountTmpfs(size: string): Promise<Tmpfs> {
  const user = computeUser();
  const path = await Deno.makeTempDir({ dir: "/tmp", prefix: "pgdata-tmpfs-" });
  try {
    await run("mount", [
      "-t",
      "tmpfs",
      "-o",
      `size=${size},mode=0700,uid=${user.uid},gid=${user.gid}`,
      "tmpfs",
      path,
    ]);
  } catch (error) {
    await Deno.remove(path);
    throw error;
  }
  return {
    path,
    async [Symbol.asyncDispose]() {
      await run("umount", [path]).catch(() => run("umount", ["-l", path]));
      await Deno.remove(path);
    },
  };
}

/** Writes `path` until the file system has no space left; returns the bytes written. */
async function fillUp(path: string): Promise<number> {
  using file = await Deno.open(path, { write: true, create: true });
  let written = 0;
  for (const size of [1 << 20, 4096]) {
    const chunk = new Uint8Array(size);
    try {
      for (;;) written += await file.write(chunk);
    } catch (error) {
      if (!String(error).includes("No space left on device")) throw error;
    }
  }
  return written;
}

/** The error text of `sql` on `url`, or null when it succeeds. */
async function failureOf(url: string, sql: string): Promise<string | null> {
  try {
    await query(url, sql);
    return null;
  } catch (error) {
    return String(error);
  }
}

/** A `/configure` with `settings` (string values) as the spec's `cluster.settings`. */
async function configureSettings(compute: ComputeHandle, settings: Record<string, string>) {
  const cluster = compute.spec.cluster as Record<string, unknown>;
  const list = Object.entries(settings).map(([name, value]) => ({
    name,
    value,
    vartype: "string",
  }));
  return await compute.configure({
    spec: { ...compute.spec, cluster: { ...cluster, settings: list } },
    compute_ctl_config: (await compute.readConfig()).compute_ctl_config,
  });
}

/** Settings that make `postgresql.conf` some 40 kB longer: its rewrite needs new space. */
function paddedSettings(): Record<string, string> {
  const padding = range(0, 200).map((n) => [`fault.padding_${n}`, "x".repeat(200)]);
  return { work_mem: "7001kB", ...Object.fromEntries(padding) };
}

/** Mounting a tmpfs needs root; as another user the test is ignored, and says so. */
const NEEDS_ROOT = "root only: mounts a tmpfs for PGDATA";
if (!isRoot()) console.log(`faults_disk_full_test.ts: ignored (${NEEDS_ROOT}); run it as root`);

Deno.test(
  `PGDATA's file system full: the manager answers, writes fail, nothing is lost (${NEEDS_ROOT})`,
  { ignore: !isRoot() },
  diskFull,
);

async function diskFull() {
  await using tmpfs = await mountTmpfs(TMPFS_SIZE);
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "full", pgdata: `${tmpfs.path}/pgdata` }],
  });
  await using tally = faultTally("PGDATA file system full");
  const compute = cluster.compute("full");
  const url = compute.postgresUrl;
  const acked = new AckedRows();
  await query(url, "CREATE TABLE acked (id int PRIMARY KEY, body text)");
  await acked.write(url, 10);
  // A fresh WAL segment (allocated whole when created) leaves the WAL room while the disk is full.
  await query(url, "SELECT pg_switch_wal()");
  await acked.write(url, 10);
  const syncNames = await show(url, "synchronous_standby_names");
  const postmaster = await compute.postmasterPid();

  tally.track(() => 1);
  const ballast = `${tmpfs.path}/ballast`;
  assert.ok(await fillUp(ballast) > 0, "the ballast took the free space");

  const status = await tally.check("crashes", () => compute.status());
  await tally.check("unexpectedStatus", () => {
    assert.deepEqual([status.status, status.error], ["running", null], "status when full");
  });
  const [{ count }] = await query<{ count: string }>(url, "SELECT count(*) FROM acked");
  await tally.check("unexpectedStatus", () => assert.equal(Number(count), 20, "reads when full"));
  const write = await within(
    failureOf(
      url,
      "INSERT INTO acked SELECT g, repeat('y', 2000) FROM generate_series(100, 999) g",
    ),
    60_000,
    "a write on a full file system ends",
  );
  await tally.check(
    "unexpectedStatus",
    () => assert.match(write ?? "", /No space left on device/),
  );

  // The manager's own writes fail too: a configuration whose files are the same size, then
  // one whose postgresql.conf is longer. Both fail; Postgres keeps the configuration it had.
  const attempts: [Record<string, string>, RegExp][] = [
    [{ work_mem: "7001kB" }, /No space left on device/],
    [paddedSettings(), /No space left on device.*postgresql\.conf/],
  ];
  for (const [settings, error] of attempts) {
    tally.track(() => 1);
    const configured = await within(configureSettings(compute, settings), 60_000, "/configure");
    const failed = await compute.status();
    await tally.check("unexpectedStatus", () => {
      assert.equal(configured.status, 500, configured.text);
      assert.match(configured.text, error);
      assert.equal(failed.status, "failed");
      assert.match(failed.error ?? "", error);
    });
    const syncNamesNow = await show(url, "synchronous_standby_names");
    const confOnDisk = await Deno.readTextFile(`${compute.pgdata}/postgresql.conf`);
    await tally.check("rowsLost", () => {
      assert.equal(syncNamesNow, syncNames, "commits still wait for the safekeepers");
      assert.ok(confOnDisk.includes(syncNames), "and will after the next reload");
    });
  }
  const postmasterNow = await compute.postmasterPid();
  await tally.check("unexpectedStatus", () => assert.equal(postmasterNow, postmaster));

  // Space freed: writes and /configure work again.
  await Deno.remove(ballast);
  await acked.write(url, 20);
  const again = await configureSettings(compute, { work_mem: "7003kB" });
  const workMem = await show(url, "work_mem");
  await tally.check("unusableComputes", () => {
    assert.equal(again.status, 200, again.text);
    assert.equal(workMem, "7003kB");
  });

  const terminated = await compute.terminate();
  await tally.check("unexpectedStatus", () => assert.equal(terminated.status, 200));
  await tally.expectOrderlyExit(compute, 0);
  const next = await cluster.startCompute({
    id: "next",
    tenantId: compute.tenantId,
    timelineId: compute.timelineId,
  });
  await tally.expectRows(next.postgresUrl, acked.ids);
}
