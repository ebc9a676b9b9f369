/**
 * @module
 * `ComputeNode`: one compute's lifecycle in one object. `run()` waits for a
 * spec, starts Postgres, keeps the monitor and configurator going while it
 * runs, and after it exits records the final LSN and returns the exit code.
 * The node owns the Postgres process: a planned restart (a promotion on
 * vanilla storage) swaps the process `run()` watches instead of ending the
 * compute. The HTTP routes call the other public methods, one each.
 */

import { sleep } from "../_async.ts";
import type { ComputeConfig } from "../api/config.ts";
import { formatLsn, type Lsn } from "../api/lsn.ts";
import { type ParsedSpec, parseSpec, staticLsn } from "../api/parsed_spec.ts";
import {
  type ComputeMetrics,
  type ComputeStatus,
  type ComputeStatusResponse,
  emptyComputeMetrics,
  statusDebug,
  type TerminateMode,
} from "../api/responses.ts";
import type { ComputeSpec } from "../api/spec.ts";
import { errorMessage, getLogger } from "../log.ts";
import { pagestreamRequestErrors } from "../metrics.ts";
import {
  describeExit,
  type ExitInfo,
  type PostgresProcess,
  spawnPostgres,
  waitForReady,
} from "../postgres/process.ts";
import { endOfRecoveryLsn, removeRecoverySignals } from "../postgres/promote.ts";
import { type ConfigSource, loadComputeConfig } from "./config_source.ts";
import { reconfigure, runConfigurator } from "./configurator.ts";
import { runInstalledExtensionsStats } from "./installed_extensions.ts";
import { type LsnLeaseLoop, startLsnLeaseLoop } from "./lsn_lease.ts";
import { runMonitor } from "./monitor.ts";
import { writePostgresqlConf } from "./postgres_config.ts";
import { announceWalSource, childEnv, ensureSafekeeperHbaLines, startCompute } from "./startup.ts";
import { ComputeState, InvalidStatusError } from "./state.ts";
import { syncSafekeepersOnShutdown } from "./sync_safekeepers.ts";
import {
  exitDelay,
  forwardTerminationSignal,
  requestTermination,
  type TerminateOutcome,
} from "./termination.ts";

const log = getLogger("compute");

/** How long to wait for the monitor and configurator to notice they were stopped. */
const BACKGROUND_STOP_TIMEOUT_MS = 1_000;

/** Everything the lifecycle needs to know from the command line and environment. */
export interface NodeSettings extends ConfigSource {
  pgbin: string;
  pgdata: string;
  /** `--connstr`, as a URL string. */
  connstr: string;
  privilegedRoleName: string;
  internalHttpPort: number;
  /** Linger after a fast termination or a failed start. */
  exitDelayMs: number;
  /** Basebackup retries (`NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES`, default 10). */
  basebackupRetries: number;
  /** The `FAILPOINTS` environment variable. */
  failpoints?: string;
  /** `compute_ctl_config.tls` is set. */
  tlsConfigured?: boolean;
  /** Delay between rate-limited refreshes (tests shorten it). */
  refreshBackoffMs?: number;
  /** Installed-extensions statistics interval (s); each applied spec replaces it. */
  installedExtensionsCollectionIntervalSeconds?: number;
}

/** `/refresh_configuration` in a status that does not allow it (HTTP 500). */
export class RefreshNotAllowedError extends Error {
  override name = "RefreshNotAllowedError";
}

/** `/configure` ended in `failed`; `detail` is the recorded error (HTTP 500). */
export class ConfigurationFailedError extends Error {
  override name = "ConfigurationFailedError";
  constructor(readonly detail: string) {
    super(`compute configuration failed: ${JSON.stringify(detail)}`);
  }
}

/** Options beyond the settings: hooks tests and `main` may replace. */
export interface NodeHooks {
  /** Ends the process; default forwards termination to Postgres, then `Deno.exit`. */
  exitProcess?: (code: number) => void;
}

