/**
 * @module
 * A private copy of the PostgreSQL install for tests that change it (remote
 * extensions are installed into Postgres's own `share/extension` and `lib`
 * directories). The copy keeps the Debian layout under a new root
 * (`<dir>/usr/lib/postgresql/15`, `<dir>/usr/share/postgresql/15`), so
 * Postgres's relocatable path logic finds its share directory next to the
 * binaries; it is owned by the `postgres` OS user, who runs the managers.
 *
 * The manager's `compute` permission set names the system binaries; for a
 * copied install {@linkcode relocatedRunFlags} gives the same `run` grants at
 * the copy's location.
 */

import { basename, dirname, join } from "node:path";
import { lookupUser, PG_OS_USER } from "./_processes.ts";

/** Where the system's PostgreSQL 15 lives (Debian layout). */
export const SYSTEM_PG_LIB = "/usr/lib/postgresql/15";
export const SYSTEM_PG_SHARE = "/usr/share/postgresql/15";

/** A copied install; `close()` (or `await using`) removes it. */
export interface PgInstall extends AsyncDisposable {
  /** The temporary directory holding `usr/…`. */
  root: string;
  /** `<root>/usr/lib/postgresql/15/bin/postgres`, for the cluster's `pgbin`. */
  pgbin: string;
  /** What `pg_config --sharedir` reports for the copy. */
  sharedir: string;
  /** What `pg_config --pkglibdir` reports for the copy. */
  pkglibdir: string;
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
 * Copies the system install into a new temporary directory under `tmpDir`,
 * removes the control, SQL and library files of `withoutExtensions` from the
 * copy, and gives it to the `postgres` OS user.
 */
export async function copyPgInstall(
  { tmpDir = "/tmp", withoutExtensions = [] }: {
    tmpDir?: string;
    withoutExtensions?: readonly string[];
  } = {},
): Promise<PgInstall> {
  const owner = await lookupUser(PG_OS_USER);
  const root = await Deno.makeTempDir({ dir: tmpDir, prefix: "compute-ctl-pg-install-" });
  const close = () => Deno.remove(root, { recursive: true }).catch(() => {});
  try {
    await Deno.chmod(root, 0o755);
    const lib = join(root, SYSTEM_PG_LIB);
    const share = join(root, SYSTEM_PG_SHARE);
    await Deno.mkdir(dirname(lib), { recursive: true });
    await Deno.mkdir(dirname(share), { recursive: true });
    await run("cp", ["-a", SYSTEM_PG_LIB, dirname(lib)]);
    await run("cp", ["-a", SYSTEM_PG_SHARE, dirname(share)]);
    const entries = await Array.fromAsync(Deno.readDir(join(share, "extension")));
    for (const extension of withoutExtensions) {
      for (const file of extensionFiles(share, join(lib, "lib"), extension, entries)) {
        await Deno.remove(file);
      }
    }
    await run("chown", ["-R", `${owner.uid}:${owner.gid}`, join(root, "usr")]);
    return {
      root,
      pgbin: join(lib, "bin", "postgres"),
      sharedir: share,
      pkglibdir: join(lib, "lib"),
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await close();
    throw error;
  }
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
 * relocated install: entries beside the system `postgres` are moved beside
 * `pgbin`; nothing when `pgbin` is the system one. `-P=compute` plus
 * `--allow-run` replaces the set's `run` list, so the flag repeats all of it.
 */
export function relocatedRunFlags(managerRoot: string, pgbin: string): string[] {
  const systemBin = join(SYSTEM_PG_LIB, "bin");
  if (dirname(pgbin) === systemBin) return [];
  const config = JSON.parse(Deno.readTextFileSync(join(managerRoot, "deno.json")));
  const run: string[] = config.permissions.compute.run;
  const moved = run.map((entry) =>
    dirname(entry) === systemBin ? join(dirname(pgbin), basename(entry)) : entry
  );
  return [`--allow-run=${moved.join(",")}`];
}
