/**
 * @module
 * Compaction: replays a timeline's WAL into a newer base image, so that a
 * compute starting later replays only the WAL since then (reference neon-04
 * §E.2, "periodic compaction").
 *
 * A private copy of the newest base image gets the WAL up to the commit LSN in
 * its `pg_wal` and starts as a standby with `recovery_target_lsn` at the last
 * record and `recovery_target_action = shutdown`, without hot standby (so no
 * settings must match the primary's) and without a network socket. Recovery
 * stops after that record and the server shuts down "in recovery", with a
 * restartpoint at the newest checkpoint it replayed: the new image's redo point.
 * Never promoted: the timeline stays timeline 1.
 */

import { join } from "node:path";
import { formatLsn, type Lsn } from "../src/api/lsn.ts";
import { BASE_IMAGE_STATE, baseImageInfo, binDirOf, copyImage } from "./base_image.ts";
import { pgFileOwner, pgUserCommand } from "./_processes.ts";
import { readWalRange, readWalSegment } from "./safekeeper_wal.ts";
import type { BaseImage, TimelineStore } from "./timeline_store.ts";
import { segmentFileName, segmentNumber } from "./wal_format.ts";
import { WalRecordScanner } from "./wal_records.ts";

/** Options of {@linkcode compactTimeline}. */
export interface CompactionOptions {
  /** How long the replay may take before it is killed; default 120 s. */
  timeoutMs?: number;
}

/** What a compaction did: the new image, or null when there was nothing to replay. */
export interface CompactionResult {
  image: BaseImage | null;
  /** The server's log of the replay. */
  log: string;
}

const READ_CHUNK = 4 * 1024 * 1024;
/** What PostgreSQL logs when recovery stops at `recovery_target_lsn`. */
const RECOVERY_STOPPED = "recovery stopping after WAL location (LSN)";

/**
 * Replays the timeline up to its commit LSN into a new base image and adds it to
 * the store (which then drops what nothing needs any more).
 */
export async function compactTimeline(
  store: TimelineStore,
  tenantId: string,
  timelineId: string,
  { timeoutMs = 120_000 }: CompactionOptions = {},
): Promise<CompactionResult> {
  const target = store.commitLsn(tenantId, timelineId);
  const newest = store.baseImages(tenantId, timelineId).at(-1)!;
  if (target <= newest.lsn) return { image: null, log: "" };
  const walDir = await store.walHolderDir(tenantId, timelineId, newest.redoLsn, target);
  if (walDir === null) {
    throw new Error(`no safekeeper holds WAL ${formatLsn(newest.redoLsn)}..${formatLsn(target)}`);
  }
  const lastRecordStart = await lastRecordBefore(walDir, newest.lsn, target);

  const binDir = binDirOf(store.pgbin);
  const work = join(store.dir, "tenants", tenantId, "timelines", timelineId);
  const pgdata = join(work, `base-${formatLsn(target).replace("/", "_")}`);
  // Unix socket paths are limited to 107 bytes: a short directory of its own.
  const socketDir = await Deno.makeTempDir({ prefix: "compact-" });
  const owner = await pgFileOwner();
  await copyImage(newest.dir, pgdata);
  try {
    for await (const entry of Deno.readDir(join(pgdata, "pg_wal"))) {
      if (entry.isFile) await Deno.remove(join(pgdata, "pg_wal", entry.name));
    }
    for (let segno = segmentNumber(newest.redoLsn); segno <= segmentNumber(target); segno++) {
      const path = join(pgdata, "pg_wal", segmentFileName(1, segno));
      await Deno.writeFile(path, await readWalSegment(walDir, segno, target), { mode: 0o600 });
      if (owner) await Deno.chown(path, owner.uid, owner.gid);
    }
    const signal = join(pgdata, "standby.signal");
    await Deno.writeTextFile(signal, "");
    if (owner) {
      await Deno.chown(signal, owner.uid, owner.gid);
      await Deno.chown(socketDir, owner.uid, owner.gid);
    }
    const log = await replay(
      join(binDir, "postgres"),
      pgdata,
      socketDir,
      lastRecordStart,
      timeoutMs,
    );
    const info = await baseImageInfo(pgdata);
    // The copy was already "shut down in recovery": only the log proves the replay ran.
    if (info.state !== BASE_IMAGE_STATE || !log.includes(RECOVERY_STOPPED)) {
      throw new Error(`compaction did not reach ${formatLsn(target)}:\n${log}`);
    }
    await Deno.remove(signal);
    const image: BaseImage = { dir: pgdata, lsn: target, redoLsn: info.redoLsn };
    await store.addBaseImage(tenantId, timelineId, image);
    return { image, log };
  } catch (error) {
    await Deno.remove(pgdata, { recursive: true }).catch(() => {});
    throw error;
  } finally {
    await Deno.remove(socketDir, { recursive: true }).catch(() => {});
  }
}

/** Runs the standby until it shuts itself down at the target; returns its log. */
async function replay(
  postgres: string,
  pgdata: string,
  socketDir: string,
  targetRecord: Lsn,
  timeoutMs: number,
): Promise<string> {
  const settings = {
    listen_addresses: "",
    unix_socket_directories: socketDir,
    port: "5432",
    hot_standby: "off",
    fsync: "off",
    shared_preload_libraries: "",
    recovery_target_lsn: formatLsn(targetRecord),
    recovery_target_inclusive: "on",
    recovery_target_action: "shutdown",
    restore_command: "",
    primary_conninfo: "",
    logging_collector: "off",
  };
  const args = ["-D", pgdata, ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])];
  const child = pgUserCommand(postgres, args, {
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, timeoutMs);
  try {
    const output = await child.output();
    const decoder = new TextDecoder();
    return decoder.decode(output.stdout) + decoder.decode(output.stderr);
  } finally {
    clearTimeout(timer);
  }
}

/** The start of the last record that ends at `target`, scanning from `from`. */
async function lastRecordBefore(walDir: string, from: Lsn, target: Lsn): Promise<Lsn> {
  const scanner = new WalRecordScanner({ endOfLastRecord: from });
  let last: Lsn | undefined;
  for (let position = from; position < target;) {
    const upTo = target - position > BigInt(READ_CHUNK) ? position + BigInt(READ_CHUNK) : target;
    for (const record of scanner.push(position, await readWalRange(walDir, position, upTo))) {
      last = record.startLsn;
    }
    position = upTo;
  }
  if (last === undefined || scanner.completeLsn !== target) {
    throw new Error(`no record ends at ${formatLsn(target)} after ${formatLsn(from)}`);
  }
  return last;
}