/** One compute: its state, its Postgres, and the operations the HTTP API offers. */
export class ComputeNode {
  readonly state = new ComputeState();
  readonly metrics: ComputeMetrics = emptyComputeMetrics();
  readonly settings: NodeSettings;
  #pspec: ParsedSpec | null = null;
  /** The spec the running Postgres was last configured for (its safekeepers were told). */
  #appliedSpec: ParsedSpec | null = null;
  /** The Postgres `run()` watches; null before the start and once the compute ends. */
  #postgres: PostgresProcess | null = null;
  /** Settles when a running `#restartPostgres` has ended, either way. */
  #restarting: Promise<void> | null = null;
  #flushLsn: Lsn | null = null;
  /** Where this compute's WAL begins (vanilla storage announces it to new safekeepers). */
  #startLsn: Lsn | null = null;
  #syncAbort = new AbortController();
  #lsnLeases: LsnLeaseLoop | null = null;
  #exitProcess: (code: number) => void;

  /** Throws `SpecError` when `config.spec` is present but invalid. */
  constructor(settings: NodeSettings, config: ComputeConfig, hooks: NodeHooks = {}) {
    this.settings = settings;
    if (config.spec != null) this.#setSpec(parseSpec(config.spec));
    this.#exitProcess = hooks.exitProcess ?? ((code) => {
      this.forwardTerminationSignal();
      Deno.exit(code);
    });
  }

  /** The spec the compute runs (or will run), or null while it is empty. */
  get parsedSpec(): ParsedSpec | null {
    return this.#pspec;
  }

  #setSpec(pspec: ParsedSpec): void {
    this.#pspec = pspec;
    this.state.identity = { tenant: pspec.tenantId, timeline: pspec.timelineId };
    this.#lsnLeases?.notifySpecChanged();
  }

  /** Sends SIGTERM to a running sync-safekeepers and SIGINT to Postgres. */
  forwardTerminationSignal(): void {
    forwardTerminationSignal({ postgres: this.#postgres, syncAbort: this.#syncAbort });
  }

  /**
   * The whole lifecycle; resolves with the process exit code: Postgres's own
   * code, 1 if it was killed by a signal or the start failed, 0 after a
   * compute terminated before it ever had a spec.
   */
  async run(): Promise<number> {
    if (this.#pspec === null) {
      const ended = await this.#waitForSpec();
      if (ended !== null) return ended;
    }
    const pspec = this.#pspec!;
    this.#appliedSpec = pspec;
    this.state.transition("init");

    const background = new AbortController();
    const tasks = [
      runMonitor({ connstr: this.settings.connstr, state: this.state }, background.signal),
      runConfigurator({
        settings: this.settings,
        state: this.state,
        currentSpec: () => this.#pspec!,
        replaceSpec: (next) => this.#setSpec(next),
        fetchConfig: () => loadComputeConfig(this.settings),
        exitProcess: (code) => this.#exitProcess(code),
        reconfigure: (next, signal) => this.#reconfigurePostgres(next, signal),
        refreshBackoffMs: this.settings.refreshBackoffMs,
      }, background.signal),
      runInstalledExtensionsStats({
        connstr: this.settings.connstr,
        state: this.state,
        interval: this.settings,
        isPrimary: () => this.#pspec?.spec.mode === "Primary",
      }, background.signal),
    ].map((task) =>
      task.catch((error) => log.error("background task failed", { error: errorMessage(error) }))
    );
    // Like Neon, leases are taken concurrently with the basebackup.
    this.#lsnLeases = this.#startLsnLeases(pspec, background.signal);

    const { postgres, started } = await startCompute({
      settings: this.settings,
      state: this.state,
      metrics: this.metrics,
      pspec,
      onSpawn: (proc) => this.#postgres = proc,
      onStartLsn: (lsn) => this.#startLsn = lsn,
      signal: this.#syncAbort.signal,
    });
    const startupFailed = !started;

    const exit = postgres === null ? null : await this.#waitForPostgresExit(postgres);
    background.abort();
    // A task stuck in a request to a dead Postgres or the control plane must not hold us up.
    await Promise.race([Promise.all(tasks), sleep(BACKGROUND_STOP_TIMEOUT_MS)]);
    await this.#lsnLeases?.stopped;
    this.#lsnLeases = null;

    const statusBeforeExit = await this.#cleanupAfterPostgresExit();
    this.#terminateAtOnceFromNowOn();
    const delayMs = exitDelay(statusBeforeExit, startupFailed, this.settings.exitDelayMs);
    log.info(`exiting in ${delayMs} ms`);
    await sleep(delayMs);
    if (startupFailed) return 1;
    return exit?.code ?? 1;
  }

  /**
   * Resolves with the exit of the Postgres that ends the compute, and from then
   * on no restart can begin (`#postgres` is null). A process stopped by
   * `#restartPostgres` hands over to the one started in its place.
   */
  async #waitForPostgresExit(first: PostgresProcess): Promise<ExitInfo> {
    let watched = first;
    for (;;) {
      const exit = await watched.exited;
      while (this.#restarting !== null) await this.#restarting;
      const current = this.#postgres;
      if (current === null || current === watched) {
        // Synchronously after the checks: a restart starting later finds nothing to restart.
        this.#postgres = null;
        log.info(`postgres exited with ${describeExit(exit)}`);
        return exit;
      }
      log.info(`postgres ${watched.pid} was restarted as ${current.pid}`);
      watched = current;
    }
  }

  /** A Static compute's LSN lease loop, stopped by `signal`; null for the other modes. */
  #startLsnLeases(pspec: ParsedSpec, signal: AbortSignal): LsnLeaseLoop | null {
    const lsn = staticLsn(pspec.spec);
    if (lsn === undefined) return null;
    return startLsnLeaseLoop({
      tenantId: pspec.tenantId,
      timelineId: pspec.timelineId,
      lsn,
      currentSpec: () => this.#pspec,
      signal,
    });
  }

  /**
   * Waits in `empty` for `/configure` (then records the wait and restarts the
   * clock) or `/terminate` (then ends: returns the exit code). Null means "go on".
   */
  async #waitForSpec(): Promise<number | null> {
    log.info("no spec yet, waiting for /configure");
    const status = await this.state.waitForStatus([
      "configuration_pending",
      "termination_pending_fast",
      "termination_pending_immediate",
    ]);
    if (status !== "configuration_pending") {
      this.state.transition("terminated", "terminated before any spec arrived");
      await sleep(exitDelay(status, false, this.settings.exitDelayMs));
      return 0;
    }
    const now = new Date();
    this.metrics.wait_for_spec_ms = Math.max(0, now.getTime() - this.state.startTime.getTime());
    this.state.startTime = now;
    return null;
  }

  /**
   * After Postgres is gone: a primary asks the safekeepers for the final flush
   * LSN; a pending termination becomes `terminated`. Returns the status seen
   * before that move, which decides the exit delay.
   */
  async #cleanupAfterPostgresExit(): Promise<ComputeStatus> {
    // A replica promoted by a restart runs as a primary before its new spec is installed.
    const primary = [this.#pspec, this.#appliedSpec].find((p) => p?.spec.mode === "Primary");
    if (primary) this.#flushLsn = await syncSafekeepersOnShutdown(this.settings, primary);
    const status = this.state.status;
    if (status === "termination_pending_fast" || status === "termination_pending_immediate") {
      this.state.transition("terminated", "postgres has stopped");
    }
    return status;
  }

  /** Once Postgres is gone, a late `/terminate` has nothing to wait for. */
  #terminateAtOnceFromNowOn(): void {
    const pending: ComputeStatus[] = ["termination_pending_fast", "termination_pending_immediate"];
    this.state.waitForStatus(pending).then(() => {
      this.state.transition("terminated", "postgres had already stopped");
    });
  }

  /**
   * `/configure`: validates the spec (`SpecError`), requires `empty` or
   * `running` ({@link InvalidStatusError}), queues it and waits until the
   * compute is `running` (returns `/status`) or `failed`
   * ({@link ConfigurationFailedError}).
   */
  async configure(spec: ComputeSpec): Promise<ComputeStatusResponse> {
    const pspec = parseSpec(spec);
    const status = this.state.status;
    if (status !== "empty" && status !== "running") throw new InvalidStatusError(status);
    this.#setSpec(pspec);
    this.state.transition("configuration_pending", "new spec received");
    const outcome = await this.state.waitForStatus(["running", "failed"]);
    if (outcome === "failed") {
      throw new ConfigurationFailedError(this.state.error ?? "unknown error");
    }
    return this.state.snapshot();
  }

  /**
   * `/refresh_configuration`: counts the request, then from `running`, `failed`
   * or `refresh_configuration_pending` asks the configurator to refresh; in
   * `init` does nothing; otherwise throws {@link RefreshNotAllowedError}.
   */
  refreshConfiguration(): void {
    pagestreamRequestErrors.inc();
    const status = this.state.status;
    if (status === "init") return;
    if (
      status === "running" || status === "failed" || status === "refresh_configuration_pending"
    ) {
      this.state.transition("refresh_configuration_pending", "refresh requested");
      return;
    }
    throw new RefreshNotAllowedError(
      `Cannot refresh compute configuration in state ${statusDebug(status)}`,
    );
  }

  /** `/terminate`: see `requestTermination`. */
  terminate(mode: TerminateMode): Promise<TerminateOutcome> {
    return requestTermination({
      state: this.state,
      flushLsn: () => this.#flushLsn,
      forward: () => this.forwardTerminationSignal(),
    }, mode);
  }

  /** `/status`. */
  statusResponse(): ComputeStatusResponse {
    return this.state.snapshot();
  }

  /**
   * `/promote`'s last step, after Postgres was promoted: makes `pspec` (a
   * `Primary` spec) the compute's spec and reconfigures Postgres for it, as
   * `/configure` would, without a status change. Throws if that fails.
   */
  async installPromotedSpec(pspec: ParsedSpec): Promise<void> {
    this.#setSpec(pspec);
    await this.#reconfigurePostgres(pspec, this.#syncAbort.signal);
  }

  /**
   * Brings the running Postgres to `pspec` (see `reconfigure`), which from then
   * on is the spec it runs: the next one's safekeepers are compared with it.
   */
  async #reconfigurePostgres(pspec: ParsedSpec, signal: AbortSignal): Promise<void> {
    await reconfigure(this.settings, pspec, {
      previous: this.#appliedSpec ?? undefined,
      startLsn: this.#startLsn,
      signal,
    });
    this.#appliedSpec = pspec;
  }

  /**
   * Vanilla storage's promotion of a replayed standby (see `compute/promote.ts`):
   * restarts Postgres without its recovery signal files and with `pspec`'s
   * `postgresql.conf` (the safekeeper quorum included) and replication hba
   * lines. Crash recovery replays to the end of its WAL and timeline 1 goes on;
   * where it ended becomes the compute's start LSN, announced to a quorum of
   * the safekeepers, which open a new term there. Throws if a step fails or
   * the compute is terminated meanwhile.
   */
  async restartAsPrimary(pspec: ParsedSpec): Promise<void> {
    const { settings } = this;
    await this.#restartPostgres(pspec, async () => {
      await removeRecoverySignals(settings.pgdata);
      await writePostgresqlConf(settings, pspec, { walQuorum: true });
      await ensureSafekeeperHbaLines(settings, pspec);
    });
    const startLsn = await endOfRecoveryLsn(settings.connstr);
    this.#startLsn = startLsn;
    log.info("postgres left recovery on timeline 1", { start_lsn: formatLsn(startLsn) });
    await announceWalSource(settings, pspec, startLsn, this.#syncAbort.signal);
  }

  /**
   * Stops Postgres (fast shutdown, waiting for its exit), runs `prepare` on the
   * stopped data directory, and starts Postgres again with the settings of
   * `pspec`, resolving once it accepts connections. `run()` watches the new
   * process instead of ending the compute. A termination meanwhile stops
   * whichever process runs and makes this throw; so does a Postgres that does
   * not stop cleanly or does not start (the compute then ends).
   */
  async #restartPostgres(pspec: ParsedSpec, prepare: () => Promise<void>): Promise<void> {
    const old = this.#postgres;
    if (old === null) throw new Error("postgres is not running");
    if (this.#restarting !== null) throw new Error("postgres is already being restarted");
    const done = Promise.withResolvers<void>();
    this.#restarting = done.promise;
    const terminating = this.#syncAbort.signal;
    try {
      log.info("stopping postgres for a restart", { pid: old.pid });
      old.kill("SIGINT");
      const stopped = await old.exited;
      if (stopped.code !== 0) throw new Error(`postgres stopped with ${describeExit(stopped)}`);
      terminating.throwIfAborted();
      await prepare();
      // No await between the check and the swap: a termination either came before or sees it.
      terminating.throwIfAborted();
      const { pgbin, pgdata } = this.settings;
      const proc = spawnPostgres({ pgbin, pgdata, env: childEnv(pspec) });
      this.#postgres = proc;
      this.#appliedSpec = pspec;
      try {
        await waitForReady(pgdata, proc);
      } catch (error) {
        proc.kill("SIGQUIT");
        throw error;
      }
    } finally {
      this.#restarting = null;
      done.resolve();
    }
  }

  /** `/metrics.json`: a copy of the start-up metrics. */
  metricsJson(): ComputeMetrics {
    return { ...this.metrics };
  }
}
