/**
 * @module
 * The directories fast_import works in and publishes to. The working
 * directory must be empty or absent (Neon: "working directory is not empty").
 * The destination directory is what Neon's S3 prefix is: `pgdata/` (the
 * PGDATA, copied in under a temporary name and renamed, so it is never seen
 * half-copied), `status/pgdata` (`{"done":true}`, written last: the storage
 * imports nothing without it) and `status/fast_import` (the job's outcome).
 */

import { join } from "node:path";

/** A directory cannot be used. */
export class DirectoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DirectoryError";
  }
}

/** The outcome Neon writes to `status/fast_import`. */
export interface JobStatus {
  command: "pgdata" | "dump-restore";
  done: boolean;
  error?: string;
}

/** Throws {@linkcode DirectoryError} unless `dir` is absent or an empty directory. */
export async function checkWorkingDirectory(dir: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isDirectory) throw new DirectoryError(`working directory ${dir} is not a directory`);
  for await (const _ of Deno.readDir(dir)) {
    throw new DirectoryError(`working directory is not empty: ${dir}`);
  }
}

/** Creates the working directory (its parent must exist); an empty one is fine. */
export async function createWorkingDirectory(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { mode: 0o700 });
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) {
      throw new DirectoryError(`create working directory ${dir}: ${(error as Error).message}`);
    }
  }
}

/** Throws {@linkcode DirectoryError} if `dest` already holds a published PGDATA. */
export async function checkDestination(dest: string): Promise<void> {
  for (const path of [join(dest, "pgdata"), join(dest, "status", "pgdata")]) {
    if (await exists(path)) {
      throw new DirectoryError(
        `destination directory ${dest} already holds a published PGDATA (${path} exists)`,
      );
    }
  }
}

/**
 * Publishes `pgdata` to `<dest>/pgdata`, then writes `<dest>/status/pgdata`.
 * A failed copy leaves neither behind.
 */
export async function publishPgdata(pgdata: string, dest: string): Promise<void> {
  await Deno.mkdir(join(dest, "status"), { recursive: true });
  const partial = join(dest, `.pgdata.${crypto.randomUUID()}.partial`);
  try {
    await copyTree(pgdata, partial);
    await Deno.rename(partial, join(dest, "pgdata"));
  } catch (error) {
    await Deno.remove(partial, { recursive: true }).catch(() => {});
    throw error;
  }
  await Deno.writeTextFile(join(dest, "status", "pgdata"), JSON.stringify({ done: true }));
}

/** Writes `<dest>/status/fast_import`. */
export async function writeJobStatus(dest: string, status: JobStatus): Promise<void> {
  await Deno.mkdir(join(dest, "status"), { recursive: true });
  await Deno.writeTextFile(join(dest, "status", "fast_import"), JSON.stringify(status));
}

/** The total size of the files under `dir` (0 when it does not exist yet). */
export async function directorySize(dir: string): Promise<number> {
  let total = 0;
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) total += await directorySize(path);
      else if (entry.isFile) total += (await Deno.stat(path).catch(() => ({ size: 0 }))).size;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return total;
}

/** The size of each `<dumpId>.dat` or `<dumpId>.dat.gz` file of a directory-format dump. */
export async function dataFileSizes(dumpDir: string): Promise<Map<number, number>> {
  const sizes = new Map<number, number>();
  for await (const entry of Deno.readDir(dumpDir)) {
    const match = /^(\d+)\.dat(\.gz|\.lz4|\.zst)?$/.exec(entry.name);
    if (match && entry.isFile) {
      sizes.set(Number(match[1]), (await Deno.stat(join(dumpDir, entry.name))).size);
    }
  }
  return sizes;
}

/** Copies a directory tree, keeping modes; a symbolic link is refused (a PGDATA made here has none). */
async function copyTree(source: string, target: string): Promise<void> {
  const info = await Deno.stat(source);
  await Deno.mkdir(target);
  await Deno.chmod(target, (info.mode ?? 0o700) & 0o7777);
  for await (const entry of Deno.readDir(source)) {
    const from = join(source, entry.name);
    const to = join(target, entry.name);
    if (entry.isDirectory) await copyTree(from, to);
    else if (entry.isFile) await Deno.copyFile(from, to);
    else throw new DirectoryError(`cannot publish ${from}: not a file or directory`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
