/**
 * Least privilege, shown rather than assumed. Under the `compute` permission
 * set of `deno.json` (what every manager runs under, as the compute user):
 * Deno itself refuses a read, a write, a program, a variable and a host
 * outside the set (a probe script run exactly like the manager; `127.0.0.2` is
 * loopback, and something listens there, but the set grants `127.0.0.1`
 * only); the manager refuses, at `/configure` and at start, a spec naming such
 * a host, with the message that says how to grant it and without connecting;
 * a `--pgdata` outside the grants stops it at once; and a full start,
 * `/configure` and `/terminate` cycle succeeds under the same set.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Cluster,
  type ComputeHandle,
  type JsonObject,
  managerRootFor,
  SPEC_DATABASE,
  startCluster,
  withPageserver,
} from "../../harness/cluster.ts";
import { pgUserCommand } from "../../harness/_processes.ts";
import { ownedDir } from "../../harness/_fs.ts";
import { emptyRecord, type FamilyRecord, recordFamily } from "../../harness/reliability/record.ts";
import { query, within } from "./_helpers.ts";

const FAMILY = "least privilege";
const UNIT = "refusals checked";

/** The loopback address the set does not grant. */
const UNGRANTED_HOST = "127.0.0.2";

/**
 * What the probe tries, each printed as one JSON line `{what, outcome, name,
 * message}`. It takes the ports of a listener on 127.0.0.1 and one on
 * 127.0.0.2, and a directory inside the grants.
 */
const PROBE_SOURCE = `
import net from "node:net";
const [grantedPort, ungrantedPort, grantedDir] = Deno.args;
async function attempt(what, action) {
  try {
    await action();
    console.log(JSON.stringify({ what, outcome: "allowed" }));
  } catch (error) {
    console.log(JSON.stringify({ what, outcome: "refused", name: error.name, message: error.message }));
  }
}
const nodeConnect = (host, port) => new Promise((resolve, reject) => {
  const socket = net.connect(Number(port), host);
  socket.on("connect", () => { socket.destroy(); resolve(); });
  socket.on("error", reject);
});
await attempt("read /etc/passwd", () => Deno.readTextFile("/etc/passwd"));
await attempt("read /etc/shadow", () => Deno.readTextFile("/etc/shadow"));
await attempt("list /root", () => Array.fromAsync(Deno.readDir("/root")));
await attempt("write /var/tmp", () => Deno.writeTextFile("/var/tmp/least-privilege-probe", "x"));
await attempt("run /bin/true", () => new Deno.Command("/bin/true").output());
await attempt("env HOME", () => Deno.env.get("HOME"));
await attempt("connect ${UNGRANTED_HOST}", async () => (await Deno.connect({ hostname: "${UNGRANTED_HOST}", port: Number(ungrantedPort) })).close());
await attempt("node:net ${UNGRANTED_HOST}", () => nodeConnect("${UNGRANTED_HOST}", ungrantedPort));
await attempt("fetch ${UNGRANTED_HOST}", async () => await (await fetch("http://${UNGRANTED_HOST}:" + ungrantedPort + "/")).body?.cancel());
await attempt("listen ${UNGRANTED_HOST}", () => Deno.listen({ hostname: "${UNGRANTED_HOST}", port: 0 }).close());
await attempt("read granted dir", () => Deno.readTextFile(grantedDir + "/granted.txt"));
await attempt("connect 127.0.0.1", async () => (await Deno.connect({ hostname: "127.0.0.1", port: Number(grantedPort) })).close());
`;

