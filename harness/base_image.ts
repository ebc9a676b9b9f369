/**
 * @module
 * Base images: PostgreSQL data directories in the "shut down in recovery" state
 * (reference neon-04 §E.2 step 1). A compute started from a copy of one, with
 * the timeline's WAL in `pg_wal`, runs crash recovery to the end of that WAL and
 * stays on timeline 1.
 *
 * The first base image of every timeline is a copy of a template: `initdb` runs
 * once per process and Postgres binary directory, the result is cycled through a
 * standby start and stop, and cached in a private temporary directory removed
 * when the process unloads. A timeline imported from fast_import's PGDATA
 * starts from a copy of that instead, cycled the same way
 * ({@linkcode prepareImportedImage}). Later base images come from compaction
 * (`compaction.ts`).
 */

import { dirname, join } from "node:path";
import type { Lsn } from "../src/api/lsn.ts";
import { readControlFile } from "./pg_control.ts";
import { pgFileOwner, runAsPgUser } from "./_processes.ts";
import type { WalSeed } from "./safekeeper_wal.ts";
import {
  DEFAULT_WAL_SEGMENT_SIZE,
  segmentFileName,
  segmentNumber,
  segmentStart,
} from "./wal_format.ts";
import { isCheckpointRecord, scanRecords } from "./wal_records.ts";

/** The cluster state (as `pg_controldata` words it) of a usable base image. */
export const BASE_IMAGE_STATE = "shut down in recovery";

/** What the store needs to know about a base image. */
export interface BaseImageInfo {
  /** The checkpoint's REDO location: recovery from this image starts reading WAL here. */
  redoLsn: Lsn;
  /** The checkpoint record's location. */
  checkpointLsn: Lsn;
  systemId: string;
  state: string;
}

/** The directory holding `postgres`, `initdb`, … for a `pgbin` that names the binary or the directory. */
export function binDirOf(pgbin: string): string {
  try {
    if (Deno.statSync(pgbin).isDirectory) return pgbin;
  } catch {
    // Not there: treat it as the path of the postgres binary.
  }
  return dirname(pgbin);
}

