/**
 * @module
 * Failover scenarios: a JSON list of steps, each one thing that happens to the
 * cluster while the workloads run. `deno task failover` runs the built-in one
 * ({@linkcode DEFAULT_SCENARIO}); `--scenario FILE` runs a user's own, so an
 * incident seen in production can be written down once and replayed. A bad
 * file is refused before anything starts, with the step and the reason.
 */

import { z } from "zod";

const id = z.number().int().positive();
const action = z.enum(["stop", "start", "kill"]);

/** One step; `"step"` says which. */
export const stepSchema = z.discriminatedUnion("step", [
  z.strictObject({
    step: z.literal("run"),
    /** Let the workloads make this many more commits. */
    commits: z.number().int().positive(),
  }),
  z.strictObject({
    step: z.literal("migrate"),
    /** The pageserver the tenant moves to. */
    to: id,
    /** true: the compute is told (`/configure`); false: it finds out through its probe. */
    notify: z.boolean(),
  }),
  z.strictObject({
    step: z.literal("pageserver"),
    action,
    id,
  }),
  z.strictObject({
    step: z.literal("fail_pageserver"),
    /** Killed; the storage controller moves its tenant to another running pageserver. */
    id,
  }),
  z.strictObject({
    step: z.literal("safekeeper"),
    action,
    id,
    /** What commits must do afterwards: go on (default) or block until a quorum is back. */
    expect: z.enum(["commits", "blocked"]).default("commits"),
  }),
  z.strictObject({
    step: z.literal("compute"),
    /** On the primary: stop = /terminate, kill = SIGKILL, start = a new manager on the timeline. */
    action,
  }),
  z.strictObject({ step: z.literal("add_replica") }),
  z.strictObject({
    step: z.literal("promote_replica"),
  }),
]);

export type Step = z.infer<typeof stepSchema>;

/** A scenario file that cannot run; the message names the step. */
export class ScenarioError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ScenarioError";
  }
}

/**
 * Parses a scenario (JSON text): a non-empty array of steps. Throws
 * {@link ScenarioError} naming the first bad step (`step 3 (migrate): to: …`).
 */
export function parseScenario(text: string, source = "scenario"): Step[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ScenarioError(`${source}: not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new ScenarioError(`${source}: a scenario is a non-empty JSON array of steps`);
  }
  return raw.map((entry, index) => {
    const result = stepSchema.safeParse(entry);
    if (result.success) return result.data;
    const name = typeof entry === "object" && entry !== null && "step" in entry
      ? ` (${String((entry as { step: unknown }).step)})`
      : "";
    const issue = result.error.issues[0];
    const path = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
    throw new ScenarioError(`${source}: step ${index + 1}${name}: ${path}${issue.message}`);
  });
}

/** How many pageservers and safekeepers the cluster of a failover run has. */
export const FAILOVER_CLUSTER = { pageservers: 2, safekeepers: 3 } as const;

/** Checks what a step needs from the cluster it runs on. */
export function checkAgainstCluster(
  steps: readonly Step[],
  cluster: { pageservers: number; safekeepers: number },
  source = "scenario",
): void {
  steps.forEach((step, index) => {
    const fail = (message: string) => {
      throw new ScenarioError(`${source}: step ${index + 1} (${step.step}): ${message}`);
    };
    if ("to" in step && step.to > cluster.pageservers) {
      fail(`to: there is no pageserver ${step.to} (the cluster has ${cluster.pageservers})`);
    }
    if (
      (step.step === "pageserver" || step.step === "fail_pageserver") &&
      step.id > cluster.pageservers
    ) {
      fail(`id: there is no pageserver ${step.id} (the cluster has ${cluster.pageservers})`);
    }
    if (step.step === "safekeeper" && step.id > cluster.safekeepers) {
      fail(`id: there is no safekeeper ${step.id} (the cluster has ${cluster.safekeepers})`);
    }
  });
}

/**
 * The built-in run, issue by issue of what a Neon compute can see: (a) a
 * migration the compute is told about; (b) one it must notice itself; (c) its
 * pageserver dies; (d) safekeepers die one by one and come back; (e) the
 * compute is SIGKILLed and started again; (f) the primary dies and a replica is
 * promoted.
 */
export const DEFAULT_SCENARIO: readonly Step[] = [
  { step: "run", commits: 50 },
  { step: "migrate", to: 2, notify: true },
  { step: "migrate", to: 1, notify: false },
  { step: "fail_pageserver", id: 1 },
  { step: "pageserver", action: "start", id: 1 },
  { step: "safekeeper", action: "kill", id: 1, expect: "commits" },
  { step: "safekeeper", action: "kill", id: 2, expect: "blocked" },
  { step: "safekeeper", action: "start", id: 1, expect: "commits" },
  { step: "safekeeper", action: "start", id: 2, expect: "commits" },
  { step: "compute", action: "kill" },
  { step: "compute", action: "start" },
  { step: "add_replica" },
  { step: "compute", action: "kill" },
  { step: "promote_replica" },
  { step: "run", commits: 50 },
];
