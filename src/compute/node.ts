/**
 * @module
 * `ComputeNode`: one compute's lifecycle in one object. `run()` waits for a
 * spec, starts Postgres, keeps the monitor and configurator going while it
 * runs, and after it exits records the final LSN and returns the exit code.
 * The node owns what the compute starts: the Postgres process (a planned
 * restart, a promotion on vanilla storage, swaps the process `run()` watches
 * instead of ending the compute; see `postgres_supervisor.ts`), the background
 * tasks, the migrations, and the services the HTTP routes use (LFC, promotion,
 * extension server; see `services.ts`). `run()` stops each and waits for it
 * before it returns. The HTTP routes call the other public methods, one each.
 */

import { settlesWithin, sleep } from "../_async.ts";
import type { ComputeConfig } from "../api/config.ts";
import { formatLsn, type Lsn } from "../api/lsn.ts";
import { type ParsedSpec, parseSpec, staticLsn } from "../api/parsed_spec.ts";
import {
  type ComputeMetrics,
  type ComputeStatus,
  type ComputeStatusResponse,
  emptyComputeMetrics,
  type TerminateMode,
} from "../api/responses.ts";
import type { ComputeSpec } from "../api/spec.ts";
import { errorMessage, exitAfterLogs, getLogger } from "../log.ts";
import { assertSpecGranted, grantedConfig } from "../permissions/spec.ts";
import { spawnPostgres, waitForReady } from "../postgres/process.ts";
import { endOfRecoveryLsn, removeRecoverySignals } from "../postgres/promote.ts";
import { requestRefresh, specAdmission } from "./config_requests.ts";
import { loadComputeConfig } from "./config_source.ts";
import { reconfigure, runConfigurator } from "./configurator.ts";
import { ConfigurationFailedError } from "./errors.ts";
import {
  type CollectionInterval,
  DEFAULT_COLLECTION_INTERVAL_SECONDS,
  runInstalledExtensionsStats,
} from "./installed_extensions.ts";
import { type LsnLeaseLoop, startLsnLeaseLoop } from "./lsn_lease.ts";
import { runMonitor } from "./monitor.ts";
import { childEnv, writePostgresqlConf } from "./postgres_config.ts";
import { PostgresSupervisor } from "./postgres_supervisor.ts";
import {
  type ComputeServices,
  createComputeServices,
  type ServiceOwner,
  stopComputeServices,
} from "./services.ts";
import type { NodeSettings } from "./settings.ts";
import { startCompute } from "./startup.ts";
import { ComputeState } from "./state.ts";
import { syncSafekeepersOnShutdown } from "./sync_safekeepers.ts";
import type { TlsConfig } from "./tls.ts";
import {
  exitDelay,
  forwardTerminationSignal,
  requestTermination,
  type TerminateOutcome,
} from "./termination.ts";
import { announceWalSource, ensureSafekeeperHbaLines } from "./wal_source.ts";

const log = getLogger("compute");

/** How long to wait for the monitor and configurator to notice they were stopped. */
const BACKGROUND_STOP_TIMEOUT_MS = 1_000;
/** How long to wait for the services' running work (an upload, a download) at the end. */
const SERVICES_STOP_TIMEOUT_MS = 5_000;

/** Options beyond the settings: hooks tests and `main` may replace. */
export interface NodeHooks {
  /** Ends the process; default forwards termination to Postgres, then exits once the logs are written. */
  exitProcess?: (code: number) => void;
  /** Builds the services; default {@link createComputeServices}. */
  createServices?: (compute: ServiceOwner) => ComputeServices;
}

