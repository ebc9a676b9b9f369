/**
 * @module
 * Reconfiguration cost against a reload: for 1, 10 and 50 databases in the
 * spec (quick: 1 and 10), each repetition times, interleaved, the baseline
 * (`pg_ctl reload` on the compute's data directory, run as the compute's OS
 * user, plus one `SELECT 1` round trip on an open connection) and three
 * `POST /configure` calls answered `200 running`: the unchanged spec, one
 * changed setting, one new role. The statements each apply ran are read from
 * the manager's `spec applied: N statements` log line.
 *
 * Run alone: `deno task bench --only reconfigure [--quick]`.
 */

import { locatePostgresOnce } from "../../harness/pg_locate.ts";
import pg from "pg";
import {
  type ComputeHandle,
  type JsonObject,
  md5Password,
  SPEC_DATABASE,
  SPEC_ROLE,
  startCluster,
} from "../../harness/cluster.ts";
import { runAsPgUser } from "../../harness/_processes.ts";
import { siblingBinary } from "../../src/postgres/process.ts";
import { pairedRatio, round, summarize } from "./_stats.ts";
import { type Benchmark, type BenchRow, type Target, target } from "./_types.ts";

const CASES = ["unchanged", "setting", "role"] as const;
type Case = typeof CASES[number];

const CASE_NAMES: Record<Case, string> = {
  unchanged: "unchanged spec",
  setting: "one changed setting",
  role: "one new role",
};

const APPLIED = /spec applied: (\d+) statements/g;

/** The statement counts of every `spec applied` line in `log`, in order. */
function appliedCounts(log: string): number[] {
  return [...log.matchAll(APPLIED)].map((match) => Number(match[1]));
}

/**
 * The statement count of the apply logged after the first `seen` ones; waits
 * for the manager's line to be copied into `compute.log` (bounded by tries,
 * not by time) and gives NaN when none appears.
 */
async function nextAppliedCount(compute: ComputeHandle, seen: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const counts = appliedCounts(await compute.readLog());
    if (counts.length > seen) return counts[seen];
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return NaN;
}

function specWith(base: JsonObject, cluster: JsonObject): JsonObject {
  return { ...base, cluster: { ...(base.cluster as JsonObject), ...cluster } };
}

function databases(count: number): JsonObject[] {
  const names = [SPEC_DATABASE];
  for (let i = 1; i < count; i++) names.push(`bench_db_${i}`);
  return names.map((name) => ({ name, owner: SPEC_ROLE.name, options: null }));
}

function role(name: string): JsonObject {
  return { name, encrypted_password: md5Password(`${name}-pw`, name), options: null };
}

async function configureOk(compute: ComputeHandle, spec: JsonObject): Promise<void> {
  const result = await compute.configure({ spec, compute_ctl_config: { jwks: { keys: [] } } });
  if (result.status !== 200 || result.body?.status !== "running") {
    throw new Error(`/configure answered ${result.status}: ${result.text}`);
  }
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** Measurements of one database count: per case the times, paired baselines and statement counts. */
interface SizeResult {
  baseline: number[];
  ours: Record<Case, number[]>;
  statements: Record<Case, number[]>;
}

async function measureSize(
  compute: ComputeHandle,
  client: pg.Client,
  count: number,
  repetitions: number,
  log: (message: string) => void,
): Promise<SizeResult> {
  const pgCtl = siblingBinary(DEFAULT_PGBIN, "pg_ctl");
  const baselineOnce = () =>
    timed(async () => {
      await runAsPgUser(pgCtl, ["reload", "-D", compute.pgdata]);
      await client.query("SELECT 1");
    });
  const initialRoles = (compute.spec.cluster as JsonObject).roles as JsonObject[];
  const roles = [...initialRoles];
  let workMem = 4;
  const current = () =>
    specWith(compute.spec, {
      databases: databases(count),
      roles: [...roles],
      settings: [{ name: "work_mem", value: `${workMem}MB`, vartype: "string" }],
    });
  // Set up the databases, then warm up every path once.
  await configureOk(compute, current());
  await configureOk(compute, current());
  await baselineOnce();

  const result: SizeResult = {
    baseline: [],
    ours: { unchanged: [], setting: [], role: [] },
    statements: { unchanged: [], setting: [], role: [] },
  };
  let seen = appliedCounts(await compute.readLog()).length;
  const record = async (which: Case, ms: number) => {
    result.ours[which].push(ms);
    result.statements[which].push(await nextAppliedCount(compute, seen));
    seen++;
  };
  for (let rep = 0; rep < repetitions; rep++) {
    result.baseline.push(await baselineOnce());
    await record("unchanged", await timed(() => configureOk(compute, current())));
    workMem = workMem === 4 ? 5 : 4;
    await record("setting", await timed(() => configureOk(compute, current())));
    roles.push(role(`bench_role_${count}_${rep}`));
    await record("role", await timed(() => configureOk(compute, current())));
  }
  log(
    `reconfigure ${count} db: baseline ${round(summarize(result.baseline).median)} ms, ` +
      CASES.map((c) => `${c} ${round(summarize(result.ours[c]).median)} ms`).join(", "),
  );
  return result;
}

const DEFAULT_PGBIN = (await locatePostgresOnce()).pgbin;

/** `/configure` (unchanged, one setting, one role) against `pg_ctl reload` + `SELECT 1`, by database count. */
export const benchmark: Benchmark = async ({ quick, repetitions, log }) => {
  const sizes = quick ? [1, 10] : [1, 10, 50];
  await using cluster = await startCluster({ pageservers: 1, computes: [{ id: "reconfigure" }] });
  const compute = cluster.compute("reconfigure");
  const client = new pg.Client({ connectionString: compute.postgresUrl });
  client.on("error", () => {});
  await client.connect();
  const rows: BenchRow[] = [];
  const unchangedRatios = new Map<number, number>();
  const unchangedMedians = new Map<number, number>();
  try {
    for (const count of sizes) {
      const size = await measureSize(compute, client, count, repetitions, log);
      for (const which of CASES) {
        const ratio = pairedRatio(size.ours[which], size.baseline);
        if (which === "unchanged") {
          unchangedRatios.set(count, ratio);
          unchangedMedians.set(count, summarize(size.ours[which]).median);
        }
        rows.push({
          name: `/configure, ${CASE_NAMES[which]}, ${count} database${count === 1 ? "" : "s"}`,
          unit: "ms",
          ours: summarize(size.ours[which]),
          baseline: summarize(size.baseline),
          ratio: round(ratio),
          extra: {
            databases: count,
            statements_median: summarize(size.statements[which]).median,
            statements_max: summarize(size.statements[which]).max,
          },
        });
      }
    }
  } finally {
    await client.end();
  }
  const largest = sizes[sizes.length - 1];
  const targets: Target[] = [
    target(
      "reconfigure_unchanged_ratio_max",
      round(Math.max(...unchangedRatios.values())),
      1.5,
      "× baseline",
    ),
    target(
      `reconfigure_unchanged_ratio_1_to_${largest}`,
      round(unchangedMedians.get(largest)! / unchangedMedians.get(1)!),
      1.2,
      `× (unchanged /configure at ${largest} databases over at 1)`,
    ),
  ];
  return {
    name: "reconfigure",
    description: "POST /configure (unchanged spec, one changed setting, one new role) with " +
      `${sizes.join(", ")} databases against pg_ctl reload + one SELECT 1, interleaved`,
    rows,
    targets,
  };
};
