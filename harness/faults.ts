/**
 * @module
 * Faults the harness's servers inject on purpose: what a fake pageserver does
 * to a basebackup, what a fake safekeeper does to `TIMELINE_STATUS`, and what
 * the fake control plane answers instead of a config. A {@link FaultSwitch}
 * holds the fault a server is armed with and decides, occasion by occasion,
 * whether it fires: for the next `times` occasions, or until it is cleared.
 *
 * ```ts
 * pageserver.basebackupFault.arm({ kind: "drop-after-bytes", bytes: 65_536 }, { times: 2 });
 * // the next two basebackups break off; the third is served whole
 * ```
 */

/** What a pageserver does to a basebackup instead of serving it whole. */
export type BasebackupFault =
  /**
   * Streams `bytes` bytes of the (compressed) tar in CopyData messages, then
   * drops the connection without another message; a tar shorter than that is
   * sent whole and the connection dropped where CopyDone belongs.
   */
  | { kind: "drop-after-bytes"; bytes: number }
  /**
   * Streams the whole tar, then sends an ErrorResponse with `message` where
   * CopyDone and CommandComplete belong, as Neon reports an error that
   * happens after the archive was written.
   */
  | { kind: "error-after-tar"; message: string };

/**
 * What a safekeeper does to `TIMELINE_STATUS`: it accepts the connection and
 * the query and never answers, until the client hangs up.
 */
export type SafekeeperFault = { kind: "silent-timeline-status" };

/** What the control plane answers instead of a compute's config. */
export type ControlPlaneFault =
  /** A bare status (e.g. 502, 503, 500, 404) with an optional plain-text body. */
  | { kind: "http-error"; status: number; body?: string }
  /** 200 with a body that is not a control-plane response (not JSON, or JSON of another shape). */
  | { kind: "garbage"; body?: string };

/** Options of {@link FaultSwitch.arm}. */
export interface ArmOptions {
  /** Fire on the next `times` occasions only; every occasion when absent. */
  times?: number;
}

/** Where a server keeps the fault it is armed with, and counts what it injected. */
export interface FaultSwitch<F> {
  /** Arms `fault` (replacing any armed one). */
  arm(fault: F, options?: ArmOptions): void;
  /** Disarms: from now on every occasion is served normally. */
  clear(): void;
  /** The armed fault, or null. */
  readonly armed: F | null;
  /** How many occasions a fault fired on since the switch was made. */
  readonly injected: number;
  /**
   * Called by the server on each occasion: the fault to inject this time (one
   * of its `times` used up, and counted in `injected`), or null to serve normally.
   */
  take(): F | null;
}

/** A switch armed with nothing. */
export function faultSwitch<F>(): FaultSwitch<F> {
  let armed: F | null = null;
  let remaining = Infinity;
  let injected = 0;
  const clear = () => {
    armed = null;
    remaining = Infinity;
  };
  return {
    arm: (fault, { times } = {}) => {
      if (times !== undefined && (!Number.isInteger(times) || times < 1)) {
        throw new RangeError(`times must be a positive integer, got ${times}`);
      }
      armed = fault;
      remaining = times ?? Infinity;
    },
    clear,
    get armed() {
      return armed;
    },
    get injected() {
      return injected;
    },
    take: () => {
      const fault = armed;
      if (fault === null) return null;
      injected += 1;
      remaining -= 1;
      if (remaining <= 0) clear();
      return fault;
    },
  };
}
