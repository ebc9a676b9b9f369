/**
 * @module
 * `/promote`: turn a running replica into the primary. Single flight: the
 * first call starts the promotion, concurrent and later calls (whatever their
 * body) get the same final state, a failure included, as in the reference. The
 * compute's status does not change.
 *
 * Steps: the compute must be a `Replica`; its LFC prewarm must have ended
 * (`not_prewarmed`/`prewarming` refuse, `failed` only warns); Postgres must
 * replay up to the old primary's flush LSN; then it leaves recovery and the
 * new spec, as a `Primary`, is installed and applied like a `/configure`.
 *
 * How it leaves recovery depends on the storage (see `postgres/promote.ts`).
 * Neon's Postgres runs `pg_promote()` in place and its walproposer carries the
 * new timeline to the safekeepers. On vanilla storage the safekeepers store
 * timeline 1 only, so the node restarts Postgres without `standby.signal`
 * instead: crash recovery to the end of the replayed WAL, then timeline 1 goes
 * on, announced to the safekeepers from there (`ComputeNode.restartAsPrimary`).
 */

import { TaskGroup } from "../_async.ts";
import type { LfcPrewarmState } from "../api/lfc.ts";
import { type ParsedSpec, parseSpec } from "../api/parsed_spec.ts";
import type { PromoteConfig, PromoteState } from "../api/promote.ts";
import { computeModeName } from "../api/spec.ts";
import { errorMessage, getLogger } from "../log.ts";
import {
  checkWritable,
  promoteInPlace,
  type ReplayWaitOptions,
  waitForReplay,
} from "../postgres/promote.ts";
import { type FailpointRegistry, failpoints as processFailpoints } from "./failpoints.ts";
import type { Lfc } from "./lfc.ts";
import { isVanillaStorage } from "./postgres_config.ts";
import type { NodeSettings } from "./settings.ts";

const log = getLogger("promote");

/** What a promotion needs from the compute. */
export interface PromoteContext {
  /** The spec in force, or null before one arrived. */
  currentSpec(): ParsedSpec | null;
  /** `--connstr`. */
  connstr: string;
  /** The LFC prewarm state. */
  prewarmState(): LfcPrewarmState;
  /**
   * Takes the replayed standby out of recovery as the primary of `pspec`;
   * `beforePromote` (the `compute-promotion` failpoint) runs before the step
   * that changes anything for good. Default: Neon's `pg_promote()` in place.
   */
  leaveRecovery?(pspec: ParsedSpec, beforePromote: () => Promise<void>): Promise<void>;
  /** Makes `pspec` the compute's spec and reconfigures Postgres for it. */
  installPromotedSpec(pspec: ParsedSpec): Promise<void>;
  /** Default: the process's failpoints (`compute-promotion`). */
  failpoints?: FailpointRegistry;
  /** Replay polling, for tests. */
  replay?: Pick<ReplayWaitOptions, "retries" | "retryIntervalMs">;
  /** Waits until Postgres has replayed the old primary's WAL; default `waitForReplay`. */
  waitForReplay?: (options: ReplayWaitOptions) => Promise<number>;
}

/** Rust's variant name of a prewarm state, as the refusal names it (`NotPrewarmed`). */
function prewarmStateName(state: LfcPrewarmState): string {
  return state.status.split("_").map((word) => word[0].toUpperCase() + word.slice(1)).join("");
}

function msSince(start: number): number {
  return Math.round(performance.now() - start);
}

/** The promotion of one compute: runs at most once. */
export class Promoter {
  readonly #ctx: PromoteContext;
  readonly #work = new TaskGroup("promotion");
  #outcome: Promise<PromoteState> | undefined;

  constructor(ctx: PromoteContext) {
    this.#ctx = ctx;
  }

  /**
   * Validates `config.spec` as the primary's spec (throws `SpecError`, HTTP
   * 400), then starts the promotion or joins the one already started, and
   * resolves with its final state (`completed` or `failed`); never rejects.
   * After {@link stop}, a promotion that never started fails at once.
   */
  promote(config: PromoteConfig): Promise<PromoteState> {
    const pspec = parseSpec({ ...config.spec, mode: "Primary" });
    this.#outcome ??= this.#start(pspec, config.wal_flush_lsn);
    return this.#outcome;
  }

  /** Shutdown: refuses to start a promotion and resolves when a running one has ended. */
  async stop(): Promise<void> {
    await this.#work.close();
  }

