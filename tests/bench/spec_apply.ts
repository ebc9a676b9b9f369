/**
 * @module
 * Spec apply scaling: for R ∈ {10, 100, 1000} roles × D ∈ {1, 10, 50}
 * databases (quick: 10 × 1, 100 × 1 and 10 × 5), each repetition times,
 * interleaved on one compute (the order alternating between repetitions),
 *
 * - ours: `applySpec` of a spec with R roles (with passwords) and D databases
 *   (database i owned by role i mod R) on the fresh state, with the startup
 *   concurrency the manager uses (first apply), then the same spec again with
 *   the reconfigure concurrency (re-apply). Both run in a child process of
 *   their own, as the manager's apply does, timed inside it;
 * - the baseline: `psql -X -q -v ON_ERROR_STOP=1 -f` (as the compute's OS
 *   user) of exactly the statements the apply plans on that fresh state (a dry
 *   run), in plan order, with `\connect` lines where the database changes.
 *
 * Between runs (untimed) the spec's databases and roles are dropped.
 *
 * Run alone: `deno task bench --only spec_apply [--quick]`.
 */

import pg from "pg";
import { join } from "node:path";
import { type ComputeHandle, md5Password, startCluster } from "../../harness/cluster.ts";
import { runAsPgUser } from "../../harness/_processes.ts";
import { parseComputeSpecJson } from "../../src/api/parsed_spec.ts";
import { siblingBinary } from "../../src/postgres/process.ts";
import { applySpec, concurrencyForStartup } from "../../src/postgres/spec_apply.ts";
import type { ApplyRunOptions, ApplyRunResult } from "./_spec_apply_child.ts";
import { benchCatalog, cleanupStatements, psqlScript } from "./_spec_apply_script.ts";
import { runBenchChild } from "./_child.ts";
import { pairedRatio, round, summarize } from "./_stats.ts";
import { type Benchmark, type BenchRow, target } from "./_types.ts";

const DEFAULT_PGBIN = "/usr/lib/postgresql/15/bin/postgres";
const PRIVILEGED_ROLE = "neon_superuser";
const SYSTEM_DATABASE = "postgres";
/** Sessions dropping the spec's databases between runs. */
const CLEANUP_SESSIONS = 4;

/** One size of the spec. */
interface Size {
  roles: number;
  databases: number;
}

/**
 * The sizes measured: every R × D, smallest first; `--quick` keeps three small
 * ones (each `CREATE DATABASE` alone costs ~200 ms on both sides).
 */
function sizes(quick: boolean): Size[] {
  if (quick) {
    return [{ roles: 10, databases: 1 }, { roles: 100, databases: 1 }, {
      roles: 10,
      databases: 5,
    }];
  }
  const roleCounts = [10, 100, 1000];
  const databaseCounts = [1, 10, 50];
  return roleCounts.flatMap((roles) => databaseCounts.map((databases) => ({ roles, databases })));
}

/**
 * Repetitions for a size: those with 50 databases or 1,000 roles (a
 * repetition of 50 databases is tens of seconds: two applies and two cleanups,
 * each database created and dropped with synchronous commits) get at most 3.
 */
function repetitionsFor(size: Size, repetitions: number): number {
  return size.databases >= 50 || size.roles >= 1000 ? Math.min(repetitions, 3) : repetitions;
}

