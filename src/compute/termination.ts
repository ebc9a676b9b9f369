/**
 * @module
 * Stopping a compute. `/terminate` sets a pending status and sends Postgres
 * SIGINT (fast shutdown), then waits for `terminated`; the node's main loop
 * gets there once Postgres has exited and (primary) the safekeepers reported
 * the final flush LSN. Signals to the manager itself are forwarded and end it
 * at once. Also: how long the process lingers before it exits.
 */

import { formatLsn, type Lsn } from "../api/lsn.ts";
import type { ComputeStatus, TerminateMode, TerminateResponse } from "../api/responses.ts";
import { getLogger } from "../log.ts";
import type { PostgresProcess } from "../postgres/process.ts";
import { type ComputeState, InvalidStatusError } from "./state.ts";

const log = getLogger("termination");

/** The linger after an immediate termination or a plain Postgres exit. */
export const SHORT_EXIT_DELAY_MS = 300;

/** The pending status for each `/terminate` mode. */
export const PENDING_STATUS: Readonly<Record<TerminateMode, ComputeStatus>> = {
  fast: "termination_pending_fast",
  immediate: "termination_pending_immediate",
};

/** Processes a termination signal is forwarded to. */
export interface SignalTargets {
  postgres: PostgresProcess | null;
  /** Aborting it sends SIGTERM to a running `--sync-safekeepers` and stops start-up retries. */
  syncAbort: AbortController;
}

/** SIGTERM to a running sync-safekeepers (via abort), SIGINT (fast shutdown) to Postgres. */
export function forwardTerminationSignal(targets: SignalTargets): void {
  targets.syncAbort.abort(new Error("compute is terminating"));
  if (targets.postgres !== null) {
    log.info("sending SIGINT to postgres", { pid: targets.postgres.pid });
    targets.postgres.kill("SIGINT");
  }
}

/** What `/terminate` answers, and whether the compute was already terminated (201). */
export interface TerminateOutcome {
  body: TerminateResponse;
  alreadyTerminated: boolean;
}

/** Terminate's view of the node. */
export interface TerminationContext {
  state: ComputeState;
  flushLsn(): Lsn | null;
  forward(): void;
}

function body(lsn: Lsn | null): TerminateResponse {
  return { lsn: lsn === null ? null : formatLsn(lsn) };
}

/**
 * Handles `/terminate`: already `terminated` answers at once; `empty` and
 * `running` move to the pending status, forward SIGINT and wait for
 * `terminated`; anything else is an {@link InvalidStatusError}.
 */
export async function requestTermination(
  ctx: TerminationContext,
  mode: TerminateMode,
): Promise<TerminateOutcome> {
  const { state } = ctx;
  if (state.status === "terminated") {
    return { body: body(ctx.flushLsn()), alreadyTerminated: true };
  }
  if (state.status !== "empty" && state.status !== "running") {
    throw new InvalidStatusError(state.status);
  }
  state.transition(PENDING_STATUS[mode], "termination requested");
  ctx.forward();
  await state.waitForStatus(["terminated"]);
  return { body: body(ctx.flushLsn()), alreadyTerminated: false };
}

/**
 * How long to linger before exiting: `exitDelayMs` after a fast termination or
 * a failed start (so the control plane can still read `/status`), else 300 ms.
 */
export function exitDelay(
  statusBeforeExit: ComputeStatus,
  startupFailed: boolean,
  exitDelayMs: number,
): number {
  if (startupFailed || statusBeforeExit === "termination_pending_fast") return exitDelayMs;
  return SHORT_EXIT_DELAY_MS;
}

/** The signals the manager forwards before exiting with code 1. */
export const FORWARDED_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGQUIT"];

/**
 * Installs handlers for SIGINT, SIGTERM and SIGQUIT that call `forward` and
 * then `exit(1)` at once, as Neon's does: nothing else runs in between, so a
 * request waiting on the apply is never answered (its connection closes). By
 * default `Deno.exit`, whose `unload` writes the queued log lines
 * synchronously. Returns a function removing them.
 */
export function installSignalHandlers(
  forward: () => void,
  exit: (code: number) => void = (code) => Deno.exit(code),
): () => void {
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = () => {
      log.info(`received ${signal}, forwarding termination and exiting`);
      forward();
      exit(1);
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  };
}
