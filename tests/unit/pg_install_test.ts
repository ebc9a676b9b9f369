import assert from "node:assert/strict";
import { REPO_ROOT } from "../../harness/cluster.ts";
import { relocatedRunFlags } from "../../harness/pg_install.ts";
import { npmPackageDir } from "../../harness/pg_locate.ts";

Deno.test("relocatedRunFlags: nothing for an install the compute set names", () => {
  assert.deepEqual(relocatedRunFlags(REPO_ROOT, "/usr/lib/postgresql/16/bin/postgres"), []);
  const npm = `${npmPackageDir(17, REPO_ROOT)}/native/bin/postgres`;
  assert.deepEqual(relocatedRunFlags(REPO_ROOT, npm), []);
});

Deno.test("relocatedRunFlags: a copied install gets the same programs beside it", () => {
  const [flag, ...rest] = relocatedRunFlags(REPO_ROOT, "/tmp/copy/native/bin/postgres");
  assert.deepEqual(rest, []);
  const granted = flag.replace(/^--allow-run=/, "").split(",");
  assert.ok(granted.includes("/tmp/copy/native/bin/postgres"));
  assert.ok(granted.includes("/tmp/copy/native/bin/pg_ctl"));
  assert.ok(granted.includes("/usr/bin/ln"), "entries outside the servers' directories stay");
  assert.ok(!granted.some((entry) => entry.startsWith("/usr/lib/postgresql/")), flag);
  assert.ok(!granted.some((entry) => entry.includes("node_modules")), flag);
});
