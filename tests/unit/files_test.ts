import assert from "node:assert/strict";
import {
  ensureMd5HbaLine,
  lineInFile,
  linkDynshmem,
  MD5_HBA_LINE,
  recreatePgdata,
  replaceFile,
  withTempOverride,
  writeStandbySignal,
} from "../../src/postgres/files.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "files_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("lineInFile appends after a newline and writes no trailing newline", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/conf`;
    await Deno.writeTextFile(path, "line1\nline2.1\t line2.2\nline3");
    assert.equal(await lineInFile(path, "line4"), true);
    assert.equal(await Deno.readTextFile(path), "line1\nline2.1\t line2.2\nline3\nline4");
  });
});

Deno.test("lineInFile leaves the file alone when the exact line exists", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/conf`;
    const content = "line1\nline2.1\t line2.2\nline3";
    await Deno.writeTextFile(path, content);
    assert.equal(await lineInFile(path, "line2.1\t line2.2"), false);
    assert.equal(await lineInFile(path, "line3"), false);
    assert.equal(await Deno.readTextFile(path), content);
  });
});

Deno.test("lineInFile matches whole lines only", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/conf`;
    await Deno.writeTextFile(path, "line2.1\t line2.2");
    assert.equal(await lineInFile(path, "line2.1"), true);
    assert.equal(await Deno.readTextFile(path), "line2.1\t line2.2\nline2.1");
  });
});

Deno.test("lineInFile creates a missing file with just the line", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/new`;
    assert.equal(await lineInFile(path, "line4"), true);
    assert.equal(await Deno.readTextFile(path), "line4");
    assert.equal(await lineInFile(path, "line4"), false);
  });
});

Deno.test("lineInFile on an empty file writes the line without a newline", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/empty`;
    await Deno.writeTextFile(path, "");
    assert.equal(await lineInFile(path, "x"), true);
    assert.equal(await Deno.readTextFile(path), "x");
  });
});

Deno.test("lineInFile after a trailing newline leaves an empty line, like the reference", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/conf`;
    await Deno.writeTextFile(path, "a = 1\nb = 2\n");
    assert.equal(await lineInFile(path, "c = 3"), true);
    assert.equal(await Deno.readTextFile(path), "a = 1\nb = 2\n\nc = 3");
    await Deno.writeTextFile(path, "a = 1\r\nb = 2\r\n");
    assert.equal(await lineInFile(path, "b = 2"), false);
  });
});

Deno.test("withTempOverride writes, runs and truncates even on failure", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/compute_ctl_temp_override.conf`;
    const seen = await withTempOverride(dir, "neon.max_cluster_size=-1", async () => {
      return await Deno.readTextFile(path);
    });
    assert.equal(seen, "neon.max_cluster_size=-1");
    assert.equal(await Deno.readTextFile(path), "");
    await assert.rejects(
      withTempOverride(dir, "x=1", () => Promise.reject(new Error("boom"))),
      /boom/,
    );
    assert.equal(await Deno.readTextFile(path), "");
  });
});

Deno.test("ensureMd5HbaLine appends the tab-separated md5 line once", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/pg_hba.conf`, "local all all trust\n");
    assert.equal(await ensureMd5HbaLine(dir), true);
    assert.equal(await ensureMd5HbaLine(dir), false);
    assert.equal(MD5_HBA_LINE, "host\tall\t\tall\t\tall\t\tmd5");
    assert.equal(
      await Deno.readTextFile(`${dir}/pg_hba.conf`),
      `local all all trust\n\n${MD5_HBA_LINE}`,
    );
  });
});

Deno.test("linkDynshmem replaces the directory with a symlink to /dev/shm/", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/pg_dynshmem`);
    await Deno.writeTextFile(`${dir}/pg_dynshmem/x`, "");
    await linkDynshmem(dir);
    assert.equal(await Deno.readLink(`${dir}/pg_dynshmem`), "/dev/shm/");
    await Deno.remove(`${dir}/pg_dynshmem`);
    await linkDynshmem(dir);
    assert.equal(await Deno.readLink(`${dir}/pg_dynshmem`), "/dev/shm/");
  });
});

Deno.test("writeStandbySignal creates an empty file and keeps an existing one", async () => {
  await withTempDir(async (dir) => {
    await writeStandbySignal(dir);
    assert.equal(await Deno.readTextFile(`${dir}/standby.signal`), "");
    await writeStandbySignal(dir);
    assert.equal((await Deno.stat(`${dir}/standby.signal`)).size, 0);
  });
});

Deno.test("recreatePgdata wipes the directory and recreates it with mode 0700", async () => {
  await withTempDir(async (dir) => {
    const pgdata = `${dir}/pgdata`;
    await Deno.mkdir(`${pgdata}/base/1`, { recursive: true });
    await Deno.writeTextFile(`${pgdata}/base/1/f`, "x");
    await recreatePgdata(pgdata);
    assert.deepEqual([...Deno.readDirSync(pgdata)], []);
    assert.equal((await Deno.stat(pgdata)).mode! & 0o777, 0o700);
    await Deno.remove(pgdata);
    await recreatePgdata(pgdata);
    assert.equal((await Deno.stat(pgdata)).mode! & 0o777, 0o700);
  });
});

Deno.test("replaceFile keeps the old mode, or sets the given one, and leaves no temporary file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/postgresql.conf`;
    await Deno.writeTextFile(path, "old\n");
    await Deno.chmod(path, 0o640);
    await replaceFile(path, "new\n");
    assert.equal(await Deno.readTextFile(path), "new\n");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o640);
    await replaceFile(path, new TextEncoder().encode("bytes\n"), 0o600);
    assert.equal(await Deno.readTextFile(path), "bytes\n");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const fresh = `${dir}/server.key`;
    await replaceFile(fresh, "key");
    assert.equal((await Deno.stat(fresh)).mode! & 0o777, 0o600, "a new file is owner-only");
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((entry) => entry.name).sort(),
      ["postgresql.conf", "server.key"],
    );
  });
});

Deno.test("replaceFile that cannot write leaves the old file whole", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/postgresql.conf`;
    await Deno.writeTextFile(path, "old\n");
    // The temporary file's name is taken by a directory, so the write fails.
    await Deno.mkdir(`${path}.new`);
    await assert.rejects(() => replaceFile(path, "new\n"));
    assert.equal(await Deno.readTextFile(path), "old\n");
  });
});
