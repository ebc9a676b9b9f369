/**
 * @module
 * Extracting a basebackup's tar into PGDATA as fast as `tar xf`: a small
 * ustar/GNU/pax reader over the decompressed chunks, each file written by its
 * own promise chain so the disk works while the next bytes are decompressed
 * (bounded to 1 MiB in flight), and runs of zeros (the unwritten tail of a
 * WAL segment) left as holes instead of written. Only directories and regular
 * files are accepted, never outside PGDATA; zero blocks are skipped and the
 * source is read to its very end (compute_ctl's `ignore_zeros`), so an error
 * the source raises after the archive's end still rejects.
 */

import { dirname, join } from "node:path";

const BLOCK = 512;
/**
 * Bytes handed to writes but not yet written, beyond which the reader waits.
 * The disk sets the pace either way (8 MiB extracted no faster); what is in
 * flight ends up as the process's heap, which glibc keeps after the start.
 */
const MAX_IN_FLIGHT = 1024 * 1024;

/** A tar entry that would land outside PGDATA or is not a file or directory. */
export class UnsafeTarEntryError extends Error {
  constructor(name: string, reason: string) {
    super(`refusing tar entry ${JSON.stringify(name)}: ${reason}`);
    this.name = "UnsafeTarEntryError";
  }
}

/**
 * The PGDATA-relative path of a tar entry name, or `null` for the archive root
 * (`./`). Throws {@link UnsafeTarEntryError} for absolute paths and `..`.
 */
export function tarEntryPath(name: string): string | null {
  if (name.startsWith("/")) throw new UnsafeTarEntryError(name, "absolute path");
  if (name.includes("\0")) throw new UnsafeTarEntryError(name, "NUL in path");
  const segments = name.split("/").filter((segment) => segment !== "" && segment !== ".");
  if (segments.includes("..")) throw new UnsafeTarEntryError(name, "path escapes PGDATA");
  return segments.length === 0 ? null : segments.join("/");
}

/** Type flags tar-stream (and GNU tar) name; anything but a file or directory is refused. */
const TYPE_NAMES: Record<string, string> = {
  "1": "link",
  "2": "symlink",
  "3": "character-device",
  "4": "block-device",
  "6": "fifo",
};

/** What the reader needs of a header block. */
interface Header {
  name: string;
  mode: number;
  size: number;
  type: string;
}

/** A file being written: its writes run in order on `chain`. */
interface OpenFile {
  handle: Promise<Deno.FsFile>;
  chain: Promise<void>;
  /** Offset of the next byte of the entry, and of the handle's cursor (they differ after a hole). */
  offset: number;
  cursor: number;
}

/** The entry whose data is being read. */
interface Entry {
  left: number;
  padding: number;
  file: OpenFile | null;
}

/** A GNU long name (`L`), pax header (`x`) or global pax header (`g`) being read. */
interface Meta {
  type: string;
  size: number;
  bytes: Uint8Array;
  fill: number;
}

/**
 * Extracts a tar stream into `pgdata` (created 0700 if missing); entries are
 * checked with {@link tarEntryPath}. Rejects with the first error of the
 * source, the archive or a write, once every write started has settled.
 */