/** One compute: its state, its Postgres, and the operations the HTTP API offers. */
export class ComputeNode {
  readonly state = new ComputeState();
  readonly metrics: ComputeMetrics = emptyComputeMetrics();
  readonly settings: NodeSettings;
  /** The LFC jobs, the promotion and the extension server; `run()` stops them. */
  readonly services: ComputeServices;
  /** `compute_ctl_config.tls`: Postgres serves TLS with it when the spec asks for it. */
  readonly #tls: TlsConfig | null;
  /** The installed-extensions interval: the command line's, then each applied spec's. */
  readonly #extensionStats: CollectionInterval;
  #pspec: ParsedSpec | null = null;
  /** The spec the running Postgres was last configured for (its safekeepers were told). */
  #appliedSpec: ParsedSpec | null = null;
  readonly #postgres: PostgresSupervisor;
  /** Set once Postgres has exited for good: a `/terminate` then has nothing to wait for. */
  #postgresGone = false;
  /** The migrations the start-up began in the background; they never reject. */
  #migrations: Promise<void> | null = null;
  #flushLsn: Lsn | null = null;
  /** Where this compute's WAL begins (vanilla storage announces it to new safekeepers). */
  #startLsn: Lsn | null = null;
  #syncAbort = new AbortController();
  #lsnLeases: LsnLeaseLoop | null = null;
  #exitProcess: (code: number) => void;
  /** `/configure`'s admission: one spec at a time, checked before the status changes. */
  readonly #admitSpec = specAdmission({
    settings: () => this.settings,
    systemSession: (fn) => this.#postgres.maintenance.use(fn),
    state: this.state,
    postgresEnded: () => this.#postgres.ended,
    install: (pspec) => this.#setSpec(pspec),
  });

  /** Throws `SpecError` when `config.spec` is present but invalid. */
  constructor(settings: NodeSettings, config: ComputeConfig, hooks: NodeHooks = {}) {
    this.settings = settings;
    this.#postgres = new PostgresSupervisor(settings.connstr);
    this.#tls = config.compute_ctl_config.tls ?? null;
    this.#extensionStats = {
      seconds: settings.installedExtensionsCollectionIntervalSeconds ??
        DEFAULT_COLLECTION_INTERVAL_SECONDS,
    };
    if (config.spec != null) this.#setSpec(parseSpec(config.spec));
    this.#exitProcess = hooks.exitProcess ?? ((code) => {
      this.forwardTerminationSignal();
      void exitAfterLogs(code);
    });
    this.services = (hooks.createServices ?? createComputeServices)(this);
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
    forwardTerminationSignal({ postgres: this.#postgres.current, syncAbort: this.#syncAbort });
  }

  /**
   * The whole lifecycle; resolves with the process exit code: Postgres's own
   * code, 1 if it was killed by a signal or the start failed, 0 after a
   * compute terminated before it ever had a spec. Before it resolves, the
   * services are stopped and their work has ended (or, after a bounded wait,
   * is given up on with a warning).
   */
  async run(): Promise<number> {
    try {
      return await this.#lifecycle();
    } finally {
      await this.#postgres.maintenance.close();
      const stopped = stopComputeServices(this.services);
      if (!(await settlesWithin(stopped, SERVICES_STOP_TIMEOUT_MS))) {
        log.warn(`services still busy after ${SERVICES_STOP_TIMEOUT_MS} ms; not waiting longer`);
      }
    }
  }

  async #lifecycle(): Promise<number> {
    if (this.#pspec === null) {
      const ended = await this.#waitForSpec();
      if (ended !== null) return ended;
    }
    const pspec = this.#pspec!;
    this.#appliedSpec = pspec;
    this.state.transition("init");

    const background = new AbortController();
    const tasks = this.#startBackgroundTasks(background.signal);
    // Like Neon, leases are taken concurrently with the basebackup.
    this.#lsnLeases = this.#startLsnLeases(pspec, background.signal);

    const { postgres, started } = await startCompute({
      settings: this.settings,
      state: this.state,
      metrics: this.metrics,
      pspec,
      tls: this.#tls,
      tlsCertReady: this.services.tlsCertWatcher.start(this.#tls, background.signal),
      extensionStats: this.#extensionStats,
      onSpawn: (proc) => this.#postgres.started(proc),
      onStartLsn: (lsn) => this.#startLsn = lsn,
      onMigrationsStarted: (done) => this.#migrations = done,
      signal: this.#syncAbort.signal,
    });
    const startupFailed = !started;

    const exit = await this.#postgres.waitForFinalExit(postgres);
    background.abort();
    // A task stuck in a request to a dead Postgres or the control plane must not hold us up.
    if (!(await settlesWithin(tasks, BACKGROUND_STOP_TIMEOUT_MS))) {
      log.warn(`background tasks still running after ${BACKGROUND_STOP_TIMEOUT_MS} ms`);
    }
    await this.#lsnLeases?.stopped;
    this.#lsnLeases = null;
    await this.#migrations;

    const statusBeforeExit = await this.#cleanupAfterPostgresExit();
    const delayMs = exitDelay(statusBeforeExit, startupFailed, this.settings.exitDelayMs);
    log.info(`exiting in ${delayMs} ms`);
    await sleep(delayMs);
    if (startupFailed) return 1;
    return exit?.code ?? 1;
  }

  /** The monitor, the configurator and the extension statistics, until `signal` aborts. */
  #startBackgroundTasks(signal: AbortSignal): Promise<unknown> {
    const { settings } = this;
    return Promise.all([
      runMonitor({ connstr: settings.connstr, state: this.state }, signal),
      runConfigurator({
        state: this.state,
        currentSpec: () => this.#pspec!,
        replaceSpec: (next) => this.#setSpec(next),
        fetchConfig: () => loadComputeConfig(settings).then(grantedConfig),
        exitProcess: (code) => this.#exitProcess(code),
        reconfigure: (next, taskSignal) => this.#reconfigurePostgres(next, taskSignal),
        refreshBackoffMs: settings.refreshBackoffMs,
      }, signal),
      runInstalledExtensionsStats({
        connstr: settings.connstr,
        state: this.state,
        interval: this.#extensionStats,
        isPrimary: () => this.#pspec?.spec.mode === "Primary",
      }, signal),
    ].map((task) =>
      task.catch((error) => log.error("background task failed", { error: errorMessage(error) }))
    ));
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
    // Synchronously after reading the status: a later `/terminate` ends at once.
    this.#postgresGone = true;
    if (status === "termination_pending_fast" || status === "termination_pending_immediate") {
      this.state.transition("terminated", "postgres has stopped");
    }
    return status;
  }

  /**
   * `/configure`: validates the spec (`SpecError`), admits it (see
   * `specAdmission`: `empty`, `running` or `failed` after a reconfiguration,
   * else `InvalidStatusError`; checked against the running Postgres) and waits
   * until the compute is `running` (returns `/status`) or `failed`
   * ({@link ConfigurationFailedError}, also at once or while waiting once
   * Postgres has exited for good: the compute is ending).
   */
  async configure(spec: ComputeSpec): Promise<ComputeStatusResponse> {
    const pspec = parseSpec(spec);
    await assertSpecGranted(pspec);
    await this.#admitSpec(pspec);
    const outcome = await this.state.waitForStatus(["running", "failed"], this.#postgres.ended);
    if (outcome === "failed") {
      throw new ConfigurationFailedError(this.state.error ?? "unknown error");
    }
    return this.state.snapshot();
  }

  /** `/refresh_configuration`: see `requestRefresh`. */
  refreshConfiguration(): void {
    requestRefresh(this.state);
  }

  /** `/terminate`: see `requestTermination`. */
  terminate(mode: TerminateMode): Promise<TerminateOutcome> {
    return requestTermination({
      state: this.state,
      flushLsn: () => this.#flushLsn,
      forward: () => {
        if (this.#postgresGone) this.state.transition("terminated", "postgres had already stopped");
        else this.forwardTerminationSignal();
      },
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
   * When that fails, Postgres runs its previous configuration again, and the
   * previous spec is the node's again too.
   */
  async #reconfigurePostgres(pspec: ParsedSpec, signal: AbortSignal): Promise<void> {
    try {
      await reconfigure(this.settings, pspec, {
        previous: this.#appliedSpec ?? undefined,
        startLsn: this.#startLsn,
        signal,
        tls: this.#tls,
        extensionStats: this.#extensionStats,
        systemSession: this.#postgres.maintenance.use,
      });
    } catch (error) {
      if (this.#appliedSpec !== null && this.#pspec === pspec) this.#setSpec(this.#appliedSpec);
      throw error;
    }
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
    const { pgbin, pgdata } = settings;
    await this.#postgres.restart({
      prepare: async () => {
        await removeRecoverySignals(pgdata);
        const signal = this.#syncAbort.signal;
        await writePostgresqlConf(settings, pspec, { walQuorum: true, tls: this.#tls, signal });
        await ensureSafekeeperHbaLines(settings, pspec);
      },
      spawn: () => {
        const proc = spawnPostgres({ pgbin, pgdata, env: childEnv(pspec) });
        this.#appliedSpec = pspec;
        return proc;
      },
      waitForReady: (proc) => waitForReady(pgdata, proc),
      signal: this.#syncAbort.signal,
    });
    const startLsn = await endOfRecoveryLsn(settings.connstr);
    this.#startLsn = startLsn;
    log.info("postgres left recovery on timeline 1", { start_lsn: formatLsn(startLsn) });
    await announceWalSource(settings, pspec, startLsn, this.#syncAbort.signal);
  }

  /** `/metrics.json`: a copy of the start-up metrics. */
  metricsJson(): ComputeMetrics {
    return { ...this.metrics };
  }
}
