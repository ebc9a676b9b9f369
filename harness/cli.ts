/**
 * @module
 * The harness's command line. `demo` starts a storage cluster in a box (a
 * control plane, two pageservers, three safekeepers) with one primary compute
 * started from `config.json`, writes `cluster.json`, prints how to reach it and
 * runs until SIGINT or SIGTERM, then stops everything and exits 0. The external
 * HTTP server checks JWTs: the summary prints a `curl` with a token, and
 * `cluster.json` holds the tokens and the private key's path. `--no-auth`
 * switches the check off. `--import SOURCE_URL` first runs fast_import
 * (`pgdata`) against that database and starts the compute on a timeline made
 * from its PGDATA, so the compute serves the source's data (in `neondb`).
 *
 * `--pg N` picks the PostgreSQL major (14–17, default `DEFAULT_PG_VERSION` or
 * 15): Debian's install when present, else the one pinned from npm.
 *
 * ```sh
 * deno task demo [--dir DIR] [--no-auth] [--pg N] [--import SOURCE_URL]
 * ```
 */

import { Command, CommanderError } from "commander";
import {
  type Cluster,
  type ComputeHandle,
  type ComputeOptions,
  SPEC_DATABASE,
  SPEC_ROLE,
  startCluster,
} from "./cluster.ts";
import { importDatabase } from "./fast_import_runner.ts";
import { defaultPgMajor, locatePostgres, parsePgMajor, type PgMajor } from "./pg_locate.ts";

/** Options of {@linkcode runDemo}. */
export interface DemoOptions {
  /** Where `cluster.json` goes; default a fresh temporary directory, removed on exit. */
  dir?: string;
  /** Where the summary goes; default stdout. */
  print?: (line: string) => void;
  /** Resolves when the demo should stop; default the first SIGINT or SIGTERM. */
  stopSignal?: Promise<unknown>;
  /** JWT auth on the compute's external server; default true. */
  auth?: boolean;
  /**
   * A database (libpq URL or key=value string) to import with fast_import: the
   * compute then runs on a timeline made from it instead of an empty one.
   */
  importSource?: string;
  /** The PostgreSQL major; default {@linkcode defaultPgMajor}. */
  pgMajor?: PgMajor;
}

/** fast_import's lines worth showing while the demo imports: its steps, progress and errors. */
const IMPORT_LINE = /fast_import::(run|dump_restore|main):|progress:| (WARN|ERROR) /;

/**
 * Runs the demo: starts the cluster, waits until the compute is running,
 * writes `DIR/cluster.json`, prints a summary, waits for `stopSignal`, then
 * stops every process and removes what it created.
 */
export async function runDemo(
  {
    dir,
    print = console.log,
    stopSignal = nextTerminationSignal(),
    auth = true,
    importSource,
    pgMajor = defaultPgMajor(),
  }: DemoOptions = {},
): Promise<void> {
  const ownDir = dir === undefined;
  const outDir = dir ?? await Deno.makeTempDir({ prefix: "compute-ctl-demo-" });
  await Deno.mkdir(outDir, { recursive: true });
  const clusterJsonPath = `${outDir}/cluster.json`;
  let cluster: Cluster | undefined;
  try {
    const postgres = await locatePostgres(pgMajor);
    print(
      `starting the demo cluster on PostgreSQL ${postgres.major} from ${postgres.source} ` +
        `(output in ${outDir}) …`,
    );
    // The emulated Neon extension heals the compute when its pageserver stops serving it.
    const computeOptions: ComputeOptions = {
      id: "compute-1",
      source: "config",
      neonExtension: true,
    };
    cluster = await startCluster({
      pageservers: 2,
      safekeepers: 3,
      exitDelayMs: 1_000,
      auth,
      pgbin: postgres.pgbin,
      computes: importSource === undefined ? [computeOptions] : [],
    });
    if (importSource !== undefined) {
      print("importing the source database with fast_import …");
      const imported = await importDatabase(cluster, {
        source: importSource,
        onLine: (line) => {
          if (IMPORT_LINE.test(line)) print(`  ${line.replace(/^\S+\s+INFO\s+/, "")}`);
        },
      });
      print(
        `imported into timeline ${imported.tenant_id}/${imported.timeline_id} ` +
          `(its WAL starts at ${imported.initial_lsn}); starting the compute on it …`,
      );
      await cluster.startCompute({
        ...computeOptions,
        tenantId: imported.tenant_id,
        timelineId: imported.timeline_id,
      });
    }
    await cluster.writeClusterJson(clusterJsonPath);
    const compute = cluster.compute("compute-1");
    compute.exited.then((code) => print(`compute ${compute.id} exited with code ${code}`));
    const imported = importSource !== undefined;
    for (const line of summary(cluster, compute, clusterJsonPath, auth, imported)) print(line);
    await stopSignal;
    print("stopping …");
  } finally {
    await cluster?.close();
    await Deno.remove(clusterJsonPath).catch(() => {});
    if (ownDir) await Deno.remove(outDir, { recursive: true }).catch(() => {});
  }
  print("stopped");
}

