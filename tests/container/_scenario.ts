/**
 * @module
 * What `deno task test-container` runs once the image is built: a harness
 * cluster on the host and one compute from the image beside it on the host
 * network, its `config.json` mounted read-only in `/var/db/postgres/specs`
 * as a ConfigMap would be. The compute must reach `running`, take a
 * `/configure` that adds a database, serve a psql write into that database
 * that the safekeepers then hold, answer `/terminate`, and exit 0.
 */

import { join } from "node:path";
import type { ComputeStatusResponse } from "../../src/api/responses.ts";
import { parseLsn } from "../../src/api/lsn.ts";
import { settlesWithin } from "../../src/_async.ts";
import {
  type Cluster,
  type JsonObject,
  SPEC_ROLE,
  specPageserver,
  startCluster,
} from "../../harness/cluster.ts";
import { placeTenant } from "../../harness/pageserver.ts";
import {
  deepMerge,
  defaultComputeCtlConfig,
  generateComputeSpec,
  randomHexId,
} from "../../harness/_compute_spec.ts";
import { httpRequest, pollStatus } from "../../harness/_compute_http.ts";
import { freePort } from "../../harness/_processes.ts";
import { type RunningContainer, startContainer } from "./_podman.ts";
import { report, step } from "./_report.ts";

/** Debian's psql on the host (CI installs postgresql-15); it speaks to servers 14–17. */
export const PSQL = "/usr/lib/postgresql/15/bin/psql";

/** Where Neon's compute images keep PGDATA and the `--config` file, under the user's home. */
const POSTGRES_HOME = "/var/db/postgres";
const PGDATA = `${POSTGRES_HOME}/compute`;
const SPECS_DIR = `${POSTGRES_HOME}/specs`;

const COMPUTE_ID = "container-compute";
/** The database `/configure` adds, and the psql write goes to. */
const NEW_DATABASE = "containerdb";
const ROWS = 1000;

const START_TIMEOUT_MS = 120_000;
const EXIT_TIMEOUT_MS = 30_000;

/** What {@linkcode runComputeScenario} needs. */
export interface ScenarioOptions {
  image: string;
  /** The host's `postgres` of the image's major: the timeline's first image is its initdb. */
  pgbin: string;
  /** A directory this run owns (the mounted specs, the container's output). */
  workDir: string;
}

/** Throws unless psql is where the scenario expects it. */
export function checkPsql(): void {
  try {
    Deno.statSync(PSQL);
  } catch {
    throw new Error(`no psql at ${PSQL}: apt-get install -y postgresql-client-15`);
  }
}

/** The ports and ids of the compute, chosen on the host before the container starts. */
interface ComputePlan {
  tenantId: string;
  timelineId: string;
  pgPort: number;
  externalHttp: string;
  args: string[];
}

/** Creates a timeline for the compute, attached on the first pageserver, and its command line. */
async function planCompute(cluster: Cluster): Promise<ComputePlan> {
  const tenantId = randomHexId();
  const timelineId = randomHexId();
  await cluster.store.createTimeline(tenantId, timelineId);
  placeTenant(cluster.pageservers, cluster.pageservers[0], tenantId);
  const pgPort = freePort();
  const externalPort = freePort();
  const internalPort = freePort();
  return {
    tenantId,
    timelineId,
    pgPort,
    externalHttp: `http://127.0.0.1:${externalPort}`,
    // --pgbin comes from the image's POSTGRES_PATH.
    args: [
      "--pgdata",
      PGDATA,
      "--connstr",
      `postgresql://cloud_admin@127.0.0.1:${pgPort}/postgres`,
      "--config",
      `${SPECS_DIR}/config.json`,
      "--compute-id",
      COMPUTE_ID,
      "--external-http-bind",
      "127.0.0.1",
      "--external-http-port",
      String(externalPort),
      "--internal-http-port",
      String(internalPort),
      "--exit-delay-ms",
      "100",
    ],
  };
}

/** The compute's spec: the harness's, with Postgres's socket in the container's `/tmp`. */
function computeSpec(cluster: Cluster, plan: ComputePlan): JsonObject {
  return generateComputeSpec({
    computeId: COMPUTE_ID,
    tenantId: plan.tenantId,
    timelineId: plan.timelineId,
    pgPort: plan.pgPort,
    socketDir: "/tmp",
    pageserver: specPageserver(cluster.pageservers[0]),
    safekeepers: cluster.safekeepers.map((safekeeper) => safekeeper.address),
  });
}

/** `spec` with {@linkcode NEW_DATABASE} added, owned by the spec's role. */
function withNewDatabase(spec: JsonObject): JsonObject {
  const cluster = spec.cluster as { databases: JsonObject[] };
  return deepMerge(spec, {
    cluster: {
      databases: [...cluster.databases, {
        name: NEW_DATABASE,
        owner: SPEC_ROLE.name,
        options: null,
      }],
    },
  });
}

