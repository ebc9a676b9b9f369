/**
 * @module
 * Where a PostgreSQL install keeps extensions, read from its layout around
 * `--pgbin` when there is no `pg_config` to ask. Postgres finds its share and
 * library directories relative to its own binary, keeping the layout it was
 * built with, so the candidates are the layouts installs come in:
 *
 * - relocatable (`<root>/bin`, `<root>/share/postgresql`,
 *   `<root>/lib/postgresql`): PostgreSQL from npm, wherever it is unpacked
 *   (also as `/usr/lib/postgresql/<N>` in an image);
 * - Debian (`<prefix>/lib/postgresql/<N>/bin`, `<prefix>/share/postgresql/<N>`,
 *   `<prefix>/lib/postgresql/<N>/lib`), also a copy under another prefix;
 * - flat (`<root>/share`, `<root>/lib`): a source build whose prefix names
 *   Postgres (`/usr/local/pgsql`, `/usr/pgsql-16`).
 *
 * The first whose `<sharedir>/extension` and `<pkglibdir>` both exist wins.
 */

import { dirname, join } from "node:path";

/** Where an install keeps extensions: `<sharedir>/extension` and `<pkglibdir>`. */
export interface InstallDirs {
  sharedir: string;
  pkglibdir: string;
}

/** One layout an install may have, with the directories it implies. */
export interface LayoutCandidate extends InstallDirs {
  layout: "relocatable" | "debian" | "flat";
}

/** No candidate layout matches the install of `--pgbin`. */
export class InstallLayoutError extends Error {
  override name = "InstallLayoutError";
}

/** Tells whether `path` is a directory; throws `NotCapable` when this process may not look. */
export type IsDirectory = (path: string) => Promise<boolean>;

/** The layouts the install of `pgbin` may have, in the order they are tried. Pure. */
export function layoutCandidates(pgbin: string): LayoutCandidate[] {
  if (!pgbin.startsWith("/")) return [];
  const bin = dirname(pgbin);
  const root = dirname(bin);
  const candidates: LayoutCandidate[] = [{
    layout: "relocatable",
    sharedir: join(root, "share", "postgresql"),
    pkglibdir: join(root, "lib", "postgresql"),
  }];
  const debian = /^(.*)\/lib\/postgresql\/(\d+)\/bin$/.exec(bin);
  if (debian) {
    const [, prefix, major] = debian;
    candidates.push({
      layout: "debian",
      sharedir: `${prefix}/share/postgresql/${major}`,
      pkglibdir: `${prefix}/lib/postgresql/${major}/lib`,
    });
  }
  candidates.push({ layout: "flat", sharedir: join(root, "share"), pkglibdir: join(root, "lib") });
  return candidates;
}

/** {@linkcode IsDirectory} by `Deno.stat`: false when missing or unreadable by the OS. */
export async function directoryExists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    return false;
  }
}

/**
 * The first of {@linkcode layoutCandidates} whose `<sharedir>/extension` and
 * `<pkglibdir>` exist. Throws {@linkcode InstallLayoutError} naming every
 * place looked at, and those this process was not allowed to look at.
 */
export async function installDirsFromLayout(
  pgbin: string,
  isDirectory: IsDirectory = directoryExists,
): Promise<LayoutCandidate> {
  const candidates = layoutCandidates(pgbin);
  if (candidates.length === 0) {
    throw new InstallLayoutError(
      `--pgbin ${pgbin} is not an absolute path, so where its install keeps extensions is unknown`,
    );
  }
  const refused: string[] = [];
  for (const candidate of candidates) {
    if (await hasDirectories(candidate, isDirectory, refused)) return candidate;
  }
  const looked = candidates.map((candidate) => join(candidate.sharedir, "extension"));
  const unreadable = refused.length === 0
    ? ""
    : `; this process may not look at ${refused.join(", ")} (grant "read" of them)`;
  throw new InstallLayoutError(
    `cannot tell where the install of --pgbin ${pgbin} keeps extensions: it has no pg_config ` +
      `this process may run, and none of ${looked.join(", ")} exists${unreadable}`,
  );
}

async function hasDirectories(
  candidate: LayoutCandidate,
  isDirectory: IsDirectory,
  refused: string[],
): Promise<boolean> {
  for (const path of [join(candidate.sharedir, "extension"), candidate.pkglibdir]) {
    try {
      if (!(await isDirectory(path))) return false;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotCapable)) throw error;
      refused.push(path);
      return false;
    }
  }
  return true;
}
