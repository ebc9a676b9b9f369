/**
 * @module
 * The names a safekeeper goes by in vanilla storage mode, shared by the manager
 * (which lists them in `synchronous_standby_names`) and the harness (whose
 * safekeepers stream WAL under them as `application_name`): one name per entry
 * of the spec's `safekeeper_connstrings`, and the majority that must flush a
 * commit. Pure.
 */

/** Longest name Postgres keeps (`NAMEDATALEN - 1`): an `application_name` is cut there. */
export const MAX_STANDBY_NAME_BYTES = 63;

const PREFIX = "safekeeper_";
const HASHED_KEEP_CHARS = 54;

/**
 * The `application_name` of the safekeeper behind `entry` (`host:port` as in
 * `safekeeper_connstrings`): `safekeeper_` + the lower-cased entry with every
 * character outside `[a-z0-9]` replaced by `_`. A name longer than 63 bytes is
 * cut to 54 characters followed by `_` and the 8-hex-digit FNV-1a hash of
 * `entry`, so it survives Postgres's truncation and stays distinct. Depends on
 * `entry` alone, so reordering the list renames nothing.
 */
export function safekeeperStandbyName(entry: string): string {
  const name = PREFIX + entry.toLowerCase().replace(/[^a-z0-9]/gu, "_");
  if (name.length <= MAX_STANDBY_NAME_BYTES) return name;
  return `${name.slice(0, HASHED_KEEP_CHARS)}_${fnv1a32(entry).toString(16).padStart(8, "0")}`;
}

/** ⌊n/2⌋ + 1: how many of `n` safekeepers make a majority (Neon's quorum). */
export function vanillaQuorumSize(safekeeperCount: number): number {
  return Math.floor(safekeeperCount / 2) + 1;
}

/** 32-bit FNV-1a over the UTF-8 bytes of `text`. */
function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash = Math.imul(hash ^ byte, 0x01000193);
  }
  return hash >>> 0;
}
