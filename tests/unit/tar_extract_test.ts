/**
 * @module
 * The basebackup's tar reader against archives tar-stream packs: files and
 * directories with their modes, zero runs left as holes but read back as
 * zeros at the full size, long (pax) names, chunks split anywhere, and the
 * refusals: links, paths out of PGDATA, an archive cut short, and an error
 * the source raises after the archive's end.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { pack as tarPack } from "tar-stream";
import { extractTarInto, UnsafeTarEntryError } from "../../src/storage/tar_extract.ts";

type EntryHeader = { name: string; type?: "file" | "directory" | "symlink"; mode?: number };

/** A tar of `entries` (each with its bytes), as one Uint8Array. */
async function tarOf(entries: [EntryHeader, Uint8Array?][]): Promise<Uint8Array> {
  const pack = tarPack();
  const chunks: Uint8Array[] = [];
  const done = (async () => {
    for await (const chunk of pack as AsyncIterable<Uint8Array>) chunks.push(chunk);
  })();
  for (const [header, data] of entries) {
    await new Promise<void>((resolve, reject) => {
      const callback = (error?: Error | null) => error ? reject(error) : resolve();
      if (header.type === "symlink") {
        pack.entry({ ...header, linkname: "/etc/passwd" }, callback);
      } else if (data) pack.entry({ ...header, size: data.length }, Buffer.from(data), callback);
      else pack.entry(header, callback);
    });
  }
  pack.finalize();
  await done;
  return new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer());
}

/** `bytes` in chunks of `size` (every boundary case of the reader's state machine). */
async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.slice(at, at + size);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tar-extract-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const segment = new Uint8Array(256 * 1024);
segment.set([1, 2, 3], 0);
segment.set([9], 100_000);
const longName = `base/${"x".repeat(150)}/file`;

Deno.test("extractTarInto: files, directories, modes, holes and long names, in any chunking", async () => {
  const tar = await tarOf([
    [{ name: "./", type: "directory", mode: 0o700 }],
    [{ name: "global", type: "directory", mode: 0o700 }],
    [{ name: "global/pg_control", mode: 0o600 }, new TextEncoder().encode("control")],
    [{ name: "pg_wal/000000010000000000000001", mode: 0o600 }, segment],
    [{ name: "empty", mode: 0o640 }, new Uint8Array(0)],
    [{ name: longName, mode: 0o600 }, new TextEncoder().encode("long")],
  ]);
  for (const size of [1, 511, 512, 4096, tar.length]) {
    await withDir(async (dir) => {
      const pgdata = `${dir}/pgdata`;
      await extractTarInto(pgdata, chunked(tar, size));
      assert.equal(await Deno.readTextFile(`${pgdata}/global/pg_control`), "control");
      assert.equal((await Deno.stat(`${pgdata}/global/pg_control`)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(`${pgdata}/global`)).mode! & 0o777, 0o700);
      assert.deepEqual(await Deno.readFile(`${pgdata}/pg_wal/000000010000000000000001`), segment);
      assert.equal((await Deno.stat(`${pgdata}/empty`)).size, 0);
      assert.equal((await Deno.stat(`${pgdata}/empty`)).mode! & 0o777, 0o640);
      assert.equal(await Deno.readTextFile(`${pgdata}/${longName}`), "long");
    });
  }
});

Deno.test("extractTarInto: an existing file is overwritten and a symlink replaced, not followed", async () => {
  await withDir(async (dir) => {
    const pgdata = `${dir}/pgdata`;
    await Deno.mkdir(pgdata);
    await Deno.writeTextFile(`${dir}/outside`, "untouched");
    await Deno.symlink(`${dir}/outside`, `${pgdata}/PG_VERSION`);
    await Deno.writeTextFile(`${pgdata}/pg_hba.conf`, "a much longer old content");
    const tar = await tarOf([
      [{ name: "PG_VERSION", mode: 0o600 }, new TextEncoder().encode("15\n")],
      [{ name: "pg_hba.conf", mode: 0o600 }, new TextEncoder().encode("new")],
    ]);
    await extractTarInto(pgdata, chunked(tar, 1000));
    assert.equal(await Deno.readTextFile(`${dir}/outside`), "untouched");
    assert.ok((await Deno.lstat(`${pgdata}/PG_VERSION`)).isFile);
    assert.equal(await Deno.readTextFile(`${pgdata}/pg_hba.conf`), "new");
  });
});

Deno.test("extractTarInto: links and paths out of PGDATA are refused", async () => {
  for (
    const [header, pattern] of [
      [{ name: "evil", type: "symlink" }, /unsupported entry type symlink/],
      [{ name: "../escape", mode: 0o600 }, /refusing tar entry "\.\.\/escape"/],
    ] as const
  ) {
    await withDir(async (dir) => {
      const tar = await tarOf([[header, new Uint8Array(0)]]);
      await assert.rejects(extractTarInto(`${dir}/pgdata`, chunked(tar, 512)), (error) => {
        assert.ok(error instanceof UnsafeTarEntryError);
        assert.match(error.message, pattern);
        return true;
      });
    });
  }
});

Deno.test("extractTarInto: an archive cut short, or a source failing after the end, rejects", async () => {
  const tar = await tarOf([[{ name: "file", mode: 0o600 }, new Uint8Array(2000).fill(7)]]);
  await withDir(async (dir) => {
    await assert.rejects(
      extractTarInto(`${dir}/a`, chunked(tar.subarray(0, 1024), 100)),
      /ends in the middle of an entry/,
    );
    async function* failingAfterEnd() {
      yield tar;
      throw new Error("ErrorResponse after the tar");
    }
    await assert.rejects(extractTarInto(`${dir}/b`, failingAfterEnd()), /ErrorResponse after/);
  });
});

Deno.test("extractTarInto: a file that cannot be opened rejects the extraction", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/pgdata/base`, { recursive: true });
    const tar = await tarOf([
      [{ name: "base", mode: 0o600 }, new Uint8Array(4096).fill(1)],
      [{ name: "after", mode: 0o600 }, new Uint8Array(4096).fill(2)],
    ]);
    await assert.rejects(
      extractTarInto(`${dir}/pgdata`, chunked(tar, 600)),
      Deno.errors.IsADirectory,
    );
  });
});