function summary(
  cluster: Cluster,
  compute: ComputeHandle,
  clusterJsonPath: string,
  auth: boolean,
  imported: boolean,
): string[] {
  const curlAuth = auth ? ` -H 'Authorization: Bearer ${compute.tokens.compute}'` : "";
  return [
    "",
    "demo cluster is running",
    `  cluster.json    ${clusterJsonPath}`,
    `  control plane   ${cluster.controlPlane.url}`,
    `  admin API       ${cluster.controlPlane.url}/harness/ (README: "Harness admin API")`,
    ...cluster.pageservers.map((ps) =>
      `  pageserver ${ps.id}    ${ps.libpqUrl}  (http ${ps.httpUrl})`
    ),
    ...cluster.safekeepers.map((sk) => `  safekeeper ${sk.id}    ${sk.address}`),
    `  compute ${compute.id}`,
    `    tenant/timeline ${compute.tenantId}/${compute.timelineId}`,
    `    external http ${compute.externalHttp}`,
    `    internal http ${compute.internalHttp}`,
    `    config.json   ${compute.configPath}`,
    `    compute.log   ${compute.logPath}`,
    auth
      ? `  jwt key         ${cluster.jwtPrivateKeyPath} (tokens in cluster.json)`
      : "  auth            off (INSTANCE_ID is set)",
    "",
    "ask for its status with:",
    `  curl -s${curlAuth} ${compute.externalHttp}/status`,
    "",
    "break and mend the cluster with the admin API, e.g.:",
    `  curl -s ${cluster.controlPlane.url}/harness/state`,
    `  curl -s -X POST ${cluster.controlPlane.url}/harness/pageservers/1/kill`,
    "",
    "connect with:",
    `  psql '${compute.postgresUrl}'`,
    ...(imported
      ? [
        `  psql '${
          compute.connectionUrl({ user: "cloud_admin", database: "neondb" })
        }'  (imported)`,
      ]
      : []),
    `  psql '${
      compute.connectionUrl({
        user: SPEC_ROLE.name,
        password: SPEC_ROLE.password,
        database: SPEC_DATABASE,
      })
    }'`,
    "",
    "press Ctrl-C to stop",
  ];
}

/**
 * Resolves on the first SIGINT or SIGTERM. Later ones are ignored for the rest
 * of the process: the demo is then stopping what it started, and dying half-way
 * would leave computes running. A second one is common: a terminal's Ctrl-C
 * reaches `npx` too, which passes it on again.
 */
export function nextTerminationSignal(): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    let received = false;
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(signal, () => {
        if (received) return;
        received = true;
        resolve(signal);
      });
    }
  });
}

/** Parses `argv` and runs the chosen command; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command("harness")
    .description("The emulated Neon storage cluster around compute_ctl")
    .exitOverride();
  program.command("demo")
    .description("Run a control plane, 2 pageservers, 3 safekeepers and one compute until Ctrl-C")
    .option("--dir <dir>", "where to write cluster.json (default: a fresh temporary directory)")
    .option("--no-auth", "do not check JWTs on the compute's external HTTP server")
    .option("--pg <major>", "the PostgreSQL major: 14, 15, 16 or 17", parsePgMajor)
    .option(
      "--import <source_url>",
      "first import this database with fast_import; the compute runs on the imported timeline",
    )
    .action(
      async (options: { dir?: string; auth: boolean; import?: string; pg?: PgMajor }) => {
        await runDemo({
          dir: options.dir,
          auth: options.auth,
          importSource: options.import,
          pgMajor: options.pg,
        });
      },
    );
  try {
    await program.parseAsync([...argv], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    console.error(`harness: ${error instanceof Error ? error.message : error}`);
    exitCode = 1;
  }
  return exitCode;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