/** The measurements of one size. */
interface SizeResult {
  size: Size;
  planned: number;
  baseline: number[];
  first: number[];
  reapply: number[];
  firstStatements: number[];
  reapplyStatements: number[];
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** Runs our first apply and re-apply of the spec in `specPath` in a child process. */
function applyInChild(options: ApplyRunOptions): Promise<ApplyRunResult> {
  return runBenchChild<ApplyRunResult>(
    new URL("./_spec_apply_child.ts", import.meta.url),
    options,
    "spec apply failed",
  );
}

/** A context shared by every size: the compute, sessions for cleanup, the scratch space. */
interface Context {
  compute: ComputeHandle;
  clients: pg.Client[];
  workDir: string;
  log: (message: string) => void;
}

async function measureSize(context: Context, size: Size, repetitions: number): Promise<SizeResult> {
  const { compute, clients, workDir } = context;
  const catalog = benchCatalog(
    size.roles,
    size.databases,
    (name) => md5Password(`${name}-pw`, name),
  );
  const specJson = {
    ...compute.spec,
    cluster: { ...(compute.spec.cluster as Record<string, unknown>), ...catalog },
  };
  const spec = parseComputeSpecJson(specJson);
  const label = `${size.roles}x${size.databases}`;
  const specPath = join(workDir, `spec_${label}.json`);
  await Deno.writeTextFile(specPath, JSON.stringify(specJson));
  const cleanup = async () => {
    const statements = cleanupStatements(
      catalog.roles.map((role) => role.name),
      catalog.databases.map((database) => database.name),
    );
    // The databases in parallel on the cleanup sessions, then the roles: untimed, but not idle.
    const drops = statements.slice(0, catalog.databases.length);
    await Promise.all(
      clients.map(async (client, i) => {
        for (let d = i; d < drops.length; d += clients.length) await client.query(drops[d]);
      }),
    );
    for (const statement of statements.slice(drops.length)) await clients[0].query(statement);
  };

  // The plan on the fresh state: what psql runs.
  await cleanup();
  const { plan } = await applySpec(compute.postgresUrl, spec, {
    privilegedRoleName: PRIVILEGED_ROLE,
    concurrency: concurrencyForStartup(spec),
    dryRun: true,
    log: { debug() {}, info() {}, warn() {}, error() {} },
    settled: new Map(),
  });
  const scriptPath = join(workDir, `plan_${label}.sql`);
  await Deno.writeTextFile(scriptPath, psqlScript(plan.steps, SYSTEM_DATABASE), { mode: 0o644 });
  await Deno.chmod(scriptPath, 0o644);
  const psql = siblingBinary(DEFAULT_PGBIN, "psql");
  const baselineOnce = () =>
    timed(() =>
      runAsPgUser(psql, [
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        compute.postgresUrl,
        "-f",
        scriptPath,
      ])
    );
  const oursOnce = () =>
    applyInChild({
      connstr: compute.postgresUrl,
      specPath,
      privilegedRoleName: PRIVILEGED_ROLE,
    });

  const result: SizeResult = {
    size,
    planned: plan.steps.length,
    baseline: [],
    first: [],
    reapply: [],
    firstStatements: [],
    reapplyStatements: [],
  };
  for (let rep = 0; rep < repetitions; rep++) {
    const runBaseline = async () => {
      await cleanup();
      result.baseline.push(await baselineOnce());
    };
    const runOurs = async () => {
      await cleanup();
      const ours = await oursOnce();
      result.first.push(ours.firstMs);
      result.reapply.push(ours.reapplyMs);
      result.firstStatements.push(ours.firstStatements);
      result.reapplyStatements.push(ours.reapplyStatements);
    };
    if (rep % 2 === 0) {
      await runBaseline();
      await runOurs();
    } else {
      await runOurs();
      await runBaseline();
    }
  }
  await cleanup();
  context.log(
    `spec_apply ${label}: ${result.planned} statements planned; psql -f ` +
      `${round(summarize(result.baseline).median)} ms, first apply ` +
      `${round(summarize(result.first).median)} ms, re-apply ` +
      `${round(summarize(result.reapply).median)} ms`,
  );
  return result;
}

function sizeName({ roles, databases }: Size): string {
  return `${roles} role${roles === 1 ? "" : "s"} × ${databases} database${
    databases === 1 ? "" : "s"
  }`;
}

/** The two rows of one size: first apply against psql -f, and re-apply. */
function rowsOf(result: SizeResult): BenchRow[] {
  const { size } = result;
  return [
    {
      name: `first apply, ${sizeName(size)}`,
      unit: "ms",
      ours: summarize(result.first),
      baseline: summarize(result.baseline),
      ratio: round(pairedRatio(result.first, result.baseline)),
      extra: {
        roles: size.roles,
        databases: size.databases,
        statements: summarize(result.firstStatements).median,
        planned: result.planned,
      },
    },
    {
      name: `re-apply, ${sizeName(size)}`,
      unit: "ms",
      ours: summarize(result.reapply),
      extra: {
        roles: size.roles,
        databases: size.databases,
        statements: summarize(result.reapplyStatements).max,
      },
    },
  ];
}

/** First apply and re-apply of R roles × D databases against `psql -f` of the planned SQL. */
export const benchmark: Benchmark = async ({ quick, repetitions, workDir, log }) => {
  const measured = sizes(quick);
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "spec-apply" }] });
  const compute = cluster.compute("spec-apply");
  const clients: pg.Client[] = [];
  const results: SizeResult[] = [];
  try {
    for (let i = 0; i < CLEANUP_SESSIONS; i++) {
      const client = new pg.Client({ connectionString: compute.postgresUrl });
      client.on("error", () => {});
      clients.push(client);
      await client.connect();
    }
    for (const size of measured) {
      results.push(
        await measureSize(
          { compute, clients, workDir, log },
          size,
          repetitionsFor(size, repetitions),
        ),
      );
    }
  } finally {
    await Promise.all(clients.map((client) => client.end()));
  }
  const largest = results[results.length - 1];
  const label = `${largest.size.roles}x${largest.size.databases}`;
  const reduced = measured.filter((size) => repetitionsFor(size, repetitions) < repetitions);
  return {
    name: "spec_apply",
    description: "applySpec (in a child process, startup concurrency " +
      `${concurrencyForStartupOf(compute)}) of R roles × D databases on a fresh state ` +
      "(first apply) and again (re-apply), against psql -f of exactly the planned SQL " +
      `with \\connect lines, interleaved; ${repetitions} repetitions` +
      (reduced.length > 0
        ? ` (${Math.min(repetitions, 3)} for ${reduced.map(sizeName).join(", ")})`
        : ""),
    rows: results.flatMap(rowsOf),
    targets: [
      target(
        `spec_apply_first_${label}_ratio`,
        round(pairedRatio(largest.first, largest.baseline)),
        1.0,
        "× psql -f",
      ),
    ],
  };
};

function concurrencyForStartupOf(compute: ComputeHandle): number {
  return concurrencyForStartup(parseComputeSpecJson(compute.spec));
}
