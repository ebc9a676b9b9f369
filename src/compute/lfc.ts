/**
 * @module
 * Prewarming and offloading the Local File Cache (LFC), the background jobs
 * behind `/lfc/prewarm` and `/lfc/offload`. Each has a state that `GET`
 * reports and that guards against a second job while one runs (the caller
 * answers 429). Prewarm: fetch the endpoint's saved state from endpoint
 * storage (404 → `skipped`), decompress, load it with
 * `neon.prewarm_local_cache()`; cancellable. Offload: export the state with
 * `neon.get_local_cache_state()` (NULL → `skipped`), compress, upload.
 * Failures become `failed` with the cause chain, and are counted.
 *
 * Vanilla Postgres has no LFC: the SQL steps fail there with Postgres's error
 * (`schema "neon" does not exist`), which is what the `failed` state then says.
 */

import { TaskGroup } from "../_async.ts";
import type { LfcOffloadState, LfcPrewarmState } from "../api/lfc.ts";
import type { ParsedSpec } from "../api/parsed_spec.ts";
import { errorMessage, getLogger } from "../log.ts";
import { lfcOffloadErrors, lfcOffloads, lfcPrewarmErrors, lfcPrewarms } from "../metrics.ts";
import { loadLfcState, readLfcState } from "../postgres/lfc.ts";
import {
  compressLfcState,
  decompressLfcState,
  fetchLfcState,
  type LfcStateLocation,
  lfcStateUrl,
  uploadLfcState,
} from "../storage/endpoint_storage.ts";
import { type FailpointRegistry, failpoints as processFailpoints } from "./failpoints.ts";
import type { NodeSettings } from "./settings.ts";

const log = getLogger("lfc");

/** What the LFC jobs need from the compute. */
export interface LfcContext {
  /** The spec in force, or null before one arrived. */
  currentSpec(): ParsedSpec | null;
  /** `--connstr`. */
  connstr: string;
  /** Default: the process's failpoints (`compute-prewarm`). */
  failpoints?: FailpointRegistry;
}

/**
 * The endpoint storage location of an endpoint's LFC state: `endpointId` or
 * the spec's own, with the spec's endpoint storage address and token. Throws
 * naming what is missing.
 */
export function lfcStateLocation(
  pspec: ParsedSpec | null,
  endpointId?: string,
): LfcStateLocation {
  if (pspec === null) throw new Error("the compute has no spec yet");
  const endpoint = endpointId ?? pspec.spec.endpoint_id ?? undefined;
  if (endpoint === undefined) {
    throw new Error("pspec.endpoint_id missing, other endpoint_id not provided");
  }
  const addr = pspec.endpointStorageAddr;
  if (addr === undefined) throw new Error("pspec.endpoint_storage_addr missing");
  const token = pspec.endpointStorageToken;
  if (token === undefined) throw new Error("pspec.endpoint_storage_token missing");
  return {
    url: lfcStateUrl({
      addr,
      tenantId: pspec.tenantId,
      timelineId: pspec.timelineId,
      endpointId: endpoint,
    }),
    token,
  };
}

function msSince(start: number): number {
  return Math.round(performance.now() - start);
}

/** The LFC jobs of one compute and their states. */
export class Lfc {
  readonly #ctx: LfcContext;
  #prewarm: LfcPrewarmState = { status: "not_prewarmed" };
  #offload: LfcOffloadState = { status: "not_offloaded" };
  /**
   * Cancels prewarms. Like the reference's token it is replaced only after a
   * prewarm ended `cancelled`, so a DELETE while idle cancels the next prewarm.
   */
  #prewarmCancel = new AbortController();
  readonly #jobs = new TaskGroup("LFC jobs");

  constructor(ctx: LfcContext) {
    this.#ctx = ctx;
  }

