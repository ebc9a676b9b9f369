/**
 * @module
 * The compute's status and the one place it changes. The legal moves between
 * the 11 statuses are a table (`TRANSITIONS`); `ComputeState.transition` checks
 * a move against it, updates `compute_ctl_up`, logs it and wakes everyone
 * waiting for a status. `/status` reads its snapshot.
 */

import { type ComputeStatus, type ComputeStatusResponse, statusDisplay } from "../api/responses.ts";
import { getLogger } from "../log.ts";
import { setComputeUp } from "../metrics.ts";

const log = getLogger("state");

/**
 * Every legal move, by source status (neon-01 §3.2). Self-moves are listed
 * where a repeated request re-enters the same status on purpose. One edge is
 * ours, not Neon's: `failed → configuration_pending`, a `/configure` after a
 * failed reconfiguration (Postgres still runs the previous configuration), so
 * a compute is never left unable to take a valid spec.
 */
export const TRANSITIONS: Readonly<Record<ComputeStatus, readonly ComputeStatus[]>> = {
  empty: [
    "configuration_pending",
    "init",
    "termination_pending_fast",
    "termination_pending_immediate",
  ],
  configuration_pending: ["init", "configuration"],
  init: ["running", "failed"],
  running: [
    "configuration_pending",
    "refresh_configuration_pending",
    "termination_pending_fast",
    "termination_pending_immediate",
  ],
  configuration: ["running", "failed"],
  failed: ["refresh_configuration_pending", "configuration_pending"],
  termination_pending_fast: ["terminated"],
  termination_pending_immediate: ["terminated"],
  terminated: [],
  refresh_configuration_pending: ["refresh_configuration_pending", "refresh_configuration"],
  refresh_configuration: ["running", "refresh_configuration_pending"],
};

/** Whether `from → to` is in the table. */
export function isLegalTransition(from: ComputeStatus, to: ComputeStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** A move the table does not allow: a bug in the caller, never a client error. */
export class IllegalTransitionError extends Error {
  constructor(readonly from: ComputeStatus, readonly to: ComputeStatus) {
    super(`illegal compute status transition from ${statusDisplay(from)} to ${statusDisplay(to)}`);
    this.name = "IllegalTransitionError";
  }
}

/** A request that is not allowed in the current status (HTTP 412). */
export class InvalidStatusError extends Error {
  constructor(readonly status: ComputeStatus) {
    super(`invalid compute status: ${statusDisplay(status)}`);
    this.name = "InvalidStatusError";
  }
}

/**
 * RFC 3339 in UTC with the shortest exact fraction (none, or milliseconds) and
 * the given zone suffix: `Z` for `start_time`, `+00:00` for `last_active`.
 */
export function formatTimestamp(date: Date, zone: "Z" | "+00:00" = "Z"): string {
  const iso = date.toISOString(); // 2024-05-01T10:00:00.123Z
  const base = iso.slice(0, 19);
  const millis = iso.slice(20, 23);
  return `${base}${millis === "000" ? "" : `.${millis}`}${zone}`;
}

/**
 * {@linkcode formatTimestamp} remembering its last answer: `/status` formats
 * the same two instants on every request.
 */
function rememberedFormat(zone: "Z" | "+00:00"): (date: Date) => string {
  let time = Number.NaN;
  let text = "";
  return (date) => {
    const at = date.getTime();
    if (at !== time) {
      time = at;
      text = formatTimestamp(date, zone);
    }
    return text;
  };
}

interface Waiter {
  statuses: ReadonlySet<ComputeStatus> | null; // null: any change
  resolve(status: ComputeStatus): void;
}

/** Tenant and timeline shown in `/status` once a spec is known. */
export interface StatusIdentity {
  tenant: string | null;
  timeline: string | null;
}

/** The mutable state of one compute: status, error, timestamps, waiters. */
export class ComputeState {
  #status: ComputeStatus = "empty";
  #previous: ComputeStatus | null = null;
  #waiters = new Set<Waiter>();
  /** When the state was created; reset when a spec arrives for an empty compute. */
  startTime: Date = new Date();
  /** Latest user activity seen by the monitor; only ever moves forward. */
  #lastActive: Date | null = null;
  /** The last failure's text, shown in `/status` as `error`; cleared on reaching `running`. */
  error: string | null = null;
  identity: StatusIdentity = { tenant: null, timeline: null };
  #formatStart = rememberedFormat("Z");
  #formatActive = rememberedFormat("+00:00");

  constructor() {
    setComputeUp(statusDisplay(this.#status));
  }

  /** The current status. */
  get status(): ComputeStatus {
    return this.#status;
  }

  /** The status before the current one (null before the first move): what led here. */
  get previousStatus(): ComputeStatus | null {
    return this.#previous;
  }

  get lastActive(): Date | null {
    return this.#lastActive;
  }

  /**
   * Moves to `to` if the table allows it (else throws
   * {@link IllegalTransitionError}), sets `compute_ctl_up` to the new status,
   * logs the change and wakes waiters. Reaching `running` clears `error`: the
   * failure it described is over. Returns the previous status.
   */
  transition(to: ComputeStatus, reason?: string): ComputeStatus {
    const from = this.#status;
    if (!isLegalTransition(from, to)) throw new IllegalTransitionError(from, to);
    this.#previous = from;
    this.#status = to;
    if (to === "running") this.error = null;
    setComputeUp(statusDisplay(to));
    const message = `Changing compute status from ${statusDisplay(from)} to ${statusDisplay(to)}`;
    log.info(reason === undefined ? message : `${message}: ${reason}`);
    for (const waiter of [...this.#waiters]) {
      if (waiter.statuses === null || waiter.statuses.has(to)) waiter.resolve(to);
    }
    return from;
  }

  /**
   * Resolves with the status as soon as it is one of `statuses`: at once if it
   * already is, else at the first transition into one. Every transition is
   * seen, however quickly the next follows. Rejects when `signal` aborts.
   */
  waitForStatus(
    statuses: Iterable<ComputeStatus>,
    signal?: AbortSignal,
  ): Promise<ComputeStatus> {
    const wanted = new Set(statuses);
    if (wanted.has(this.#status)) return Promise.resolve(this.#status);
    return this.#wait(wanted, signal);
  }

  /** Resolves with the new status at the next transition, whatever it is. */
  waitForChange(signal?: AbortSignal): Promise<ComputeStatus> {
    return this.#wait(null, signal);
  }

  #wait(statuses: ReadonlySet<ComputeStatus> | null, signal?: AbortSignal) {
    return new Promise<ComputeStatus>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        this.#waiters.delete(waiter);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        statuses,
        resolve: (status) => {
          this.#waiters.delete(waiter);
          signal?.removeEventListener("abort", onAbort);
          resolve(status);
        },
      };
      this.#waiters.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Records activity at `at` unless an equal or later time is already known. */
  updateLastActive(at: Date): void {
    if (this.#lastActive === null || at > this.#lastActive) this.#lastActive = at;
  }

  /** The `/status` body, keys in the reference's order. */
  snapshot(): ComputeStatusResponse {
    return {
      start_time: this.#formatStart(this.startTime),
      tenant: this.identity.tenant,
      timeline: this.identity.timeline,
      status: this.#status,
      last_active: this.#lastActive === null ? null : this.#formatActive(this.#lastActive),
      error: this.error,
    };
  }
}