/** What each probe attempt must end as; `refused` ones name what Deno asked for. */
const EXPECTED: Record<string, { outcome: "allowed" } | { outcome: "refused"; asks: RegExp }> = {
  "read /etc/passwd": { outcome: "refused", asks: /Requires read access to "\/etc\/passwd"/ },
  "read /etc/shadow": { outcome: "refused", asks: /Requires read access to "\/etc\/shadow"/ },
  "list /root": { outcome: "refused", asks: /Requires read access to "\/root"/ },
  "write /var/tmp": { outcome: "refused", asks: /Requires write access to "\/var\/tmp\// },
  "run /bin/true": { outcome: "refused", asks: /Requires run access to "\/bin\/true"/ },
  "env HOME": { outcome: "refused", asks: /Requires env access to "HOME"/ },
  [`connect ${UNGRANTED_HOST}`]: {
    outcome: "refused",
    asks: /Requires net access to "127\.0\.0\.2:\d+"/,
  },
  [`node:net ${UNGRANTED_HOST}`]: {
    outcome: "refused",
    asks: /Requires net access to "127\.0\.0\.2:\d+"/,
  },
  [`fetch ${UNGRANTED_HOST}`]: {
    outcome: "refused",
    asks: /Requires net access to "127\.0\.0\.2:\d+"/,
  },
  [`listen ${UNGRANTED_HOST}`]: {
    outcome: "refused",
    asks: /Requires net access to "127\.0\.0\.2:0"/,
  },
  "read granted dir": { outcome: "allowed" },
  "connect 127.0.0.1": { outcome: "allowed" },
};

/** A TCP listener that counts connections and closes each; `await using` stops it. */
function countingListener(hostname: string): { port: number; accepted: () => number } & Disposable {
  const listener = Deno.listen({ hostname, port: 0 });
  let accepted = 0;
  (async () => {
    for await (const connection of listener) {
      accepted++;
      connection.close();
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    accepted: () => accepted,
    [Symbol.dispose]: () => listener.close(),
  };
}

/** A record counted as the test goes; written whatever happens. */
function tally(test: string): FamilyRecord & AsyncDisposable {
  const record = emptyRecord(FAMILY, test, UNIT);
  return Object.assign(record, { [Symbol.asyncDispose]: () => recordFamily(record) });
}

/** Counts a failed check as an unexpected answer, then asserts it. */
function check(record: FamilyRecord, ok: boolean, message: string): void {
  if (!ok) record.unexpectedStatus++;
  assert.ok(ok, message);
}

/** {@linkcode check} for one refusal: counted in `tried` too. */
function checkRefusal(record: FamilyRecord, ok: boolean, message: string): void {
  record.tried++;
  check(record, ok, message);
}

/** The refusal line the manager prints for a host of the spec that the set does not grant. */
function hostRefusal(field: string, port: number): string {
  return `the spec's ${field} ${UNGRANTED_HOST}:${port} cannot be reached under the permissions ` +
    `this process was started with: add "${UNGRANTED_HOST}" to "net" in the "compute" permission ` +
    `set of deno.json, or run with --allow-net=${UNGRANTED_HOST},<the set's "net" list>`;
}

/** The `ERROR compute_ctl::main` lines of a compute's log. */
async function mainErrors(compute: ComputeHandle): Promise<string[]> {
  return (await compute.readLog()).split("\n")
    .map((line) => /\bERROR compute_ctl::main: (.*)$/.exec(line)?.[1])
    .filter((line): line is string => line !== undefined);
}

/** Asserts the manager stopped in `main`: no HTTP server, no start-up, no Postgres. */
async function assertStoppedInMain(record: FamilyRecord, compute: ComputeHandle) {
  const code = await within(compute.exited, 30_000, "the manager exits");
  await compute.stop(); // already exited: only waits until compute.log has everything
  const log = await compute.readLog();
  check(record, code === 1, `exit code 1, log:\n${log}`);
  for (const later of ["compute_ctl::http", "compute_ctl::startup", "compute_ctl::compute"]) {
    check(record, !log.includes(later), `nothing from ${later} before the refusal:\n${log}`);
  }
  check(record, (await compute.postmasterPid()) === undefined, "no Postgres was started");
}

Deno.test("under -P=compute Deno refuses what the set does not grant", async () => {
  await using record = tally("Deno refuses outside the set");
  using granted = countingListener("127.0.0.1");
  using ungranted = countingListener(UNGRANTED_HOST);
  // The host is reachable: only the permission set stands in the way.
  (await Deno.connect({ hostname: UNGRANTED_HOST, port: ungranted.port })).close();

  const dir = await Deno.makeTempDir({ prefix: "least-privilege-" });
  try {
    await Deno.chmod(dir, 0o755);
    const denoDir = await ownedDir(join(dir, "deno"));
    await Deno.writeTextFile(join(dir, "granted.txt"), "inside /tmp");
    await Deno.writeTextFile(join(dir, "probe.js"), PROBE_SOURCE);
    const managerRoot = await managerRootFor();
    const output = await pgUserCommand(
      Deno.execPath(),
      [
        "run",
        `--config=${join(managerRoot, "deno.json")}`,
        "-P=compute",
        join(dir, "probe.js"),
        String(granted.port),
        String(ungranted.port),
        dir,
      ],
      {
        cwd: managerRoot,
        env: { DENO_DIR: denoDir, HOME: dir, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      },
    ).output();
    const stdout = new TextDecoder().decode(output.stdout);
    assert.equal(output.code, 0, `${stdout}\n${new TextDecoder().decode(output.stderr)}`);
    const results = stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(results.map((result) => result.what), Object.keys(EXPECTED));
    for (const result of results) {
      const expected = EXPECTED[result.what];
      if (expected.outcome === "allowed") {
        check(record, result.outcome === "allowed", `${result.what}: ${JSON.stringify(result)}`);
        continue;
      }
      checkRefusal(
        record,
        result.outcome === "refused" && result.name === "NotCapable" &&
          expected.asks.test(result.message),
        `${result.what} must be refused by Deno (NotCapable): ${JSON.stringify(result)}`,
      );
    }
    check(record, granted.accepted() === 1, "the granted connection arrived");
    check(record, ungranted.accepted() === 1, "only the test's own connection reached 127.0.0.2");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a spec naming an ungranted host is refused at /configure; a full cycle succeeds", async () => {
  await using record = tally("refused at /configure, then a full cycle");
  using ungranted = countingListener(UNGRANTED_HOST);
  await using cluster = await startCluster({
    pageservers: 1,
    computes: [{ id: "least", empty: true }],
  });
  const compute = cluster.compute("least");
  const body = (spec: JsonObject) => ({ spec, compute_ctl_config: { jwks: { keys: [] } } });

  const elsewhere = withPageserver(compute.spec, {
    id: 9,
    libpqUrl: `postgresql://no_user@${UNGRANTED_HOST}:${ungranted.port}`,
  });
  const pageserverRefused = await compute.configure(body(elsewhere));
  checkRefusal(
    record,
    pageserverRefused.status === 400 &&
      pageserverRefused.body?.error ===
        hostRefusal("pageserver_connection_info host", ungranted.port),
    pageserverRefused.text,
  );

  const safekeepers = compute.spec.safekeeper_connstrings as string[];
  const strangeSafekeeper = {
    ...compute.spec,
    safekeeper_connstrings: [...safekeepers.slice(1), `${UNGRANTED_HOST}:${ungranted.port}`],
  };
  const safekeeperRefused = await compute.configure(body(strangeSafekeeper));
  checkRefusal(
    record,
    safekeeperRefused.status === 400 &&
      safekeeperRefused.body?.error === hostRefusal("safekeeper_connstrings entry", ungranted.port),
    safekeeperRefused.text,
  );
  check(record, (await compute.status()).status === "empty", "the status did not change");
  check(record, ungranted.accepted() === 0, "the manager never connected to 127.0.0.2");

  // The same set is enough for a whole life: start, configure, serve, terminate.
  const configured = await compute.configure(body(compute.spec));
  check(record, configured.status === 200 && configured.body.status === "running", configured.text);
  const [row] = await query<{ one: number }>(compute.connectionUrl(), "SELECT 1 AS one");
  check(record, row.one === 1, `${SPEC_DATABASE} serves queries`);
  const terminated = await compute.terminate();
  check(record, terminated.status === 200, terminated.text);
  const code = await within(compute.exited, 30_000, "the manager exits");
  check(record, code === 0, await compute.readLog());
});

Deno.test("refused at start: a --pgdata outside the grants, a config spec naming an ungranted host", async () => {
  await using record = tally("refused at start");
  using ungranted = countingListener(UNGRANTED_HOST);
  await using cluster: Cluster = await startCluster({ pageservers: 1 });

  const pgdata = `/opt/not-granted/${crypto.randomUUID()}/pgdata`;
  const outside = await cluster.startCompute({ id: "outside", pgdata, waitFor: null });
  await assertStoppedInMain(record, outside);
  checkRefusal(
    record,
    JSON.stringify(await mainErrors(outside)) === JSON.stringify([
      `--pgdata ${pgdata} is not readable or writable under the permissions this process was ` +
      `started with: add "${pgdata}" to "read" and "write" in the "compute" permission set of ` +
      `deno.json, or run with --allow-read=${pgdata},<the set's "read" list> ` +
      `--allow-write=${pgdata},<the set's "write" list>`,
    ]),
    (await mainErrors(outside)).join("\n"),
  );
  check(record, !(await exists(pgdata)), `${pgdata} was never created`);

  const strange = await cluster.startCompute({
    id: "strange",
    waitFor: null,
    spec: withPageserver({}, {
      id: 9,
      libpqUrl: `postgresql://no_user@${UNGRANTED_HOST}:${ungranted.port}`,
    }),
  });
  await assertStoppedInMain(record, strange);
  checkRefusal(
    record,
    JSON.stringify(await mainErrors(strange)) ===
      JSON.stringify([hostRefusal("pageserver_connection_info host", ungranted.port)]),
    (await mainErrors(strange)).join("\n"),
  );
  check(record, ungranted.accepted() === 0, "the manager never connected to 127.0.0.2");
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
