/**
 * @module
 * What a failover cluster can take at each point of a scenario: a model of the
 * cluster (which pageservers and safekeepers run, where the tenant is attached,
 * whether the primary runs, whether a replica waits), the rule that says why a
 * step cannot run in a given state ({@linkcode refusal}), and the state a step
 * leaves. The chaos generator only draws steps the rule accepts, and
 * {@linkcode replayScenario} checks a whole scenario against it.
 *
 * The rules follow what the runner and the cluster need: commits need the
 * primary and a majority of safekeepers, so while the primary runs a step
 * after which the runner waits for a commit needs them; a safekeeper step expects
 * `blocked` exactly when the primary runs and that majority is gone; a compute
 * starts only with a majority and its tenant's pageserver up; a replica is
 * promoted only once the primary is down; with no primary, the safekeepers
 * keep their majority. Only the first primary runs the emulated Neon extension
 * (a compute the admin API adds has none), so only it can notice by itself that
 * its tenant moved (`migrate` without `notify`, `fail_pageserver`).
 */

import { checkAgainstCluster, ScenarioError, type Step } from "../failover/scenario.ts";

/** How many pageservers and safekeepers the cluster has (ids 1…n). */
export interface ClusterShape {
  pageservers: number;
  safekeepers: number;
}

/** The cluster as the scenario has left it so far. */
export interface ClusterModel {
  readonly shape: ClusterShape;
  /** Running pageservers, by id. */
  readonly pageserversUp: ReadonlySet<number>;
  /** The pageserver the tenant is attached to. */
  readonly attached: number;
  /** Running safekeepers, by id. */
  readonly safekeepersUp: ReadonlySet<number>;
  readonly primaryUp: boolean;
  /** The primary runs the emulated Neon extension, which notices a tenant's move. */
  readonly primaryProbes: boolean;
  /** A replica runs, waiting to be promoted. */
  readonly replica: boolean;
  /** Replicas added so far (promoted or not). */
  readonly replicasAdded: number;
}

/** The cluster a failover run starts with: everything up, the tenant on pageserver 1. */
export function initialModel(shape: ClusterShape): ClusterModel {
  return {
    shape,
    pageserversUp: new Set(ids(shape.pageservers)),
    attached: 1,
    safekeepersUp: new Set(ids(shape.safekeepers)),
    primaryUp: true,
    primaryProbes: true,
    replica: false,
    replicasAdded: 0,
  };
}

/** Whether a majority of the safekeepers runs in `model`. */
export function hasQuorum(model: ClusterModel): boolean {
  return model.safekeepersUp.size >= Math.floor(model.shape.safekeepers / 2) + 1;
}

/** Why `step` cannot run in `model`, or null when it can. */
export function refusal(model: ClusterModel, step: Step): string | null {
  const commits = model.primaryUp && hasQuorum(model);
  const noCommits = "needs the primary and a majority of safekeepers";
  const noProbe =
    "the primary (a promoted replica) has no emulated Neon extension to notice a move";
  switch (step.step) {
    case "run":
      return commits ? null : noCommits;
    case "migrate":
      if (!commits) return noCommits;
      if (step.to === model.attached) return `the tenant is already on pageserver ${step.to}`;
      if (!step.notify && !model.primaryProbes) return noProbe;
      return model.pageserversUp.has(step.to) ? null : `pageserver ${step.to} is down`;
    case "pageserver":
      // With the primary up, the runner waits for commits after the step.
      if (model.primaryUp && !hasQuorum(model)) return "commits wait for a majority of safekeepers";
      return componentRefusal("pageserver", model.pageserversUp, step.id, step.action);
    case "fail_pageserver": {
      if (!commits) return noCommits;
      if (step.id !== model.attached) return `the tenant is not on pageserver ${step.id}`;
      if (!model.primaryProbes) return noProbe;
      if (!model.pageserversUp.has(step.id)) return `pageserver ${step.id} is down`;
      const other = ids(model.shape.pageservers).find((id) => id !== step.id);
      return other !== undefined && model.pageserversUp.has(other)
        ? null
        : "no other pageserver is up to take the tenant";
    }
    case "safekeeper": {
      const refused = componentRefusal("safekeeper", model.safekeepersUp, step.id, step.action);
      if (refused) return refused;
      const after = afterStep(model, step);
      if (!model.primaryUp && !hasQuorum(after)) {
        return "with no primary, a majority of safekeepers stays up";
      }
      const expected = hasQuorum(after) ? "commits" : "blocked";
      return step.expect === expected ? null : `expect must be ${expected}`;
    }
    case "compute":
      if (!hasQuorum(model)) return "needs a majority of safekeepers";
      if (step.action !== "start") return model.primaryUp ? null : "the primary is down";
      if (model.primaryUp) return "the primary runs";
      return model.pageserversUp.has(model.attached)
        ? null
        : `the tenant's pageserver ${model.attached} is down`;
    case "add_replica":
      if (!commits) return noCommits;
      if (model.replica) return "a replica already waits";
      return model.pageserversUp.has(model.attached)
        ? null
        : `the tenant's pageserver ${model.attached} is down`;
    case "promote_replica":
      if (!model.replica) return "no replica";
      if (model.primaryUp) return "the primary runs";
      return hasQuorum(model) ? null : "needs a majority of safekeepers";
  }
}

