/**
 * @module
 * A fake remote extension storage (Neon's "S3 proxy" for extensions): an HTTP
 * server on a free loopback port that serves
 * `<build_tag>/<arch>/<pg_major>/extensions/<ext>.tar.zst` archives built from
 * REAL extensions of a PostgreSQL install (their control and SQL files under
 * `share/extension/`, their library under `lib/`), counts requests, and can
 * hold requests back or answer an error, for tests.
 *
 * ```ts
 * await using store = await startExtensionStore({ source: system, extensions: ["pg_trgm"] });
 * // compute_ctl --remote-ext-base-url store.url
 * ```
 */

import { Buffer } from "node:buffer";
import { basename } from "node:path";
import { zstdCompressSync } from "node:zlib";
import { pack as tarPack } from "tar-stream";
import { type ArchiveTarget, goArch, remoteExtensionPath } from "../src/api/remote_extensions.ts";
import { extensionFiles } from "./pg_install.ts";

/** Where the extensions' files are read from. */
export interface ExtensionSource {
  sharedir: string;
  pkglibdir: string;
}

/** Options of {@linkcode startExtensionStore}. */
export interface ExtensionStoreOptions {
  source: ExtensionSource;
  /** Extensions to package, each as `<ext>.tar.zst`. */
  extensions: readonly string[];
  /** Default `latest` (what the manager uses without `BUILD_TAG`). */
  buildTag?: string;
  /** Default `v15`. */
  pgMajor?: string;
}

/** A running store. */
export interface ExtensionStore extends AsyncDisposable {
  /** The base URL for `--remote-ext-base-url`, ending in `/`. */
  readonly url: string;
  /** The archive path of `extension`, relative to {@linkcode url}. */
  archivePath(extension: string): string;
  /** How many `GET`s reached the archive of `extension` (served or not). */
  requests(extension: string): number;
  /** Answer `status` (with an empty body) for `extension` from now on; null: serve it again. */
  setStatus(extension: string, status: number | null): void;
  /** Holds every response until the returned function is called. */
  hold(): () => void;
  close(): Promise<void>;
}

/**
 * Builds the `.tar.zst` of one extension of `source`: `share/extension/<files>`
 * and `lib/<ext>.so` (if it has one). Throws if the install has no such extension.
 */
export async function buildExtensionArchive(
  source: ExtensionSource,
  extension: string,
): Promise<Uint8Array> {
  const entries = await Array.fromAsync(Deno.readDir(`${source.sharedir}/extension`));
  const files = extensionFiles(source.sharedir, source.pkglibdir, extension, entries);
  if (!files.some((file) => file.endsWith(".control"))) {
    throw new Error(`${source.sharedir} has no extension ${extension}`);
  }
  const pack = tarPack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  for (const file of files) {
    const data = await Deno.readFile(file);
    const name = file.endsWith(".so")
      ? `lib/${basename(file)}`
      : `share/extension/${basename(file)}`;
    const mode = file.endsWith(".so") ? 0o755 : 0o644;
    await new Promise<void>((resolve, reject) => {
      pack.entry(
        { name, mode, size: data.length },
        Buffer.from(data),
        (error) => error ? reject(error) : resolve(),
      );
    });
  }
  pack.finalize();
  await collected;
  return new Uint8Array(zstdCompressSync(Buffer.concat(chunks)));
}

/** Packages `options.extensions` and serves them on a free loopback port. */
export async function startExtensionStore(options: ExtensionStoreOptions): Promise<ExtensionStore> {
  const target: ArchiveTarget = {
    buildTag: options.buildTag ?? "latest",
    arch: goArch(),
    pgMajor: options.pgMajor ?? "v15",
  };
  const archives = new Map<string, { extension: string; data: Uint8Array }>();
  for (const extension of options.extensions) {
    archives.set(`/${remoteExtensionPath(target, extension)}`, {
      extension,
      data: await buildExtensionArchive(options.source, extension),
    });
  }
  const counts = new Map<string, number>();
  const statuses = new Map<string, number>();
  let gate: Promise<void> = Promise.resolve();

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const archive = archives.get(path);
    const extension = archive?.extension ?? /\/([^/]+)\.tar\.zst$/.exec(path)?.[1];
    if (extension !== undefined) counts.set(extension, (counts.get(extension) ?? 0) + 1);
    await gate;
    if (req.method !== "GET") return new Response(null, { status: 405 });
    const forced = extension === undefined ? undefined : statuses.get(extension);
    if (forced !== undefined) return new Response(null, { status: forced });
    if (archive === undefined) return new Response("not found", { status: 404 });
    return new Response(archive.data as Uint8Array<ArrayBuffer>, {
      headers: { "content-type": "application/octet-stream" },
    });
  });

  const close = () => server.shutdown();
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    archivePath: (extension) => remoteExtensionPath(target, extension),
    requests: (extension) => counts.get(extension) ?? 0,
    setStatus: (extension, status) => {
      if (status === null) statuses.delete(extension);
      else statuses.set(extension, status);
    },
    hold: () => {
      let release!: () => void;
      gate = new Promise((resolve) => release = resolve);
      return () => release();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
