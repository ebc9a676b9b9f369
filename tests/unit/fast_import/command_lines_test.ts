/**
 * The command lines fast_import runs and the tuning behind them, compared with
 * Neon's `fast_import.rs` and `postgres_initdb`: sizes from --memory-mb in
 * 32-bit float arithmetic, one worker per CPU, pg_dump/pg_restore's common
 * flags, and children that inherit nothing.
 */

import assert from "node:assert/strict";
import {
  childEnv,
  commonArgs,
  DEFAULT_MEMORY_MB,
  importTuning,
  initdbArgs,
  pgDumpArgs,
  pgRestoreArgs,
  pgRestoreListArgs,
  postgresArgs,
  privateConnstring,
  psqlArgs,
} from "../../../src/fast_import/command_lines.ts";

Deno.test("tuning: 10 % shared buffers, 70 % maintenance_work_mem, truncated like Rust's f32", () => {
  assert.deepEqual(importTuning({ numCpus: 4 }), {
    parallelWorkers: 4,
    sharedBuffersMb: 25, // 256 * 0.1 = 25.6
    maintenanceWorkMemMb: 179, // 256 * 0.7 = 179.2
  });
  assert.equal(DEFAULT_MEMORY_MB, 256);
  assert.deepEqual(importTuning({ numCpus: 1, memoryMb: 1000 }), {
    parallelWorkers: 1,
    sharedBuffersMb: 100,
    maintenanceWorkMemMb: 700,
  });
  // 90 * 0.7 is 62.99999… in doubles (→ 62) but 63.0 in f32, which Neon computes in.
  assert.equal(importTuning({ numCpus: 1, memoryMb: 90 }).maintenanceWorkMemMb, 63);
  assert.equal(importTuning({ numCpus: 1, memoryMb: 10 }).sharedBuffersMb, 1);
  assert.deepEqual(importTuning({ numCpus: 16, memoryMb: 65536 }), {
    parallelWorkers: 16,
    sharedBuffersMb: 6553,
    maintenanceWorkMemMb: 45875,
  });
});

Deno.test("the private Postgres gets Neon's bulk-loading settings and no unix socket", () => {
  const tuning = importTuning({ numCpus: 2, memoryMb: 1024 });
  assert.deepEqual(postgresArgs({ pgdata: "/w/pgdata", port: 5433, tuning }), [
    "-D",
    "/w/pgdata",
    "-p",
    "5433",
    ...[
      "wal_level=minimal",
      "shared_buffers=102MB",
      "max_wal_senders=0",
      "fsync=off",
      "full_page_writes=off",
      "synchronous_commit=off",
      "maintenance_work_mem=716MB",
      "max_parallel_maintenance_workers=2",
      "max_parallel_workers=2",
      "max_parallel_workers_per_gather=2",
      "max_worker_processes=2",
      "effective_io_concurrency=100",
      "unix_socket_directories=",
    ].flatMap((setting) => ["-c", setting]),
  ]);
  assert.equal(
    privateConnstring(5433, "neondb"),
    "host=localhost port=5433 user=cloud_admin dbname=neondb",
  );
});

Deno.test("initdb as postgres_initdb runs it: the locale provider depends on the major", () => {
  const base = [
    "--pgdata",
    "/w/pgdata",
    "--username",
    "cloud_admin",
    "--encoding",
    "utf8",
    "--locale",
    "C.UTF-8",
    "--no-instructions",
    "--no-sync",
  ];
  assert.deepEqual(initdbArgs({ pgdata: "/w/pgdata", pgMajor: 14 }), base);
  assert.deepEqual(initdbArgs({ pgdata: "/w/pgdata", pgMajor: 15 }), [
    ...base,
    "--locale-provider",
    "libc",
  ]);
  assert.deepEqual(initdbArgs({ pgdata: "/w/pgdata", pgMajor: 17 }), [
    ...base,
    "--locale-provider",
    "builtin",
  ]);
});

Deno.test("pg_dump and pg_restore share Neon's flags; the source and destination come last", () => {
  const common = commonArgs({ jobs: 4, noEventTriggersFlag: false });
  assert.deepEqual(common, [
    "--no-owner",
    "--no-privileges",
    "--no-publications",
    "--no-security-labels",
    "--no-subscriptions",
    "--no-tablespaces",
    "--format",
    "directory",
    "--jobs",
    "4",
    "--verbose",
  ]);
  assert.ok(
    commonArgs({ jobs: 1, noEventTriggersFlag: true }).includes("--no-event-triggers"),
    "Neon's patched programs get the flag",
  );
  assert.deepEqual(pgDumpArgs(common, { dumpDir: "/w/dumpdir", source: "host=s dbname=d" }), [
    ...common,
    "-f",
    "/w/dumpdir",
    "--no-sync",
    "host=s dbname=d",
  ]);
  assert.deepEqual(
    pgRestoreArgs(common, {
      dumpDir: "/w/dumpdir",
      listFile: "/w/restore.list",
      destination: "postgresql://d/x",
    }),
    [...common, "--use-list", "/w/restore.list", "-d", "postgresql://d/x", "/w/dumpdir"],
  );
  assert.deepEqual(pgRestoreListArgs("/w/dumpdir"), [
    "--list",
    "--format",
    "directory",
    "/w/dumpdir",
  ]);
});

Deno.test("psql never prompts and stops at the first error", () => {
  const args = psqlArgs("host=x dbname=y", "SELECT 1");
  assert.deepEqual(args.slice(-4), ["--command", "SELECT 1", "--dbname", "host=x dbname=y"]);
  for (const flag of ["--no-psqlrc", "--no-password", "--tuples-only", "--no-align"]) {
    assert.ok(args.includes(flag), flag);
  }
  assert.deepEqual(args.slice(args.indexOf("--set"), args.indexOf("--set") + 2), [
    "--set",
    "ON_ERROR_STOP=1",
  ]);
});

Deno.test("children inherit nothing: LD_LIBRARY_PATH only where Deno allows it, sanitizer options passed on", () => {
  assert.deepEqual(childEnv({ pgLibDir: "/pg/lib", libraryPathAllowed: false }), {});
  assert.deepEqual(childEnv({ pgLibDir: "/pg/lib", libraryPathAllowed: true }), {
    LD_LIBRARY_PATH: "/pg/lib",
  });
  assert.deepEqual(
    childEnv({
      pgLibDir: "/pg/lib",
      libraryPathAllowed: false,
      sanitizerOptions: { ASAN_OPTIONS: "detect_leaks=0", UBSAN_OPTIONS: undefined },
    }),
    { ASAN_OPTIONS: "detect_leaks=0" },
  );
});
