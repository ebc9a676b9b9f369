/**
 * @module
 * `/promote`: turn a running replica into the primary. Single flight: the
 * first call starts the promotion, concurrent and later calls (whatever their
 * body) get the same final state, a failure included, as in the reference. The
 * compute's status does not change.
 *
 * Steps: the compute must be a `Replica`; its LFC prewarm must have ended
 * (`not_prewarmed`/`prewarming` refuse, `failed` only warns); Postgres must
 * replay up to the old primary's flush LSN; then it is promoted (see
 * `postgres/promote.ts`) and the new spec, as a `Primary`, is installed and
 * applied like a `/configure`.
 */

import type { LfcPrewarmState } from "../api/lfc.ts";
import { type ParsedSpec, parseSpec } from "../api/parsed_spec.ts";
import type { PromoteConfig, PromoteState } from "../api/promote.ts";
import { computeModeName } from "../api/spec.ts";
import { errorMessage, getLogger } from "../log.ts";
import { promotePostgres, type PromotePostgresOptions } from "../postgres/promote.ts";
import { type FailpointRegistry, failpoints as processFailpoints } from "./failpoints.ts";
import type { Lfc } from "./lfc.ts";
import type { ComputeNode } from "./node.ts";

const log = getLogger("promote");

/** What a promotion needs from the compute. */
export interface PromoteContext {
  /** The spec in force, or null before one arrived. */
  currentSpec(): ParsedSpec | null;
  /** `--connstr`. */
  connstr: string;
  /** The LFC prewarm state. */
  prewarmState(): LfcPrewarmState;
  /** Makes `pspec` the compute's spec and reconfigures Postgres for it. */
  installPromotedSpec(pspec: ParsedSpec): Promise<void>;
  /** Default: the process's failpoints (`compute-promotion`). */
  failpoints?: FailpointRegistry;
  /** Replay polling, for tests. */
  replay?: Pick<PromotePostgresOptions, "retries" | "retryIntervalMs">;
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
  #outcome: Promise<PromoteState> | undefined;

  constructor(ctx: PromoteContext) {
    this.#ctx = ctx;
  }

  /**
   * Validates `config.spec` as the primary's spec (throws `SpecError`, HTTP
   * 400), then starts the promotion or joins the one already started, and
   * resolves with its final state (`completed` or `failed`); never rejects.
   */
  promote(config: PromoteConfig): Promise<PromoteState> {
    const pspec = parseSpec({ ...config.spec, mode: "Primary" });
    this.#outcome ??= this.#run(pspec, config.wal_flush_lsn).catch((error) => {
      const message = errorMessage(error);
      log.error("promotion failed", { error: message });
      return { status: "failed", error: message } satisfies PromoteState;
    });
    return this.#outcome;
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

    const failpoints = ctx.failpoints ?? processFailpoints;
    const timings = await promotePostgres({
      connstr: ctx.connstr,
      walFlushLsn,
      safekeepers: pspec.safekeeperConnstrings,
      beforePromote: async () => {
        if (await failpoints.evaluate("compute-promotion")) {
          throw new Error("compute-promotion failpoint");
        }
      },
      ...ctx.replay,
    });

    const started = performance.now();
    try {
      await ctx.installPromotedSpec(pspec);
    } catch (error) {
      throw new Error(`reconfigure: ${errorMessage(error)}`, { cause: error });
    }
    const state: PromoteState = {
      status: "completed",
      lsn_wait_time_ms: timings.lsnWaitTimeMs,
      pg_promote_time_ms: timings.pgPromoteTimeMs,
      reconfigure_time_ms: msSince(started),
    };
    log.info("promotion completed", state);
    return state;
  }
}

/** The promotion of `node`, refused unless `lfc`'s prewarm has ended. */
export function createPromoter(node: ComputeNode, lfc: Lfc): Promoter {
  return new Promoter({
    currentSpec: () => node.parsedSpec,
    connstr: node.settings.connstr,
    prewarmState: () => lfc.prewarmState(),
    installPromotedSpec: (pspec) => node.installPromotedSpec(pspec),
  });
}