export async function extractTarInto(
  pgdata: string,
  source: AsyncIterable<Uint8Array>,
): Promise<void> {
  await Deno.mkdir(pgdata, { recursive: true, mode: 0o700 });
  const directories = new Set<string>([pgdata]);
  const pending = new Set<Promise<void>>();
  let failure: { error: unknown } | null = null;
  let inFlight = 0;
  const track = (promise: Promise<unknown>, bytes = 0) => {
    inFlight += bytes;
    const settled: Promise<void> = promise.then(() => {}, (error) => void (failure ??= { error }))
      .finally(() => {
        inFlight -= bytes;
        pending.delete(settled);
      });
    pending.add(settled);
  };

  const header = new Uint8Array(BLOCK);
  let headerFill = 0;
  let entry: Entry | null = null;
  let meta: Meta | null = null;
  let nextName: string | null = null;

  const finishEntry = () => {
    const file = entry?.file;
    entry = null;
    if (!file) return;
    const { handle, offset, cursor } = file;
    if (cursor < offset) file.chain = file.chain.then(async () => (await handle).truncate(offset));
    track(file.chain.finally(() => handle.then((opened) => opened.close(), () => {})));
  };

  const writeData = (file: OpenFile, data: Uint8Array) => {
    const at = file.offset;
    file.offset += data.length;
    if (isZero(data)) return; // a hole: the file is extended to its size when it ends
    const seek = at !== file.cursor;
    file.cursor = file.offset;
    file.chain = file.chain.then(async () => {
      const handle = await file.handle;
      if (seek) await handle.seek(at, Deno.SeekMode.Start);
      for (let offset = 0; offset < data.length;) {
        offset += await handle.write(data.subarray(offset));
      }
    });
    track(file.chain, data.length);
  };

  const startEntry = async (parsed: Header) => {
    const name = nextName ?? parsed.name;
    nextName = null;
    const relative = tarEntryPath(name);
    entry = { left: parsed.size, padding: paddingOf(parsed.size), file: null };
    if (relative === null) return;
    const target = join(pgdata, relative);
    const mode = parsed.mode & 0o7777;
    if (parsed.type === "5") {
      await ensureDirectory(target, directories);
      await Deno.chmod(target, mode || 0o700);
    } else if (parsed.type === "0" || parsed.type === "\0" || parsed.type === "7") {
      await ensureDirectory(dirname(target), directories);
      const handle = openForWrite(target, mode || 0o600);
      track(handle); // an open that fails is the extraction's failure…
      const chain = handle.then(() => {});
      chain.catch(() => {}); // …and not also an unhandled rejection before the first write
      entry.file = { handle, chain, offset: 0, cursor: 0 };
    } else {
      throw new UnsafeTarEntryError(name, `unsupported entry type ${typeName(parsed.type)}`);
    }
  };

  const readHeader = async () => {
    if (isZero(header)) return; // end-of-archive blocks, and anything after them
    const parsed = parseHeader(header);
    if (parsed.type === "L" || parsed.type === "x" || parsed.type === "g") {
      const bytes = new Uint8Array(parsed.size + paddingOf(parsed.size));
      meta = { type: parsed.type, size: parsed.size, bytes, fill: 0 };
      if (bytes.length === 0) meta = null;
      return;
    }
    await startEntry(parsed);
    if (entry !== null && entry.left === 0 && entry.padding === 0) finishEntry();
  };

  const readMeta = (done: Meta) => {
    const text = new TextDecoder().decode(done.bytes.subarray(0, done.size));
    if (done.type === "L") nextName = text.replace(/\0.*$/s, "");
    if (done.type === "x") nextName = paxPath(text) ?? nextName;
  };

  const consume = async (chunk: Uint8Array) => {
    let at = 0;
    while (at < chunk.length) {
      if (meta !== null) {
        const take = Math.min(meta.bytes.length - meta.fill, chunk.length - at);
        meta.bytes.set(chunk.subarray(at, at + take), meta.fill);
        meta.fill += take;
        at += take;
        if (meta.fill === meta.bytes.length) {
          readMeta(meta);
          meta = null;
        }
      } else if (entry !== null) {
        const take = Math.min(entry.left, chunk.length - at);
        if (take > 0 && entry.file) writeData(entry.file, chunk.subarray(at, at + take));
        entry.left -= take;
        at += take;
        const skip = Math.min(entry.padding, chunk.length - at);
        entry.padding -= skip;
        at += skip;
        if (entry.left === 0 && entry.padding === 0) finishEntry();
      } else {
        const take = Math.min(BLOCK - headerFill, chunk.length - at);
        header.set(chunk.subarray(at, at + take), headerFill);
        headerFill += take;
        at += take;
        if (headerFill === BLOCK) {
          headerFill = 0;
          await readHeader();
        }
      }
    }
  };

  try {
    for await (const chunk of source) {
      if (failure !== null) break;
      await consume(chunk);
      while (inFlight > MAX_IN_FLIGHT && failure === null) await Promise.race(pending);
    }
    if (failure === null && (entry !== null || meta !== null)) {
      throw new Error("tar archive ends in the middle of an entry");
    }
  } catch (error) {
    failure ??= { error };
  } finally {
    if (entry !== null) finishEntry();
    while (pending.size > 0) await Promise.all(pending);
  }
  if (failure !== null) throw failure.error;
}

function paddingOf(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function parseHeader(block: Uint8Array): Header {
  const name = cString(block, 0, 100);
  const magic = cString(block, 257, 6);
  const prefix = magic.startsWith("ustar") ? cString(block, 345, 155) : "";
  return {
    name: prefix && magic === "ustar" ? `${prefix}/${name}` : name,
    mode: octal(block, 100, 8),
    size: tarSize(block),
    type: String.fromCharCode(block[156]),
  };
}

function cString(block: Uint8Array, start: number, length: number): string {
  let end = start;
  while (end < start + length && block[end] !== 0) end++;
  return new TextDecoder().decode(block.subarray(start, end));
}

function octal(block: Uint8Array, start: number, length: number): number {
  const text = cString(block, start, length).trim();
  return text === "" ? 0 : parseInt(text, 8);
}

/** The size field: octal, or GNU base-256 for sizes past 8 GiB. */
function tarSize(block: Uint8Array): number {
  if ((block[124] & 0x80) === 0) return octal(block, 124, 12);
  let size = 0;
  for (let i = 125; i < 136; i++) size = size * 256 + block[i];
  return size;
}

function paxPath(records: string): string | null {
  let path: string | null = null;
  for (const line of records.split("\n")) {
    const match = /^\d+ path=(.*)$/s.exec(line);
    if (match) path = match[1];
  }
  return path;
}

function typeName(flag: string): string {
  return TYPE_NAMES[flag] ?? `'${flag.replace(/\0/g, "\\0")}'`;
}

function isZero(data: Uint8Array): boolean {
  const words = data.byteOffset % 8 === 0 ? Math.floor(data.length / 8) : 0;
  if (words > 0) {
    const wide = new BigUint64Array(data.buffer, data.byteOffset, words);
    for (let i = 0; i < words; i++) if (wide[i] !== 0n) return false;
  }
  for (let i = words * 8; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}

/** Makes `path` a real directory (a symlink there is replaced, never followed). */
async function ensureDirectory(path: string, directories: Set<string>): Promise<void> {
  if (directories.has(path)) return;
  await removeIfSymlink(path);
  await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  directories.add(path);
}

/** Opens a new file; an existing one is truncated (and a symlink replaced, not followed). */
async function openForWrite(path: string, mode: number): Promise<Deno.FsFile> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { write: true, createNew: true, mode });
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    await removeIfSymlink(path);
    file = await Deno.open(path, { write: true, create: true, truncate: true, mode });
    await Deno.chmod(path, mode);
    return file;
  }
  // Created with `mode`; a umask only clears group/other bits, so only then chmod.
  if ((mode & 0o7077) !== 0) await Deno.chmod(path, mode);
  return file;
}

/** A symlink where the tar puts a file or directory is removed. */
async function removeIfSymlink(path: string): Promise<void> {
  try {
    if ((await Deno.lstat(path)).isSymlink) await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
