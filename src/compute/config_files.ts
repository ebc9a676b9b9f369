/**
 * @module
 * The files of PGDATA a reconfiguration may rewrite (`postgresql.conf`,
 * `pg_hba.conf`, the TLS key pair), saved before it starts and put back when
 * it fails, so that after a reload Postgres runs on exactly the configuration
 * it ran before.
 */

import { SERVER_CRT, SERVER_KEY } from "../postgres/conf.ts";
import { replaceFile } from "../postgres/files.ts";

/** The files a reconfiguration may write, relative to PGDATA. */
export const RECONFIGURED_FILES: readonly string[] = [
  "postgresql.conf",
  "pg_hba.conf",
  SERVER_CRT,
  SERVER_KEY,
];

/** The bytes of each of {@link RECONFIGURED_FILES} (null: the file did not exist). */
export interface SavedConfigFiles {
  readonly pgdata: string;
  readonly contents: ReadonlyMap<string, Uint8Array | null>;
}

async function readOrNull(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((byte, index) => byte === b[index]);
}

/** Reads the files a reconfiguration may rewrite, to put them back with {@link restoreConfigFiles}. */
export async function saveConfigFiles(pgdata: string): Promise<SavedConfigFiles> {
  const read = await Promise.all(
    RECONFIGURED_FILES.map((name) => readOrNull(`${pgdata}/${name}`)),
  );
  return { pgdata, contents: new Map(RECONFIGURED_FILES.map((name, i) => [name, read[i]])) };
}

/**
 * The names of the saved files whose bytes on disk now differ from the saved
 * ones (written, created or removed since); empty when a reload would change
 * nothing.
 */
export async function changedConfigFiles(saved: SavedConfigFiles): Promise<string[]> {
  const entries = [...saved.contents];
  const now = await Promise.all(entries.map(([name]) => readOrNull(`${saved.pgdata}/${name}`)));
  return entries.filter(([, before], i) => !sameBytes(before, now[i])).map(([name]) => name);
}

/**
 * Puts every saved file back as it was (removing one that did not exist) and
 * returns the names of those that had changed; empty when nothing had.
 * A file that is gone is written anew readable by its owner only, as the TLS
 * key must be; one that exists keeps its mode.
 */
export async function restoreConfigFiles(saved: SavedConfigFiles): Promise<string[]> {
  const changed: string[] = [];
  for (const [name, before] of saved.contents) {
    const path = `${saved.pgdata}/${name}`;
    const now = await readOrNull(path);
    if (sameBytes(before, now)) continue;
    if (before === null) await Deno.remove(path);
    else await replaceFile(path, before, now === null ? 0o600 : undefined);
    changed.push(name);
  }
  return changed;
}
