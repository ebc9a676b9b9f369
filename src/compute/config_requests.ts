/**
 * @module
 * The two requests that hand the configurator work, as `/configure` and
 * `/refresh_configuration` make them: which statuses take them, and for a
 * pushed spec the checks it passes before the status changes. Specs are
 * admitted one at a time, each checked against the running Postgres, so a
 * spec Postgres would refuse is answered 400 with the status untouched.
 */

import pLimit from "p-limit";
import type { ParsedSpec } from "../api/parsed_spec.ts";
import { statusDebug } from "../api/responses.ts";
import { pagestreamRequestErrors } from "../metrics.ts";
import type { SystemSession } from "../postgres/maintenance_session.ts";
import { checkSpecBeforeApply } from "./configurator.ts";
import { RefreshNotAllowedError } from "./errors.ts";
import type { NodeSettings } from "./settings.ts";
import { type ComputeState, InvalidStatusError } from "./state.ts";

/** What admitting a pushed spec needs from the node. */
export interface SpecAdmissionContext {
  /** The settings the check against Postgres connects with. */
  settings(): Pick<NodeSettings, "connstr" | "privilegedRoleName">;
  /** The session the check runs on (the node's maintenance session); default: one of its own. */
  systemSession?: SystemSession;
  state: ComputeState;
  /** Aborted once Postgres has exited for good: the compute is ending. */
  postgresEnded(): AbortSignal;
  /** Makes `pspec` the spec the configurator applies. */
  install(pspec: ParsedSpec): void;
}

/**
 * Whether `/configure` may queue a spec: the compute is `empty`, `running`,
 * or `failed` by a reconfiguration (Postgres still runs its previous
 * configuration; a failed start leaves no Postgres to configure).
 */
export function acceptsPushedSpec(state: ComputeState): boolean {
  const status = state.status;
  return status === "empty" || status === "running" ||
    (status === "failed" && state.previousStatus === "configuration");
}

/**
 * Returns the node's admission of pushed specs: one at a time, it requires a
 * status that takes one ({@link InvalidStatusError} otherwise), checks the spec
 * against the running Postgres (`SpecError`; not when `empty`), looks at the
 * status again (it may have moved meanwhile), installs the spec and moves to
 * `configuration_pending`.
 */
export function specAdmission(ctx: SpecAdmissionContext): (pspec: ParsedSpec) => Promise<void> {
  const oneAtATime = pLimit(1);
  const requireAccepting = () => {
    if (!acceptsPushedSpec(ctx.state)) throw new InvalidStatusError(ctx.state.status);
    ctx.postgresEnded().throwIfAborted();
  };
  return (pspec) =>
    oneAtATime(async () => {
      requireAccepting();
      if (ctx.state.status !== "empty") {
        await checkSpecBeforeApply(ctx.settings(), pspec, ctx.systemSession);
      }
      requireAccepting();
      ctx.install(pspec);
      ctx.state.transition("configuration_pending", "new spec received");
    });
}

/**
 * `/refresh_configuration`: counts the request, then from `running`, `failed`
 * or `refresh_configuration_pending` asks the configurator to refresh; in
 * `init` does nothing; otherwise throws {@link RefreshNotAllowedError}.
 */
export function requestRefresh(state: ComputeState): void {
  pagestreamRequestErrors.inc();
  const status = state.status;
  if (status === "init") return;
  if (status === "running" || status === "failed" || status === "refresh_configuration_pending") {
    state.transition("refresh_configuration_pending", "refresh requested");
    return;
  }
  throw new RefreshNotAllowedError(
    `Cannot refresh compute configuration in state ${statusDebug(status)}`,
  );
}
