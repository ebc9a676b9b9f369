/**
 * @module
 * File-system helpers the harness modules share.
 */

import type { OsUser } from "./_processes.ts";

/** Whether something exists at `path` (a dangling link counts); other errors propagate. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Creates `path` (mode 0700) owned by `user`. */
export async function ownedDir(path: string, user: OsUser): Promise<string> {
  await Deno.mkdir(path, { mode: 0o700 });
  await Deno.chown(path, user.uid, user.gid);
  return path;
}

/** Writes pretty JSON to `path` through a temporary file and a rename, optionally chowned. */
export async function writeJsonAtomically(
  path: string,
  value: unknown,
  owner?: OsUser,
): Promise<void> {
  const temporary = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(temporary, JSON.stringify(value, null, 2) + "\n", { mode: 0o644 });
  if (owner) await Deno.chown(temporary, owner.uid, owner.gid);
  await Deno.rename(temporary, path);
}
