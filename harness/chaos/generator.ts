/**
 * @module
 * The chaos generator: from a seed, a failover scenario of random steps that
 * the cluster can always take (drawn among the steps {@linkcode refusal}
 * accepts at that point), followed by the steps that heal the cluster again.
 * The same seed and length give the same scenario, which `deno task failover
 * --scenario FILE` replays.
 */

import { FAILOVER_CLUSTER, type Step } from "../failover/scenario.ts";
import {
  afterStep,
  type ClusterModel,
  type ClusterShape,
  healingSteps,
  initialModel,
  refusal,
} from "./model.ts";
import { mulberry32, type Prng } from "./prng.ts";

/** Options of {@linkcode generateScenario}. */
export interface GeneratorOptions {
  seed: number;
  /** Random steps before the healing ones. */
  steps: number;
  /** Default: the failover cluster (2 pageservers, 3 safekeepers). */
  shape?: ClusterShape;
  /** At most this many replicas per scenario (each is one more Postgres); default 2. */
  maxReplicas?: number;
}

/** How often each kind of step is drawn, among the kinds the cluster can take. */
const KIND_WEIGHTS: Readonly<Record<Step["step"], number>> = {
  run: 2,
  migrate: 2,
  pageserver: 1.5,
  fail_pageserver: 1,
  safekeeper: 3,
  compute: 2,
  add_replica: 1,
  promote_replica: 3,
};

/** Commits a `run` step asks for, at least and at most. */
const RUN_COMMITS = [5, 30] as const;

/** The scenario for `seed`: `steps` random valid steps, then {@linkcode healingSteps}. */
export function generateScenario(options: GeneratorOptions): Step[] {
  const { seed, steps: count, shape = FAILOVER_CLUSTER, maxReplicas = 2 } = options;
  const prng = mulberry32(seed);
  let model = initialModel(shape);
  const steps: Step[] = [];
  for (let index = 0; index < count; index++) {
    const step = drawStep(prng, model, maxReplicas);
    steps.push(step);
    model = afterStep(model, step);
  }
  return [...steps, ...healingSteps(model)];
}

/** One step `model` can take, drawn kind first (by weight), then among that kind's. */
function drawStep(prng: Prng, model: ClusterModel, maxReplicas: number): Step {
  const byKind = new Map<Step["step"], Step[]>();
  for (const step of everyStep(model.shape)) {
    if (refusal(model, step) !== null) continue;
    if (step.step === "add_replica" && model.replicasAdded >= maxReplicas) continue;
    byKind.set(step.step, [...byKind.get(step.step) ?? [], step]);
  }
  if (byKind.size === 0) throw new Error("the cluster model allows no step: a rule is wrong");
  const kind = prng.weighted([...byKind.keys()].map((kind) => [kind, KIND_WEIGHTS[kind]]));
  const step = prng.pick(byKind.get(kind)!);
  return step.step === "run" ? { step: "run", commits: prng.int(...RUN_COMMITS) } : step;
}

/** Every step a cluster of `shape` knows, valid or not (a `run` stands for any count). */
function everyStep(shape: ClusterShape): Step[] {
  const actions = ["stop", "start", "kill"] as const;
  const steps: Step[] = [{ step: "run", commits: RUN_COMMITS[0] }];
  for (let id = 1; id <= shape.pageservers; id++) {
    steps.push({ step: "migrate", to: id, notify: true }, {
      step: "migrate",
      to: id,
      notify: false,
    });
    for (const action of actions) steps.push({ step: "pageserver", action, id });
    steps.push({ step: "fail_pageserver", id });
  }
  for (let id = 1; id <= shape.safekeepers; id++) {
    for (const action of actions) {
      for (const expect of ["commits", "blocked"] as const) {
        steps.push({ step: "safekeeper", action, id, expect });
      }
    }
  }
  for (const action of actions) steps.push({ step: "compute", action });
  steps.push({ step: "add_replica" }, { step: "promote_replica" });
  return steps;
}