  #start(pspec: ParsedSpec, walFlushLsn: bigint): Promise<PromoteState> {
    const failed = (error: unknown): PromoteState => {
      const message = errorMessage(error);
      log.error("promotion failed", { error: message });
      return { status: "failed", error: message };
    };
    try {
      return this.#work.run(() => this.#run(pspec, walFlushLsn).catch(failed));
    } catch (error) {
      return Promise.resolve(failed(error));
    }
  }

  async #run(pspec: ParsedSpec, walFlushLsn: bigint): Promise<PromoteState> {
    const ctx = this.#ctx;
    const current = ctx.currentSpec();
    if (current === null) throw new Error("the compute has no spec yet");
    if (current.spec.mode !== "Replica") {
      throw new Error(`compute mode "${computeModeName(current.spec.mode)}" is not replica`);
    }
    const prewarm = ctx.prewarmState();
    if (prewarm.status === "not_prewarmed" || prewarm.status === "prewarming") {
      throw new Error(`compute ${prewarmStateName(prewarm)}`);
    }
    if (prewarm.status === "failed") {
      log.warn("compute prewarm failed", { error: prewarm.error });
    }

    const waitForReplayed = ctx.waitForReplay ?? waitForReplay;
    const lsnWaitTimeMs = await waitForReplayed({
      connstr: ctx.connstr,
      walFlushLsn,
      ...ctx.replay,
    });

    const failpoints = ctx.failpoints ?? processFailpoints;
    const beforePromote = async () => {
      if (await failpoints.evaluate("compute-promotion")) {
        throw new Error("compute-promotion failpoint");
      }
    };
    const leaveRecovery = ctx.leaveRecovery ?? promoteInPlaceAt(ctx.connstr);
    let started = performance.now();
    await leaveRecovery(pspec, beforePromote);
    const pgPromoteTimeMs = msSince(started);

    started = performance.now();
    try {
      await ctx.installPromotedSpec(pspec);
    } catch (error) {
      throw new Error(`reconfigure: ${errorMessage(error)}`, { cause: error });
    }
    const state: PromoteState = {
      status: "completed",
      lsn_wait_time_ms: lsnWaitTimeMs,
      pg_promote_time_ms: pgPromoteTimeMs,
      reconfigure_time_ms: msSince(started),
    };
    log.info("promotion completed", state);
    return state;
  }
}

type LeaveRecovery = NonNullable<PromoteContext["leaveRecovery"]>;

/** Neon's way out of recovery for the Postgres at `connstr`: `pg_promote()` in place. */
function promoteInPlaceAt(connstr: string): LeaveRecovery {
  return (pspec, beforePromote) =>
    promoteInPlace({ connstr, safekeepers: pspec.safekeeperConnstrings, beforePromote });
}

/** What {@link createPromoter} needs from the compute. */
export interface PromotableCompute {
  readonly settings: Pick<NodeSettings, "connstr" | "pgbin">;
  readonly parsedSpec: ParsedSpec | null;
  /** Vanilla storage's way out of recovery: a restart that stays on timeline 1. */
  restartAsPrimary(pspec: ParsedSpec): Promise<void>;
  /** Makes `pspec` the compute's spec and reconfigures Postgres for it. */
  installPromotedSpec(pspec: ParsedSpec): Promise<void>;
}

/**
 * `compute`'s way out of recovery: in place where the binary is Neon's; on
 * vanilla storage a restart that stays on timeline 1, then the check that
 * Postgres accepts writes.
 */
function leaveRecoveryOf(compute: PromotableCompute): LeaveRecovery {
  const { connstr } = compute.settings;
  const inPlace = promoteInPlaceAt(connstr);
  return async (pspec, beforePromote) => {
    if (!(await isVanillaStorage(compute.settings))) return await inPlace(pspec, beforePromote);
    await beforePromote();
    await compute.restartAsPrimary(pspec);
    await checkWritable(connstr);
  };
}

/** The promotion of `compute`, refused unless `lfc`'s prewarm has ended. */
export function createPromoter(compute: PromotableCompute, lfc: Lfc): Promoter {
  return new Promoter({
    currentSpec: () => compute.parsedSpec,
    connstr: compute.settings.connstr,
    prewarmState: () => lfc.prewarmState(),
    leaveRecovery: leaveRecoveryOf(compute),
    installPromotedSpec: (pspec) => compute.installPromotedSpec(pspec),
  });
}
