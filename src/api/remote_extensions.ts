/**
 * @module
 * The remote extension catalogue of a spec (`remote_extensions`), read the way
 * Neon's `RemoteExtSpec::get_ext` reads it: which extension a requested file
 * belongs to, whether this compute may have it, and where its archive lives in
 * the extension storage (`<build_tag>/<arch>/<pg_major>/extensions/<ext>.tar.zst`).
 * Pure.
 */

import type { RemoteExtSpec } from "./spec.ts";

/** The requested file maps to no extension this compute may download (HTTP 404). */
export class RemoteExtensionNotFoundError extends Error {
  override name = "RemoteExtensionNotFoundError";
}

/**
 * The name a library is listed under in `library_index`: the file name with
 * everything from the first `.so` on removed (`postgis-3.so.1` → `postgis-3`).
 */
export function libraryIndexName(filename: string): string {
  return filename.replace(/\.so.*/, "");
}

/**
 * The extension whose archive holds `filename`: for a library, its
 * `library_index` entry; otherwise the name itself. The extension must be
 * listed in `public_extensions` or `custom_extensions` and have an
 * `extension_data` entry. Throws {@link RemoteExtensionNotFoundError} with
 * Neon's messages (`library … is not found`, `extension … is not found`,
 * `real_ext_name … is not found`), checked in that order.
 */
export function resolveRemoteExtension(
  remote: RemoteExtSpec,
  filename: string,
  isLibrary: boolean,
): string {
  let extension = filename;
  if (isLibrary) {
    const library = libraryIndexName(filename);
    const indexed = Object.hasOwn(remote.library_index, library)
      ? remote.library_index[library]
      : undefined;
    if (indexed === undefined) {
      throw new RemoteExtensionNotFoundError(`library ${library} is not found`);
    }
    extension = indexed;
  }
  const allowed = (remote.public_extensions ?? []).includes(extension) ||
    (remote.custom_extensions ?? []).includes(extension);
  if (!allowed) throw new RemoteExtensionNotFoundError(`extension ${extension} is not found`);
  if (!Object.hasOwn(remote.extension_data, extension)) {
    throw new RemoteExtensionNotFoundError(`real_ext_name ${extension} is not found`);
  }
  return extension;
}

/** Where an archive is built for: the build tag, Go's name of the CPU, the Postgres major. */
export interface ArchiveTarget {
  buildTag: string;
  /** `amd64` or `arm64` (see {@link goArch}). */
  arch: string;
  /** `v14` … `v17`: the install's major. */
  pgMajor: string;
}

/**
 * The archive's path relative to the extension storage's base URL:
 * `<build_tag>/<arch>/<pg_major>/extensions/<extension>.tar.zst`. Throws when
 * it would be absolute (an empty build tag), as Neon's `RemotePath` does.
 */
export function remoteExtensionPath(target: ArchiveTarget, extension: string): string {
  const path =
    `${target.buildTag}/${target.arch}/${target.pgMajor}/extensions/${extension}.tar.zst`;
  if (path.startsWith("/")) throw new Error(`remote extension path ${path} is absolute`);
  return path;
}

/** Go's architecture names, which the archive paths use: `x86_64` → `amd64`, `aarch64` → `arm64`. */
export function goArch(arch: string = Deno.build.arch): string {
  if (arch === "x86_64") return "amd64";
  if (arch === "aarch64") return "arm64";
  return arch;
}
