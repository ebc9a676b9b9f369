/**
 * @module
 * Downloading an extension archive from the remote extension storage (Neon's
 * "S3 proxy") and installing it: `GET <base>/<path>` (one attempt, as in
 * Neon), zstd-decompress, untar, and put `share/extension/*` into
 * `<sharedir>/extension` and `lib/*` into `<pkglibdir>`. Each file is written
 * beside its destination and renamed over it, so a backend loading a library
 * never sees half a file. Other entries of the archive are ignored.
 */

import { Buffer } from "node:buffer";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { zstdDecompress } from "node:zlib";
import type { Extract } from "tar-stream";
import { getLogger } from "../log.ts";
import { tarEntryPath } from "./basebackup.ts";
import { httpStatusLabel, UNKNOWN_HTTP_STATUS } from "./control_plane.ts";

const log = getLogger("extension_store");

const decompress = promisify(zstdDecompress);

/** A download or install that failed; the message is what the API reports. */
export class ExtensionDownloadError extends Error {
  override name = "ExtensionDownloadError";
}

/** Where an archive's files go: the install's `<sharedir>/extension` and `<pkglibdir>`. */
export interface ExtensionDirs {
  sharedir: string;
  pkglibdir: string;
}

/** What to download and where to install it. */
export interface ExtensionDownloadRequest {
  /** The extension, for messages. */
  extension: string;
  /** The storage's base URL, ending in `/`. */
  baseUrl: string;
  /** The archive's path relative to `baseUrl`. */
  path: string;
  dirs: ExtensionDirs;
  /** Called once per request with the `http_status` label and the archive's file name. */
  onAttempt?: (httpStatus: string, filename: string) => void;
}

/** What an install put where. */
export interface ExtensionInstallResult {
  /** Size of the downloaded (compressed) archive. */
  bytes: number;
  /** Absolute paths written. */
  files: string[];
}

/**
 * Downloads and installs one archive. Throws {@link ExtensionDownloadError}
 * (`error downloading extension "<ext>": "<reason>"` for the request, or the
 * unpack/install failure).
 */
export async function downloadExtension(
  request: ExtensionDownloadRequest,
): Promise<ExtensionInstallResult> {
  log.info(`Download extension ${JSON.stringify(request.extension)} from ${request.path}`);
  let archive: Uint8Array;
  try {
    archive = await fetchArchive(request);
  } catch (error) {
    throw new ExtensionDownloadError(
      `error downloading extension ${JSON.stringify(request.extension)}: ${
        JSON.stringify((error as Error).message)
      }`,
    );
  }
  let files: string[];
  try {
    files = await installArchive(archive, request.dirs);
  } catch (error) {
    throw new ExtensionDownloadError(
      `error installing extension ${JSON.stringify(request.extension)}: ${
        (error as Error).message
      }`,
    );
  }
  log.info(`installed extension ${request.extension}`, { bytes: archive.length, files });
  return { bytes: archive.length, files };
}

/** `GET`s the archive; 200 is the only success, 503 gets its own message. */
async function fetchArchive(request: ExtensionDownloadRequest): Promise<Uint8Array> {
  const url = new URL(request.path, request.baseUrl);
  const filename = url.pathname.split("/").pop() || "unknown";
  log.info(`Downloading extension file '${filename}' from uri ${url.href}`);
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    request.onAttempt?.(UNKNOWN_HTTP_STATUS, filename);
    throw new Error(
      `could not perform remote extensions server request: ${(error as Error).message}`,
    );
  }
  const status = httpStatusLabel(response.status);
  request.onAttempt?.(status, filename);
  if (response.status !== 200) {
    await response.body?.cancel();
    if (response.status === 503) {
      throw new Error("remote extensions server is temporarily unavailable");
    }
    throw new Error(`unexpected remote extensions server response status code: ${status}`);
  }
  try {
    return new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    throw new Error(
      `could not read remote extensions server response: ${(error as Error).message}`,
    );
  }
}

/** Where an archive entry goes, or null for entries outside `share/extension/` and `lib/`. */
export function archiveEntryTarget(name: string, dirs: ExtensionDirs): string | null {
  const relative = tarEntryPath(name);
  if (relative === null) return null;
  const share = /^share\/extension\/(.+)$/.exec(relative);
  if (share) return join(dirs.sharedir, "extension", share[1]);
  const lib = /^lib\/(.+)$/.exec(relative);
  if (lib) return join(dirs.pkglibdir, lib[1]);
  return null;
}

/**
 * Decompresses a `.tar.zst` archive and writes its `share/extension/*` and
 * `lib/*` files into `dirs`; returns the paths written.
 */
export async function installArchive(archive: Uint8Array, dirs: ExtensionDirs): Promise<string[]> {
  const tar = await decompress(archive);
  const written: string[] = [];
  for await (const entry of readTar(tar)) {
    const target = archiveEntryTarget(entry.name, dirs);
    if (target === null || entry.type !== "file") continue;
    await Deno.mkdir(dirname(target), { recursive: true, mode: 0o755 });
    const temporary = `${target}.${crypto.randomUUID()}.download`;
    try {
      await Deno.writeFile(temporary, entry.data, { mode: entry.mode });
      await Deno.chmod(temporary, entry.mode);
      await Deno.rename(temporary, target);
    } catch (error) {
      await Deno.remove(temporary).catch(() => {});
      throw error;
    }
    written.push(target);
  }
  return written;
}

interface TarFile {
  name: string;
  type: string;
  mode: number;
  data: Uint8Array;
}

/** The entries of an in-memory tar, each read into memory (archives are small). */
async function* readTar(tar: Uint8Array): AsyncGenerator<TarFile> {
  // Loaded on the first download only: the start-up does not need it.
  const { extract: tarExtract } = await import("tar-stream");
  const extract: Extract = tarExtract();
  extract.end(Buffer.from(tar.buffer, tar.byteOffset, tar.byteLength));
  for await (const entry of extract) {
    const chunks: Uint8Array[] = [];
    for await (const chunk of entry as AsyncIterable<Uint8Array>) chunks.push(chunk);
    const type = entry.header.type ?? "file";
    yield {
      name: entry.header.name,
      type: type === "contiguous-file" ? "file" : type,
      mode: ((entry.header.mode ?? 0o644) & 0o777) || 0o644,
      data: Buffer.concat(chunks),
    };
  }
}
