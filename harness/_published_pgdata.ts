/**
 * @module
 * What fast_import leaves in its `--destination-dir` (`pgdata/`,
 * `status/pgdata` saying `{"done": true}`), as the harness checks it before it
 * imports the PGDATA as a timeline.
 */

import { isAbsolute, join } from "node:path";
import { HarnessBadRequestError } from "./_errors.ts";

/**
 * The `pgdata/` of a directory fast_import published to (`--destination-dir`),
 * once its `status/pgdata` says `{"done": true}`, as Neon's pageserver waits
 * for that marker; otherwise a {@linkcode HarnessBadRequestError} saying what
 * is missing.
 */
export async function publishedPgdata(importDir: string): Promise<string> {
  if (!isAbsolute(importDir)) {
    throw new HarnessBadRequestError(`import_pgdata must be an absolute path, got ${importDir}`);
  }
  const statusPath = join(importDir, "status", "pgdata");
  let text: string;
  try {
    text = await Deno.readTextFile(statusPath);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new HarnessBadRequestError(
      `${importDir} holds no finished fast_import pgdata: ${statusPath} does not exist`,
    );
  }
  let done = false;
  try {
    done = JSON.parse(text)?.done === true;
  } catch {
    // not JSON: not done
  }
  if (!done) {
    throw new HarnessBadRequestError(
      `${statusPath} says ${JSON.stringify(text.trim())}, not {"done": true}`,
    );
  }
  const pgdata = join(importDir, "pgdata");
  const info = await Deno.stat(pgdata).catch(() => null);
  if (!info?.isDirectory) throw new HarnessBadRequestError(`${pgdata} is not a directory`);
  return pgdata;
}