/** Runs psql against `url` with one `-c` per statement; returns its unaligned output lines. */
async function psql(url: string, statements: readonly string[]): Promise<string[]> {
  const output = await new Deno.Command(PSQL, {
    args: [
      "-X",
      "-q",
      "-At",
      "-v",
      "ON_ERROR_STOP=1",
      ...statements.flatMap((s) => ["-c", s]),
      url,
    ],
    env: { PGPASSWORD: SPEC_ROLE.password, PGCONNECT_TIMEOUT: "10" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  if (!output.success) {
    throw new Error(
      `psql exited with code ${output.code}: ${decoder.decode(output.stderr).trim()}`,
    );
  }
  return decoder.decode(output.stdout).trim().split("\n");
}

/** `problem`, followed by the end of the container's output. */
async function describeFailure(container: RunningContainer, problem: string): Promise<string> {
  return `${problem}\n--- end of the container's output ---\n${await container.logTail()}`;
}

/** Runs the scenario; throws naming the step that failed. Stops everything it started. */
export async function runComputeScenario(
  { image, pgbin, workDir }: ScenarioOptions,
): Promise<void> {
  await using cluster = await step(
    "harness cluster started",
    () => startCluster({ pgbin, pageservers: 1 }),
  );
  const plan = await planCompute(cluster);
  const spec = computeSpec(cluster, plan);
  const computeCtlConfig = defaultComputeCtlConfig(cluster.jwt.publicJwk);
  const specsDir = join(workDir, "specs");
  await Deno.mkdir(specsDir, { mode: 0o755 });
  await Deno.writeTextFile(
    join(specsDir, "config.json"),
    JSON.stringify({ spec, compute_ctl_config: computeCtlConfig }, null, 2),
    { mode: 0o644 },
  );
  const computeToken = await cluster.jwt.signComputeToken(COMPUTE_ID);
  const adminToken = await cluster.jwt.signAdminToken();
  const call = (method: string, path: string, token: string, body?: unknown) =>
    httpRequest(
      method,
      `${plan.externalHttp}${path}`,
      body,
      new Headers({ authorization: `Bearer ${token}` }),
    );

  await using container = await startContainer({
    image,
    args: plan.args,
    volumes: [`${specsDir}:${SPECS_DIR}:ro`],
    // As docs/deploy.md's emptyDir: empty, writable by the compute's user (`U`), and the
    // manager recreates PGDATA inside it.
    tmpfs: [`${POSTGRES_HOME}:rw,U,notmpcopyup`],
    logPath: join(workDir, "container.log"),
  });

  await step("compute running", () =>
    pollStatus({
      status: async () => {
        const result = await call("GET", "/status", computeToken);
        if (result.status !== 200) throw new Error(`GET /status answered ${result.status}`);
        return result.body as ComputeStatusResponse;
      },
      wanted: ["running"],
      timeoutMs: START_TIMEOUT_MS,
      exitCode: container.exitCode,
      describe: (problem) => describeFailure(container, `compute ${problem}`),
    }));

  await step(`/configure added database ${NEW_DATABASE}`, async () => {
    const result = await call("POST", "/configure", computeToken, {
      spec: withNewDatabase(spec),
      compute_ctl_config: computeCtlConfig,
    });
    if (result.status !== 200 || result.body?.status !== "running") {
      throw new Error(
        await describeFailure(container, `/configure answered ${result.status}: ${result.text}`),
      );
    }
  });

  const url = `postgresql://${SPEC_ROLE.name}@127.0.0.1:${plan.pgPort}/${NEW_DATABASE}`;
  const writeLsn = await step(`psql wrote ${ROWS} rows`, async () => {
    const [count, lsn] = await psql(url, [
      "CREATE TABLE from_host (id integer PRIMARY KEY, note text)",
      `INSERT INTO from_host SELECT g, 'written by psql' FROM generate_series(1, ${ROWS}) g`,
      "SELECT count(*) FROM from_host",
      "SELECT pg_current_wal_insert_lsn()",
    ]);
    if (count !== String(ROWS)) throw new Error(`psql counted ${count} rows, not ${ROWS}`);
    return parseLsn(lsn);
  });

  await step("/terminate answered", async () => {
    const result = await call("POST", "/terminate", adminToken);
    if (result.status !== 200 || typeof result.body?.lsn !== "string") {
      throw new Error(
        await describeFailure(container, `/terminate answered ${result.status}: ${result.text}`),
      );
    }
    if (parseLsn(result.body.lsn) < writeLsn) {
      throw new Error(`/terminate reported LSN ${result.body.lsn}, before the write's end`);
    }
  });

  await step("container exited 0", async () => {
    if (!(await settlesWithin(container.exited, EXIT_TIMEOUT_MS))) {
      throw new Error(
        await describeFailure(container, `the container did not exit within ${EXIT_TIMEOUT_MS} ms`),
      );
    }
    const code = await container.exited;
    if (code !== 0) {
      throw new Error(await describeFailure(container, `the container exited with code ${code}`));
    }
  });

  const holding = cluster.safekeepers.filter((safekeeper) => {
    const state = safekeeper.walState(plan.tenantId, plan.timelineId);
    return state !== null && state.flushLsn >= writeLsn;
  });
  if (holding.length * 2 <= cluster.safekeepers.length) {
    throw new Error(
      `only ${holding.length} of ${cluster.safekeepers.length} safekeepers hold the write`,
    );
  }
  report(`${holding.length} of ${cluster.safekeepers.length} safekeepers hold the write`);
}
