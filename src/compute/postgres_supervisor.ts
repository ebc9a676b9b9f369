/**
 * @module
 * The compute's Postgres process as the node owns it: the one process the
 * lifecycle watches, which a planned restart (a promotion on vanilla storage)
 * swaps for a new one instead of ending the compute, and which is gone for
 * good once the compute's Postgres has exited: from then on no restart can
 * begin, and {@link PostgresSupervisor.ended} tells waiting work (a
 * `/configure`) that nothing will bring it to an end. It also owns the
 * maintenance session kept open to that Postgres, reset by a restart and
 * closed once Postgres has exited for good.
 */

import { getLogger } from "../log.ts";
import { type MaintenanceSession, maintenanceSession } from "../postgres/maintenance_session.ts";
import { describeExit, type ExitInfo, type PostgresProcess } from "../postgres/process.ts";
import { APPLY_APPLICATION_NAME } from "../postgres/spec_apply.ts";
import { ConfigurationFailedError } from "./errors.ts";

const log = getLogger("compute");

/** How {@link PostgresSupervisor.restart} stops, prepares and starts Postgres. */
export interface RestartSteps {
  /** Runs on the stopped data directory. */
  prepare(): Promise<void>;
  /** Starts the new postmaster. */
  spawn(): PostgresProcess;
  /** Resolves once `proc` accepts connections; throws if it does not. */
  waitForReady(proc: PostgresProcess): Promise<void>;
  /** Aborted when the compute is being terminated: the restart then throws. */
  signal: AbortSignal;
}

/** The Postgres process of one compute, across planned restarts. */
export class PostgresSupervisor {
  #current: PostgresProcess | null = null;
  /** Settles when a running {@link restart} has ended, either way. */
  #restarting: Promise<void> | null = null;
  readonly #ended = new AbortController();
  /**
   * The session on the system database that `/configure`'s check and each
   * reconfiguration share (see `maintenance_session.ts`).
   */
  readonly maintenance: MaintenanceSession;

  /** Supervises the Postgres that `connstr` reaches (nothing is opened yet). */
  constructor(connstr: string) {
    this.maintenance = maintenanceSession(connstr, { applicationName: APPLY_APPLICATION_NAME });
  }

  /**
   * Aborted once the compute's Postgres has exited for good or never started,
   * with a {@link ConfigurationFailedError} saying so: a configuration can
   * no longer succeed.
   */
  get ended(): AbortSignal {
    return this.#ended.signal;
  }

  /** The running process; null before the start and once the compute's Postgres has ended. */
  get current(): PostgresProcess | null {
    return this.#current;
  }

  /** Records the process the start-up spawned. */
  started(proc: PostgresProcess): void {
    this.#current = proc;
  }

  /**
   * Resolves with the exit of the Postgres that ends the compute (null at once
   * when the start-up spawned none), and from then on no restart can begin
   * ({@link current} is null), {@link ended} is aborted and the
   * {@link maintenance} session is closed. A process stopped by
   * {@link restart} hands over to the one started in its place.
   */
  async waitForFinalExit(first: PostgresProcess | null): Promise<ExitInfo | null> {
    if (first === null) {
      this.#ended.abort(new ConfigurationFailedError("postgres did not start"));
      await this.maintenance.close();
      return null;
    }
    let watched = first;
    for (;;) {
      const exit = await watched.exited;
      while (this.#restarting !== null) await this.#restarting;
      const current = this.#current;
      if (current === null || current === watched) {
        // Synchronously after the checks: a restart starting later finds nothing to restart.
        this.#current = null;
        log.info(`postgres exited with ${describeExit(exit)}`);
        this.#ended.abort(
          new ConfigurationFailedError(`postgres exited with ${describeExit(exit)}`),
        );
        await this.maintenance.close();
        return exit;
      }
      log.info(`postgres ${watched.pid} was restarted as ${current.pid}`);
      watched = current;
    }
  }

  /**
   * Stops Postgres (fast shutdown, waiting for its exit), ends the
   * {@link maintenance} session's connection to it, runs `prepare` on the
   * stopped data directory, and starts it again, resolving once it accepts
   * connections. A termination meanwhile (`signal`) makes this throw;
   * so does a Postgres that does not stop cleanly or does not start (the
   * compute then ends).
   */
  async restart(steps: RestartSteps): Promise<void> {
    const old = this.#current;
    if (old === null) throw new Error("postgres is not running");
    if (this.#restarting !== null) throw new Error("postgres is already being restarted");
    const done = Promise.withResolvers<void>();
    this.#restarting = done.promise;
    try {
      log.info("stopping postgres for a restart", { pid: old.pid });
      old.kill("SIGINT");
      const stopped = await old.exited;
      await this.maintenance.reset();
      if (stopped.code !== 0) throw new Error(`postgres stopped with ${describeExit(stopped)}`);
      steps.signal.throwIfAborted();
      await steps.prepare();
      // No await between the check and the swap: a termination either came before or sees it.
      steps.signal.throwIfAborted();
      const proc = steps.spawn();
      this.#current = proc;
      try {
        await steps.waitForReady(proc);
      } catch (error) {
        proc.kill("SIGQUIT");
        throw error;
      }
    } finally {
      this.#restarting = null;
      done.resolve();
    }
  }
}
