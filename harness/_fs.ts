/**
 * @module
 * File-system helpers the harness modules share.
 */

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