/** The state `step` leaves (whether or not it was allowed). */
export function afterStep(model: ClusterModel, step: Step): ClusterModel {
  switch (step.step) {
    case "run":
      return model;
    case "migrate":
      return { ...model, attached: step.to };
    case "pageserver":
      return { ...model, pageserversUp: toggled(model.pageserversUp, step.id, step.action) };
    case "fail_pageserver":
      return {
        ...model,
        pageserversUp: toggled(model.pageserversUp, step.id, "kill"),
        attached: ids(model.shape.pageservers).find((id) => id !== step.id) ?? model.attached,
      };
    case "safekeeper":
      return { ...model, safekeepersUp: toggled(model.safekeepersUp, step.id, step.action) };
    case "compute":
      return { ...model, primaryUp: step.action === "start" };
    case "add_replica":
      return { ...model, replica: true, replicasAdded: model.replicasAdded + 1 };
    case "promote_replica":
      return { ...model, replica: false, primaryUp: true, primaryProbes: false };
  }
}

/**
 * Walks `steps` from the initial cluster; throws {@link ScenarioError} naming
 * the first step that names a server the cluster lacks or that the cluster
 * cannot take at that point. Returns the state at the end.
 */
export function replayScenario(
  steps: readonly Step[],
  shape: ClusterShape,
  source = "scenario",
): ClusterModel {
  checkAgainstCluster(steps, shape, source);
  let model = initialModel(shape);
  steps.forEach((step, index) => {
    const refused = refusal(model, step);
    if (refused) throw new ScenarioError(`${source}: step ${index + 1} (${step.step}): ${refused}`);
    model = afterStep(model, step);
  });
  return model;
}

/**
 * Steps that bring `model` back to a healthy cluster (every safekeeper and
 * pageserver up, the primary running) and let the workloads commit once more,
 * so a final check can restart the primary from the storage.
 */
export function healingSteps(model: ClusterModel, commits = 10): Step[] {
  const steps: Step[] = [];
  let state = model;
  const take = (step: Step) => {
    steps.push(step);
    state = afterStep(state, step);
  };
  for (const id of ids(model.shape.safekeepers)) {
    if (state.safekeepersUp.has(id)) continue;
    const after = afterStep(state, { step: "safekeeper", action: "start", id, expect: "commits" });
    const expect = state.primaryUp && !hasQuorum(after) ? "blocked" : "commits";
    take({ step: "safekeeper", action: "start", id, expect });
  }
  for (const id of ids(model.shape.pageservers)) {
    if (!state.pageserversUp.has(id)) take({ step: "pageserver", action: "start", id });
  }
  if (!state.primaryUp) take({ step: "compute", action: "start" });
  take({ step: "run", commits });
  return steps;
}

function componentRefusal(
  kind: string,
  up: ReadonlySet<number>,
  id: number,
  action: "stop" | "start" | "kill",
): string | null {
  if (action === "start") return up.has(id) ? `${kind} ${id} runs` : null;
  return up.has(id) ? null : `${kind} ${id} is down`;
}

function toggled(
  up: ReadonlySet<number>,
  id: number,
  action: "stop" | "start" | "kill",
): ReadonlySet<number> {
  const next = new Set(up);
  if (action === "start") next.add(id);
  else next.delete(id);
  return next;
}

/** `[1, …, count]`. */
function ids(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index + 1);
}
