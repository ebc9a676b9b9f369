/**
 * @module
 * A private copy of a PostgreSQL install for tests that change it (remote
 * extensions are installed into Postgres's own `share/extension` and `lib`
 * directories). A Debian install keeps its layout under a new root
 * (`<dir>/usr/lib/postgresql/<major>`, `<dir>/usr/share/postgresql/<major>`);
 * npm's relocatable tree is copied whole (`<dir>/native`). Either way
 * Postgres's relocatable path logic finds its share directory from the
 * binaries. The copy is owned by the compute user, who runs the managers.
 *
 * The manager's `compute` permission set names the installs' binaries; for a
 * copied install {@linkcode relocatedRunFlags} gives the same `run` grants at
 * the copy's location.
 */

import { basename, dirname, join } from "node:path";
import { giveToComputeUser } from "./_processes.ts";
import { locatePostgresOnce, type PgLocation } from "./pg_locate.ts";

/** A copied install; `close()` (or `await using`) removes it. */
export interface PgInstall extends AsyncDisposable {
  /** The temporary directory holding `usr/…`. */
  root: string;
  /** The copy's `postgres`, for the cluster's `pgbin`. */
  pgbin: string;
  /** What `pg_config --sharedir` reports for the copy. */
  sharedir: string;
  /** What `pg_config --pkglibdir` reports for the copy. */
  pkglibdir: string;
  /** The install it is a copy of. */
  original: PgLocation;
  close(): Promise<void>;
}

async function run(command: string, args: string[]): Promise<void> {
  const output = await new Deno.Command(command, { args, stdout: "null", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr).trim()}`,
    );
  }
}

/**
 * Copies `install` (default: the default major's) into a new temporary directory under `tmpDir`,
 * removes the control, SQL and library files of `withoutExtensions` from the
 * copy, and gives it to the compute user.
 */
export async function copyPgInstall(
  { tmpDir = "/tmp", withoutExtensions = [], install }: {
    tmpDir?: string;
    withoutExtensions?: readonly string[];
    install?: PgLocation;
  } = {},
): Promise<PgInstall> {
  const source = install ?? await locatePostgresOnce();
  const root = await Deno.makeTempDir({ dir: tmpDir, prefix: "compute-ctl-pg-install-" });
  const close = () => Deno.remove(root, { recursive: true }).catch(() => {});
  try {
    await Deno.chmod(root, 0o755);
    const copy = source.source === "debian"
      ? await copyDebianInstall(source, root)
      : await copyTree(dirname(source.binDir), join(root, "native"), source);
    const { lib, share } = copy;
    const entries = await Array.fromAsync(Deno.readDir(join(share, "extension")));
    for (const extension of withoutExtensions) {
      for (const file of extensionFiles(share, lib, extension, entries)) {
        await Deno.remove(file);
      }
    }
    await giveToComputeUser(copy.top, { recursive: true });
    return {
      root,
      pgbin: copy.pgbin,
      sharedir: share,
      pkglibdir: lib,
      original: source,
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Where a copy's pieces are: the directory to hand over, the server, the lib and share dirs. */
interface CopiedTree {
  top: string;
  pgbin: string;
  lib: string;
  share: string;
}

/** Debian's two directories of `source`, under `root` at the same paths. */
async function copyDebianInstall(source: PgLocation, root: string): Promise<CopiedTree> {
  const libRoot = dirname(source.binDir); // /usr/lib/postgresql/<major>
  const lib = join(root, libRoot);
  const share = join(root, source.sharedir);
  await Deno.mkdir(dirname(lib), { recursive: true });
  await Deno.mkdir(dirname(share), { recursive: true });
  await run("cp", ["-a", libRoot, dirname(lib)]);
  await run("cp", ["-a", source.sharedir, dirname(share)]);
  return {
    top: join(root, "usr"),
    pgbin: join(lib, "bin", "postgres"),
    lib: join(lib, "lib"),
    share,
  };
}

/** A relocatable install (bin, lib and share under one directory) copied whole to `target`. */
async function copyTree(from: string, target: string, source: PgLocation): Promise<CopiedTree> {
  await run("cp", ["-a", from, target]);
  const moved = (path: string) => join(target, path.slice(from.length));
  return {
    top: target,
    pgbin: moved(source.pgbin),
    lib: moved(source.pkglibdir),
    share: moved(source.sharedir),
  };
}

/**
 * The files of `extension` in an install: `<share>/extension/<ext>.control`,
 * `<ext>--*.sql`, and `<lib>/<ext>.so` when it exists among `entries` or on disk.
 */
export function extensionFiles(
  share: string,
  lib: string,
  extension: string,
  entries: readonly Deno.DirEntry[],
): string[] {
  const files = entries
    .map((entry) => entry.name)
    .filter((name) => name === `${extension}.control` || name.startsWith(`${extension}--`))
    .map((name) => join(share, "extension", name));
  try {
    Deno.statSync(join(lib, `${extension}.so`));
    files.push(join(lib, `${extension}.so`));
  } catch {
    // SQL-only extension
  }
  return files;
}

/**
 * The deno flags that grant the `compute` permission set's `run` list at a
 * relocated install: the programs the set grants beside each `postgres` it
 * names (`pg_ctl`, …) are granted beside `pgbin` instead; nothing when the set
 * already names `pgbin`. `-P=compute` plus `--allow-run` replaces the set's
 * `run` list, so the flag repeats the rest of it.
 */
export function relocatedRunFlags(managerRoot: string, pgbin: string): string[] {
  const config = JSON.parse(Deno.readTextFileSync(join(managerRoot, "deno.json")));
  const run: string[] = config.permissions.compute.run;
  const absolute = (entry: string) => entry.startsWith("./") ? join(managerRoot, entry) : entry;
  if (run.some((entry) => absolute(entry) === pgbin)) return [];
  const serverDirs = new Set(
    run.filter((entry) => basename(entry) === "postgres").map((entry) => dirname(absolute(entry))),
  );
  const inServerDir = (entry: string) => serverDirs.has(dirname(absolute(entry)));
  const programs = new Set(run.filter(inServerDir).map((entry) => basename(entry)));
  const moved = [...programs].map((program) => join(dirname(pgbin), program));
  return [`--allow-run=${[...moved, ...run.filter((entry) => !inServerDir(entry))].join(",")}`];
}
