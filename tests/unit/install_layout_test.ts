/**
 * `src/postgres/install_layout.ts` and `pg_config.ts`: where an install keeps
 * extensions when no `pg_config` says so. The candidates for each layout
 * (Debian, npm's relocatable tree wherever it is unpacked, a source build),
 * the first existing one chosen, a refused look named; and, on this machine,
 * the answer for Debian's install equal to its `pg_config`'s and the answer
 * for each pinned npm install inside its package.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { npmPackageDir } from "../../harness/pg_locate.ts";
import {
  installDirsFromLayout,
  InstallLayoutError,
  layoutCandidates,
} from "../../src/postgres/install_layout.ts";
import { installDirs, readPgConfigDirs } from "../../src/postgres/pg_config.ts";
import { SUPPORTED_PG_MAJORS } from "../../src/postgres/pg_version.ts";

Deno.test("candidates: relocatable, then Debian's (any prefix), then flat", () => {
  const brief = (pgbin: string) =>
    layoutCandidates(pgbin).map(({ layout, sharedir, pkglibdir }) =>
      `${layout} ${sharedir} ${pkglibdir}`
    );
  assert.deepEqual(brief("/usr/lib/postgresql/16/bin/postgres"), [
    "relocatable /usr/lib/postgresql/16/share/postgresql /usr/lib/postgresql/16/lib/postgresql",
    "debian /usr/share/postgresql/16 /usr/lib/postgresql/16/lib",
    "flat /usr/lib/postgresql/16/share /usr/lib/postgresql/16/lib",
  ]);
  assert.equal(
    brief("/tmp/copy/usr/lib/postgresql/15/bin/postgres")[1],
    "debian /tmp/copy/usr/share/postgresql/15 /tmp/copy/usr/lib/postgresql/15/lib",
  );
  assert.deepEqual(brief("/usr/local/pgsql/bin/postgres"), [
    "relocatable /usr/local/pgsql/share/postgresql /usr/local/pgsql/lib/postgresql",
    "flat /usr/local/pgsql/share /usr/local/pgsql/lib",
  ]);
  assert.deepEqual(layoutCandidates("postgres"), []);
});

/** An `IsDirectory` over a set of paths; `refused` ones throw as Deno does without read access. */
function fakeTree(directories: string[], refused: string[] = []) {
  return (path: string) => {
    if (refused.includes(path)) {
      return Promise.reject(new Deno.errors.NotCapable(`Requires read access to "${path}"`));
    }
    return Promise.resolve(directories.includes(path));
  };
}

Deno.test("the first layout whose extension and library directories exist wins", async () => {
  const image = "/usr/lib/postgresql/17";
  const chosen = await installDirsFromLayout(
    `${image}/bin/postgres`,
    fakeTree([`${image}/share/postgresql/extension`, `${image}/lib/postgresql`, `${image}/lib`]),
  );
  assert.deepEqual(chosen, {
    layout: "relocatable",
    sharedir: `${image}/share/postgresql`,
    pkglibdir: `${image}/lib/postgresql`,
  });
  const debian = await installDirsFromLayout(
    "/usr/lib/postgresql/14/bin/postgres",
    fakeTree(["/usr/share/postgresql/14/extension", "/usr/lib/postgresql/14/lib"]),
  );
  assert.equal(debian.layout, "debian");
});

Deno.test("no layout matches: the error names where it looked, and what it may not look at", async () => {
  await assert.rejects(
    installDirsFromLayout(
      "/usr/lib/postgresql/16/bin/postgres",
      fakeTree([], ["/usr/share/postgresql/16/extension"]),
    ),
    new InstallLayoutError(
      "cannot tell where the install of --pgbin /usr/lib/postgresql/16/bin/postgres keeps " +
        "extensions: it has no pg_config this process may run, and none of " +
        "/usr/lib/postgresql/16/share/postgresql/extension, /usr/share/postgresql/16/extension, " +
        "/usr/lib/postgresql/16/share/extension exists; this process may not look at " +
        '/usr/share/postgresql/16/extension (grant "read" of them)',
    ),
  );
  await assert.rejects(installDirsFromLayout("postgres"), /is not an absolute path/);
});

Deno.test("this machine: Debian's layout agrees with its pg_config", async (t) => {
  for (const major of SUPPORTED_PG_MAJORS) {
    const pgbin = `/usr/lib/postgresql/${major}/bin/postgres`;
    const fromPgConfig = await readPgConfigDirs(pgbin).catch(() => undefined);
    if (fromPgConfig === undefined) continue;
    await t.step(`PostgreSQL ${major}`, async () => {
      const { sharedir, pkglibdir } = await installDirsFromLayout(pgbin);
      assert.deepEqual({ sharedir, pkglibdir }, fromPgConfig);
      assert.deepEqual(await installDirs(pgbin), fromPgConfig);
    });
  }
});

Deno.test("this machine: each pinned npm install is relocatable, without pg_config", async (t) => {
  for (const major of SUPPORTED_PG_MAJORS) {
    const native = join(npmPackageDir(major), "native");
    const pgbin = join(native, "bin", "postgres");
    await t.step(`PostgreSQL ${major}`, async () => {
      assert.equal(await readPgConfigDirs(pgbin), undefined, "npm's install has no pg_config");
      assert.deepEqual(await installDirs(pgbin), {
        sharedir: join(native, "share", "postgresql"),
        pkglibdir: join(native, "lib", "postgresql"),
      });
    });
  }
});