/** Copies a base image (ownership and modes kept) to `target`, which must not exist. */
export async function copyImage(source: string, target: string): Promise<void> {
  const copy = await new Deno.Command("cp", {
    args: ["-a", source, target],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!copy.success) throw new Error(`cp: ${new TextDecoder().decode(copy.stderr).trim()}`);
}

/** The checkpoint, redo point, system id and state of a data directory, from its `pg_control`. */
export async function baseImageInfo(pgdata: string): Promise<BaseImageInfo> {
  const { redoLsn, checkpointLsn, systemId, state } = await readControlFile(pgdata);
  return { redoLsn, checkpointLsn, systemId, state };
}

/**
 * The end of the last WAL record in a fresh base image's `pg_wal`: where a
 * compute's history begins. Scans forward from the checkpoint record.
 */
export async function walEndOfImage(pgdata: string, info: BaseImageInfo): Promise<Lsn> {
  const { segmentPath, segmentStart } = segmentHolding(pgdata, info.checkpointLsn);
  const bytes = await Deno.readFile(segmentPath);
  const { records, completeLsn } = scanRecords(bytes, segmentStart, info.checkpointLsn, undefined, {
    stopAtZeroLength: true,
  });
  if (records.length === 0 || !isCheckpointRecord(records[0])) {
    throw new Error(`${pgdata}: no checkpoint record at its checkpoint location`);
  }
  return completeLsn;
}

/**
 * The first WAL every safekeeper's copy of a timeline starts from: the image's
 * segments from its redo point through `endLsn`, zero after `endLsn`.
 */
export async function imageWalSeed(
  image: { dir: string; redoLsn: Lsn },
  endLsn: Lsn,
  systemId: string,
): Promise<WalSeed> {
  const segments: WalSeed["segments"] = [];
  for (let segno = segmentNumber(image.redoLsn); segno <= segmentNumber(endLsn); segno++) {
    const bytes = await Deno.readFile(join(image.dir, "pg_wal", segmentFileName(1, segno)));
    segments.push({ segmentNumber: segno, bytes });
  }
  const seed: WalSeed = { systemId, segments, endLsn };
  for (const segment of segments) segment.bytes = seedSegment(seed, segment.segmentNumber);
  return seed;
}

/** Segment `segno` of `seed` as a whole segment, zero after the seed's end LSN. */
export function seedSegment(seed: WalSeed, segno: bigint): Uint8Array {
  const segment = seed.segments.find((s) => s.segmentNumber === segno);
  const out = new Uint8Array(DEFAULT_WAL_SEGMENT_SIZE);
  if (!segment) return out;
  const keep = seed.endLsn - segno * BigInt(out.length);
  if (keep > 0n) out.set(segment.bytes.subarray(0, Number(keep < out.length ? keep : out.length)));
  return out;
}

function segmentHolding(pgdata: string, lsn: Lsn): { segmentPath: string; segmentStart: Lsn } {
  return {
    segmentPath: join(pgdata, "pg_wal", segmentFileName(1, segmentNumber(lsn))),
    segmentStart: segmentStart(lsn),
  };
}

// ---------------------------------------------------------------------------
// The template (initdb once per process and binary directory)

const templates = new Map<string, Promise<string>>();
const templateRoots = new Set<string>();
let unloadHookInstalled = false;

/** The template data directory for `binDir`, made on first use. */
export function templateFor(binDir: string): Promise<string> {
  let template = templates.get(binDir);
  if (!template) {
    template = buildTemplate(binDir);
    templates.set(binDir, template);
    template.catch(() => templates.delete(binDir));
  }
  return template;
}

async function buildTemplate(binDir: string): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "timeline-template-" });
  rememberTemplateRoot(root);
  const owner = await pgFileOwner();
  if (owner) await Deno.chown(root, owner.uid, owner.gid);
  const pgdata = join(root, "pgdata");
  await runAsPgUser(join(binDir, "initdb"), [
    "-U",
    "cloud_admin",
    "--auth=trust",
    "--no-sync",
    "--no-instructions",
    "--encoding=UTF8",
    "--locale=C",
    "-D",
    pgdata,
  ]);
  await cycleAsStandby(binDir, root, pgdata);
  const { state } = await baseImageInfo(pgdata);
  if (state !== BASE_IMAGE_STATE) {
    throw new Error(
      `template ${pgdata} is in state ${JSON.stringify(state)}, not ${BASE_IMAGE_STATE}`,
    );
  }
  return pgdata;
}

/** Starts the fresh cluster once as a standby and stops it: "shut down in recovery". */
async function cycleAsStandby(binDir: string, root: string, pgdata: string): Promise<void> {
  const owner = await pgFileOwner();
  const signal = join(pgdata, "standby.signal");
  await Deno.writeTextFile(signal, "");
  if (owner) await Deno.chown(signal, owner.uid, owner.gid);
  await startAndStop(binDir, root, pgdata);
  await Deno.remove(signal);
}

/**
 * Starts Postgres on `pgdata` (no TCP; its socket and log in `root`), waits
 * until it is up, and stops it (fast). A failed start throws with its log.
 */
async function startAndStop(
  binDir: string,
  root: string,
  pgdata: string,
  extraOptions = "",
): Promise<void> {
  const owner = await pgFileOwner();
  const socketDir = join(root, "socket");
  const logFile = join(root, "standby.log");
  await Deno.mkdir(socketDir, { mode: 0o700 });
  if (owner) await Deno.chown(socketDir, owner.uid, owner.gid);
  const pgCtl = join(binDir, "pg_ctl");
  const serverOptions =
    `-c listen_addresses= -c unix_socket_directories=${socketDir} -c port=5432 -c fsync=off` +
    extraOptions;
  try {
    await runAsPgUser(pgCtl, [
      "start",
      "-w",
      "-t",
      "120",
      "-D",
      pgdata,
      "-l",
      logFile,
      "-o",
      serverOptions,
    ]);
  } catch (error) {
    const log = await Deno.readTextFile(logFile).catch(() => "");
    throw new Error(`${(error as Error).message}\n${log}`);
  } finally {
    await runAsPgUser(pgCtl, ["stop", "-w", "-t", "120", "-m", "fast", "-D", pgdata], {
      check: false,
    });
    await Deno.remove(logFile).catch(() => {});
    await Deno.remove(socketDir, { recursive: true }).catch(() => {});
  }
}

