/**
 * @module
 * The bytes of a basebackup: a tar of a base image (without the files a
 * compute writes itself and without the image's own `pg_wal` segments), followed
 * by the WAL segments that take it to the requested LSN, optionally gzipped
 * (level 1: a third of the default level's time for a fifth more bytes, which
 * on loopback is the faster trade).
 */

/** The gzip level of `--gzip` basebackups. */
const GZIP_LEVEL = 1;

import { Buffer } from "node:buffer";
import { join } from "node:path";
import { createGzip } from "node:zlib";
import { type Pack, pack as tarPack } from "tar-stream";

/** Files of a base image that a basebackup never contains (the compute writes its own). */
export const BASEBACKUP_EXCLUDED_FILES: ReadonlySet<string> = new Set([
  "postgresql.conf",
  "postmaster.pid",
  "postmaster.opts",
  "standby.signal",
  "recovery.signal",
]);

/** One WAL segment to put in `pg_wal/`. */
export interface WalSegmentFile {
  name: string;
  /** Produces the whole segment when the tar reaches it. */
  read(): Promise<Uint8Array>;
}

/** What goes into one basebackup. */
export interface BasebackupContents {
  baseDir: string;
  segments: readonly WalSegmentFile[];
  gzip?: boolean;
}

/**
 * Streams the tar of `contents`. Cancelling the stream (or a read error)
 * destroys the underlying packer; `onClose` is called once either way.
 */
export function basebackupStream(
  contents: BasebackupContents,
  onClose?: () => void,
): { stream: ReadableStream<Uint8Array>; pack: Pack } {
  const pack = tarPack();
  pack.on("close", () => onClose?.());
  packBasebackup(pack, contents).catch((error) => pack.destroy(error));
  return { stream: ReadableStream.from(contents.gzip ? gzipChunks(pack) : tarChunks(pack)), pack };
}

/** The pack's output gzipped; an error or a cancel on either side destroys both. */
async function* gzipChunks(pack: Pack): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  const gzip = createGzip({ level: GZIP_LEVEL, chunkSize: 256 * 1024 });
  pack.on("error", (error: Error) => gzip.destroy(error));
  pack.pipe(gzip);
  try {
    for await (const chunk of gzip as AsyncIterable<Buffer>) yield chunk as Uint8Array<ArrayBuffer>;
  } finally {
    pack.destroy();
    gzip.destroy();
  }
}

async function packBasebackup(pack: Pack, contents: BasebackupContents): Promise<void> {
  const root = contents.baseDir;
  for await (const item of walkImage(root, "")) {
    const mode = (item.info.mode ?? 0o600) & 0o7777;
    const mtime = item.info.mtime ?? new Date();
    if (item.info.isDirectory) {
      await addEntry(pack, { name: item.name, type: "directory", mode, mtime });
    } else {
      await addFile(pack, item.name, await Deno.readFile(join(root, item.name)), mode, mtime);
    }
  }
  for (const segment of contents.segments) {
    await addFile(pack, `pg_wal/${segment.name}`, await segment.read(), 0o600, new Date());
  }
  pack.finalize();
}

function addFile(
  pack: Pack,
  name: string,
  data: Uint8Array,
  mode: number,
  mtime: Date,
): Promise<void> {
  const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return addEntry(pack, { name, type: "file", mode, mtime, size: data.length }, buffer);
}

/** The pack's output; Node Buffers are views of plain (never shared) ArrayBuffers. */
async function* tarChunks(pack: Pack): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  for await (const chunk of pack as AsyncIterable<Buffer>) yield chunk as Uint8Array<ArrayBuffer>;
}

interface WalkItem {
  name: string;
  info: Deno.FileInfo;
}

/** Every entry of the image in name order, minus excluded files and `pg_wal`'s files. */
async function* walkImage(root: string, relative: string): AsyncGenerator<WalkItem> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(join(root, relative))) names.push(entry.name);
  names.sort();
  for (const name of names) {
    if (relative === "" && BASEBACKUP_EXCLUDED_FILES.has(name)) continue;
    const path = relative === "" ? name : `${relative}/${name}`;
    const info = await Deno.lstat(join(root, path));
    if (!info.isFile && !info.isDirectory) {
      throw new Error(`base image entry ${path} is neither a file nor a directory`);
    }
    if (info.isFile && path.startsWith("pg_wal/")) continue;
    yield { name: path, info };
    if (info.isDirectory) yield* walkImage(root, path);
  }
}

function addEntry(
  pack: Pack,
  header: Parameters<Pack["entry"]>[0],
  data?: Uint8Array,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error | null) => error ? reject(error) : resolve();
    if (data) pack.entry(header, data, done);
    else pack.entry(header, done);
  });
}
