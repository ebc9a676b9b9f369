/**
 * `deno task demo --dir DIR`: the cluster starts, `DIR/cluster.json` has the
 * documented shape (with JWTs that the compute accepts and the private key's
 * path), its Postgres URL works, the summary shows a curl with the token, and
 * SIGINT stops everything, exit code 0, with no process left behind. Once on
 * the default major and once with `--pg 17`, whose compute must run 17.
 */

import assert from "node:assert/strict";
import { dirname } from "node:path";
import { REPO_ROOT } from "../../harness/cluster.ts";
import { defaultPgMajor } from "../../harness/pg_locate.ts";
import { eventually, query, within } from "./_helpers.ts";

interface ClusterJson {
  control_plane: { url: string };
  pageservers: { id: number; libpq: string; http: string }[];
  safekeepers: { id: number; address: string }[];
  computes: {
    id: string;
    tenant_id: string;
    timeline_id: string;
    postgres: string;
    external_http: string;
    internal_http: string;
    config_path: string;
    tokens: { compute: string; admin: string };
  }[];
  jwt_private_key: string;
}

async function pgrep(pattern: string): Promise<string> {
  const output = await new Deno.Command("pgrep", { args: ["-af", pattern], stdout: "piped" })
    .output();
  return new TextDecoder().decode(output.stdout).trim();
}

const RUNS = [
  { name: "deno task demo", args: [], major: defaultPgMajor() },
  { name: "deno task demo --pg 17", args: ["--pg", "17"], major: 17 },
];

for (const run of RUNS) {
  Deno.test(`${run.name}: cluster.json, a working compute, and a clean SIGINT`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "demo-test-" });
    const demo = new Deno.Command(Deno.execPath(), {
      args: ["task", "demo", "--dir", dir, ...run.args],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = Promise.all([
      new Response(demo.stdout).text(),
      new Response(demo.stderr).text(),
    ]);
    let stopped = false;
    let clusterRoot: string | undefined;
    try {
      const clusterJsonPath = `${dir}/cluster.json`;
      await eventually(
        () => Deno.stat(clusterJsonPath).then(() => true, () => false),
        "cluster.json written",
        120_000,
      );
      const json = JSON.parse(await Deno.readTextFile(clusterJsonPath)) as ClusterJson;

      assert.match(json.control_plane.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(json.pageservers.length, 2);
      for (const ps of json.pageservers) {
        assert.equal(typeof ps.id, "number");
        assert.match(ps.libpq, /^postgres(ql)?:\/\/no_user@127\.0\.0\.1:\d+$/);
        assert.match(ps.http, /^http:\/\/127\.0\.0\.1:\d+$/);
      }
      assert.equal(json.safekeepers.length, 3);
      for (const sk of json.safekeepers) assert.match(sk.address, /^127\.0\.0\.1:\d+$/);
      assert.equal(json.computes.length, 1);
      const [compute] = json.computes;
      assert.match(compute.tenant_id, /^[0-9a-f]{32}$/);
      assert.match(compute.timeline_id, /^[0-9a-f]{32}$/);
      assert.match(compute.postgres, /^postgresql:\/\/cloud_admin@127\.0\.0\.1:\d+\/postgres$/);
      assert.match(compute.external_http, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.match(compute.internal_http, /^http:\/\/127\.0\.0\.1:\d+$/);
      clusterRoot = dirname(dirname(dirname(compute.config_path)));
      assert.equal(json.jwt_private_key, `${clusterRoot}/jwt_private_key.pem`);
      assert.match(await Deno.readTextFile(json.jwt_private_key), /^-----BEGIN PRIVATE KEY-----/);

      const statusWith = (token?: string) =>
        fetch(`${compute.external_http}/status`, {
          headers: token ? { authorization: `Bearer ${token}` } : {},
        }).then(async (r) => ({ code: r.status, body: await r.json() }));
      for (const token of [compute.tokens.compute, compute.tokens.admin]) {
        assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
        const status = await statusWith(token);
        assert.equal(status.code, 200);
        assert.equal(status.body.status, "running");
      }
      assert.equal((await statusWith()).code, 400, "auth is on by default");
      const [{ version }] = await query<{ version: number }>(
        compute.postgres,
        "SELECT current_setting('server_version_num')::int AS version",
      );
      assert.equal(Math.floor(version / 10000), run.major, "the compute runs the major asked for");
      assert.notEqual(await pgrep(clusterRoot), "", "the compute runs under the cluster root");

      demo.kill("SIGINT");
      stopped = true;
      const { code } = await within(demo.status, 60_000, "demo exit after SIGINT");
      const [stdout, stderr] = await output;
      assert.equal(code, 0, `${stdout}\n${stderr}`);
      assert.ok(
        stdout.includes(
          `curl -s -H 'Authorization: Bearer ${compute.tokens.compute}' ${compute.external_http}/status`,
        ),
        `the summary shows a curl with the token:\n${stdout}`,
      );
      assert.match(stdout, new RegExp(`on PostgreSQL ${run.major} from (debian|npm)`));
      assert.equal(await pgrep(clusterRoot), "", "no process left behind");
      await assert.rejects(Deno.stat(clusterRoot), Deno.errors.NotFound);
    } finally {
      if (!stopped) demo.kill("SIGTERM");
      await demo.status;
      await output;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
}