// ---------------------------------------------------------------------------
// Imported data directories (fast_import's published PGDATA)

/** An imported PGDATA that cannot become a base image. */
export class ImportedImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImportedImageError";
  }
}

/**
 * Turns a private copy of an imported PGDATA into a base image in place: it
 * must be a PGDATA of `binDir`'s major version on timeline 1, shut down
 * cleanly (or already a base image). It is given to the Postgres OS user,
 * started once normally if its last run had `wal_level=minimal` (as
 * fast_import's private Postgres has; recovery refuses such WAL), then
 * cycled through a standby start like the template. Throws
 * {@linkcode ImportedImageError} for a directory that does not qualify.
 */
export async function prepareImportedImage(binDir: string, pgdata: string): Promise<void> {
  const expected = await postgresMajor(binDir);
  const version = await Deno.readTextFile(join(pgdata, "PG_VERSION")).catch(() => null);
  if (version === null) {
    throw new ImportedImageError(`${pgdata} is not a PostgreSQL data directory (no PG_VERSION)`);
  }
  if (version.trim() !== String(expected)) {
    throw new ImportedImageError(
      `${pgdata} is a PostgreSQL ${version.trim()} data directory; the storage runs ${expected}`,
    );
  }
  const owner = await pgFileOwner();
  if (owner) {
    const chown = await new Deno.Command("chown", {
      args: ["-R", `${owner.uid}:${owner.gid}`, pgdata],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!chown.success) throw new Error(`chown: ${new TextDecoder().decode(chown.stderr).trim()}`);
  }
  const control = await readControlFile(pgdata);
  const state = control.state;
  if (state === BASE_IMAGE_STATE) return;
  if (state !== "shut down") {
    throw new ImportedImageError(
      `${pgdata} is in state ${JSON.stringify(state)}: import a data directory that was shut ` +
        "down cleanly",
    );
  }
  const timeline = control.timeline;
  if (timeline !== 1) {
    throw new ImportedImageError(`${pgdata} is on timeline ${timeline}; the storage needs 1`);
  }
  for (const leftover of ["postmaster.pid", "standby.signal", "recovery.signal"]) {
    await Deno.remove(join(pgdata, leftover)).catch(() => {});
  }
  const work = await Deno.makeTempDir({ prefix: "timeline-import-" });
  try {
    if (owner) await Deno.chown(work, owner.uid, owner.gid);
    if (control.walLevel === "minimal") {
      await startAndStop(binDir, work, pgdata, " -c wal_level=replica");
    }
    await cycleAsStandby(binDir, work, pgdata);
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  const { state: prepared } = await baseImageInfo(pgdata);
  if (prepared !== BASE_IMAGE_STATE) {
    throw new Error(`imported ${pgdata} is in state ${JSON.stringify(prepared)} after preparation`);
  }
}

/** The major version of `binDir`'s `postgres` (`postgres (PostgreSQL) 15.18 …` → 15). */
async function postgresMajor(binDir: string): Promise<number> {
  const { output } = await runAsPgUser(join(binDir, "postgres"), ["--version"]);
  const match = /\(PostgreSQL\) (\d+)/.exec(output);
  if (!match) throw new Error(`postgres --version printed ${JSON.stringify(output.trim())}`);
  return Number(match[1]);
}

function rememberTemplateRoot(root: string): void {
  templateRoots.add(root);
  if (unloadHookInstalled) return;
  unloadHookInstalled = true;
  globalThis.addEventListener("unload", () => {
    for (const dir of templateRoots) {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // Best effort at exit.
      }
    }
  });
}
