/**
 * @module
 * File-system helpers the harness modules share.
 */

import { giveToComputeUser } from "./_processes.ts";

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

/** Creates `path` (mode 0700) for the compute user: given to it when this process is root. */
export async function ownedDir(path: string): Promise<string> {
  await Deno.mkdir(path, { mode: 0o700 });
  await giveToComputeUser(path);
  return path;
}

/**
 * Writes pretty JSON to `path` through a temporary file and a rename; with
 * `forComputeUser`, the file is the compute user's (see {@linkcode giveToComputeUser}).
 */
export async function writeJsonAtomically(
  path: string,
  value: unknown,
  { forComputeUser = false }: { forComputeUser?: boolean } = {},
): Promise<void> {
  const temporary = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(temporary, JSON.stringify(value, null, 2) + "\n", { mode: 0o644 });
  if (forComputeUser) await giveToComputeUser(temporary);
  await Deno.rename(temporary, path);
}