  /** `GET /lfc/prewarm`. */
  prewarmState(): LfcPrewarmState {
    return structuredClone(this.#prewarm);
  }

  /** `GET /lfc/offload`. */
  offloadState(): LfcOffloadState {
    return structuredClone(this.#offload);
  }

  /** Resolves when every job started so far has ended. */
  idle(): Promise<void> {
    return this.#jobs.idle();
  }

  /**
   * Shutdown: cancels a running prewarm, refuses new jobs (starting one throws
   * `TaskGroupClosedError`) and resolves when the running ones have ended.
   */
  async stop(): Promise<void> {
    const closed = this.#jobs.close();
    this.#prewarmCancel.abort();
    await closed;
  }

  /**
   * Starts a prewarm from `fromEndpoint`'s saved state (default this
   * endpoint's) unless one is running: returns false then (HTTP 429).
   */
  startPrewarm(fromEndpoint?: string): boolean {
    if (this.#prewarm.status === "prewarming") return false;
    const cancel = this.#prewarmCancel;
    this.#jobs.run(async () => {
      this.#prewarm = { status: "prewarming" };
      lfcPrewarms.inc();
      let outcome: LfcPrewarmState;
      try {
        outcome = await this.#runPrewarm(fromEndpoint, cancel.signal);
      } catch (error) {
        lfcPrewarmErrors.inc();
        const message = errorMessage(error);
        log.error("could not prewarm LFC", { error: message });
        outcome = { status: "failed", error: message };
      }
      if (outcome.status === "cancelled") this.#prewarmCancel = new AbortController();
      this.#prewarm = outcome;
    });
    return true;
  }

  /** `DELETE /lfc/prewarm`: cancels the running prewarm, or else the next one. */
  cancelPrewarm(): void {
    this.#prewarmCancel.abort();
  }

  async #runPrewarm(
    fromEndpoint: string | undefined,
    signal: AbortSignal,
  ): Promise<LfcPrewarmState> {
    const location = lfcStateLocation(this.#ctx.currentSpec(), fromEndpoint);
    const failpoints = this.#ctx.failpoints ?? processFailpoints;
    if (await failpoints.evaluate("compute-prewarm")) {
      throw new Error("compute-prewarm failpoint");
    }
    if (signal.aborted) return { status: "cancelled" };
    log.info("requesting LFC state from endpoint storage", { url: location.url });
    let started = performance.now();
    let compressed: Uint8Array | null;
    try {
      compressed = await fetchLfcState(location, signal);
    } catch (error) {
      if (signal.aborted) return { status: "cancelled" };
      throw error;
    }
    if (compressed === null) return { status: "skipped" };
    const stateDownloadTimeMs = msSince(started);
    started = performance.now();
    const state = await decompressLfcState(compressed);
    if (signal.aborted) return { status: "cancelled" };
    const uncompressTimeMs = msSince(started);
    log.info(`downloaded LFC state, uncompressed size ${state.length}`, { url: location.url });
    started = performance.now();
    const info = await loadLfcState(this.#ctx.connstr, state, signal);
    if (info === "cancelled") return { status: "cancelled" };
    return {
      status: "completed",
      total: info.total,
      prewarmed: info.prewarmed,
      skipped: info.skipped,
      state_download_time_ms: stateDownloadTimeMs,
      uncompress_time_ms: uncompressTimeMs,
      prewarm_time_ms: msSince(started),
    };
  }

  /** Starts an offload unless one is running: returns false then (HTTP 429). */
  startOffload(): boolean {
    if (this.#offload.status === "offloading") return false;
    this.#jobs.run(async () => {
      this.#offload = { status: "offloading" };
      lfcOffloads.inc();
      try {
        this.#offload = await this.#runOffload();
      } catch (error) {
        lfcOffloadErrors.inc();
        const message = errorMessage(error);
        log.error("could not offload LFC", { error: message });
        this.#offload = { status: "failed", error: message };
      }
    });
    return true;
  }

  async #runOffload(): Promise<LfcOffloadState> {
    const location = lfcStateLocation(this.#ctx.currentSpec());
    log.info("requesting LFC state from Postgres", { url: location.url });
    let started = performance.now();
    const state = await readLfcState(this.#ctx.connstr);
    if (state === null) {
      log.info("empty LFC state, not exporting", { url: location.url });
      return { status: "skipped" };
    }
    const stateQueryTimeMs = msSince(started);
    started = performance.now();
    const compressed = await compressLfcState(state);
    const compressTimeMs = msSince(started);
    started = performance.now();
    await uploadLfcState(location, compressed);
    return {
      status: "completed",
      state_query_time_ms: stateQueryTimeMs,
      compress_time_ms: compressTimeMs,
      state_upload_time_ms: msSince(started),
    };
  }
}

/** What {@link createLfc} needs from the compute. */
export interface LfcOwner {
  readonly settings: Pick<NodeSettings, "connstr">;
  readonly parsedSpec: ParsedSpec | null;
}

/** The LFC jobs of `compute`'s Postgres. */
export function createLfc(compute: LfcOwner): Lfc {
  return new Lfc({ currentSpec: () => compute.parsedSpec, connstr: compute.settings.connstr });
}
