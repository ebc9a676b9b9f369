/**
 * @module
 * Reads the start of a data directory's `global/pg_control`, the fields the
 * harness needs, without `pg_controldata` (which PostgreSQL from npm does not
 * ship). The leading fields of `ControlFileData` are laid out alike in
 * PostgreSQL 14 through 17 (`src/include/catalog/pg_control.h`):
 *
 * | offset | field |
 * |---|---|
 * | 0 | `system_identifier` (uint64) |
 * | 8 | `pg_control_version` (uint32) |
 * | 16 | `state` (`DBState`, int32) |
 * | 32 | `checkPoint` (XLogRecPtr) |
 * | 40 | `checkPointCopy.redo` (XLogRecPtr) |
 * | 48 | `checkPointCopy.ThisTimeLineID` (uint32) |
 * | 172 | `wal_level` (int32; `CheckPoint` is 88 bytes in each: 17's new field fills padding) |
 *
 * Integers are in the machine's byte order; this reads little-endian (x86_64
 * and aarch64, what the harness runs on).
 */

import { join } from "node:path";
import type { Lsn } from "../src/api/lsn.ts";

/** `DBState` as `pg_controldata` prints it, indexed by the enum's value. */
const STATES = [
  "starting up",
  "shut down",
  "shut down in recovery",
  "shutting down",
  "in crash recovery",
  "in archive recovery",
  "in production",
] as const;

/** `WalLevel` by value, as `pg_controldata` prints it. */
const WAL_LEVELS = ["minimal", "replica", "logical"] as const;

/** `PG_CONTROL_VERSION` of the majors the harness runs (1300 for 13–16, 1700 for 17). */
const KNOWN_CONTROL_VERSIONS = new Set([1300, 1700]);

/** What the harness reads from `pg_control`. */
export interface ControlFile {
  /** The database system identifier, in decimal as `pg_controldata` prints it. */
  systemId: string;
  controlVersion: number;
  /** The cluster state, worded as `pg_controldata` words it. */
  state: string;
  /** "Latest checkpoint location". */
  checkpointLsn: Lsn;
  /** "Latest checkpoint's REDO location". */
  redoLsn: Lsn;
  /** "Latest checkpoint's TimeLineID". */
  timeline: number;
  /** "wal_level setting": the level the server last ran with. */
  walLevel: string;
}

/** Decodes the leading fields of a `pg_control` file's bytes; throws if they make no sense. */
export function parseControlFile(bytes: Uint8Array, source = "pg_control"): ControlFile {
  if (bytes.length < 176) throw new Error(`${source}: ${bytes.length} bytes is too short`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const controlVersion = view.getUint32(8, true);
  if (!KNOWN_CONTROL_VERSIONS.has(controlVersion)) {
    throw new Error(
      `${source}: pg_control version ${controlVersion} is not one of PostgreSQL 14–17's`,
    );
  }
  const stateValue = view.getInt32(16, true);
  const state = STATES[stateValue];
  if (state === undefined) throw new Error(`${source}: unknown cluster state ${stateValue}`);
  const walLevelValue = view.getInt32(172, true);
  const walLevel = WAL_LEVELS[walLevelValue];
  if (walLevel === undefined) throw new Error(`${source}: unknown wal_level ${walLevelValue}`);
  return {
    systemId: view.getBigUint64(0, true).toString(),
    controlVersion,
    state,
    checkpointLsn: view.getBigUint64(32, true),
    redoLsn: view.getBigUint64(40, true),
    timeline: view.getUint32(48, true),
    walLevel,
  };
}

/** Reads and decodes `<pgdata>/global/pg_control`. */
export async function readControlFile(pgdata: string): Promise<ControlFile> {
  const path = join(pgdata, "global", "pg_control");
  return parseControlFile(await Deno.readFile(path), path);
}
