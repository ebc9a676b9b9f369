/**
 * @module
 * The TLS certificate watcher (reference neon-01 §4.8): hashes the file at
 * `compute_ctl_config.tls.cert_path` (SHA-256) until it can, then every
 * interval (60 s by default), and asks for a reconfiguration, which copies the
 * key pair into PGDATA again and reloads Postgres, the first time it sees the
 * compute `running` and after each change of the digest. The request is
 * Neon's: `running → configuration_pending`, which the configurator picks up.
 * While the compute starts up, is being configured or refreshed, or has
 * `failed` (a failed reconfiguration leaves Postgres running, and a later
 * `/configure` may bring it back), the watcher waits; once the compute is
 * terminating, or Postgres has exited (the owner's signal), it ends. Neon's
 * watcher also ends on `failed`, from which Neon has no way back.
 */

import { sleep } from "../_async.ts";
import type { ComputeStatus } from "../api/responses.ts";
import { errorMessage, getLogger } from "../log.ts";
import type { NodeSettings } from "./settings.ts";
import type { ComputeState } from "./state.ts";
import type { TlsConfig } from "./tls.ts";

const log = getLogger("tls_watcher");

/** How often the certificate is hashed again (reference: 60 s; renewals are daily). */
export const CERT_CHECK_INTERVAL_MS = 60_000;
/** How soon an unreadable certificate is tried again (reference: 1 s). */
export const CERT_READ_RETRY_MS = 1_000;

/** The statuses the watcher ends in. */
const FINAL_STATUSES: readonly ComputeStatus[] = [
  "termination_pending_fast",
  "termination_pending_immediate",
  "terminated",
];
/** The statuses in which a reconfiguration can be (or already is) requested. */
const REQUEST_STATUSES: readonly ComputeStatus[] = ["running", "configuration_pending"];

/** Options of {@link startTlsCertWatcher}. */
export interface TlsCertWatcherOptions {
  /** `compute_ctl_config.tls.cert_path`. */
  certPath: string;
  state: ComputeState;
  /** Stops the watcher (Postgres has exited, or the compute is terminating). */
  signal: AbortSignal;
  /** Default {@link CERT_CHECK_INTERVAL_MS}. */
  intervalMs?: number;
  /** Default {@link CERT_READ_RETRY_MS}. */
  retryMs?: number;
}

/** A started watcher. */
export interface TlsCertWatcher {
  /**
   * Resolves once the certificate could be read and hashed (start-up waits for
   * it before Postgres starts); rejects only when the signal aborts first.
   */
  readonly ready: Promise<void>;
  /** Resolves (never rejects) once the watcher has ended. */
  readonly stopped: Promise<void>;
}

/** The watcher as one of the compute's services: the start-up starts it, the node stops it. */
export interface TlsCertWatcherService {
  /**
   * Starts watching `tls.cert_path` until `signal` aborts or {@link stop} is
   * called, and returns {@link TlsCertWatcher.ready}. With `tls` null there is
   * nothing to watch: resolves at once. Rejects when the watcher already runs
   * or the service was stopped.
   */
  start(tls: TlsConfig | null, signal: AbortSignal): Promise<void>;
  /** Stops the watcher and resolves once it has ended. */
  stop(): Promise<void>;
}

/** What the watcher service needs from the compute. */
export interface TlsCertWatcherOwner {
  readonly state: ComputeState;
  readonly settings: Pick<NodeSettings, "tlsCertCheckIntervalMs">;
}

/** The TLS certificate watcher of `owner`; nothing runs until {@link TlsCertWatcherService.start}. */
export function createTlsCertWatcher(owner: TlsCertWatcherOwner): TlsCertWatcherService {
  const stopping = new AbortController();
  let running: TlsCertWatcher | null = null;
  return {
    start(tls, signal) {
      if (stopping.signal.aborted) {
        return Promise.reject(new Error("TLS certificate watcher: the compute is shutting down"));
      }
      if (tls === null) return Promise.resolve();
      if (running !== null) {
        return Promise.reject(new Error("the TLS certificate watcher is already running"));
      }
      running = startTlsCertWatcher({
        certPath: tls.cert_path,
        state: owner.state,
        signal: AbortSignal.any([signal, stopping.signal]),
        intervalMs: owner.settings.tlsCertCheckIntervalMs,
      });
      return running.ready;
    },
    async stop() {
      stopping.abort(new Error("the compute is shutting down"));
      await running?.stopped;
    },
  };
}

/** The SHA-256 of the file at `path`, in hex. Throws when it cannot be read. */
export async function fileDigest(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * The digest of `path`, trying again every `retryMs` until the file can be
 * read (each failure logged as an error). Rejects only when `signal` aborts.
 */
export async function fileDigestWhenReadable(
  path: string,
  retryMs: number,
  signal: AbortSignal,
): Promise<string> {
  for (;;) {
    signal.throwIfAborted();
    try {
      return await fileDigest(path);
    } catch (error) {
      log.error("could not read the TLS certificate", { path, error: errorMessage(error) });
    }
    await sleep(retryMs, signal);
  }
}

/**
 * Starts watching `certPath`: hashes it until it can ({@link TlsCertWatcher.ready}),
 * then requests a reconfiguration as described in the module comment until the
 * compute terminates, or `signal` aborts.
 */
export function startTlsCertWatcher(options: TlsCertWatcherOptions): TlsCertWatcher {
  const { certPath, signal, retryMs = CERT_READ_RETRY_MS } = options;
  const first = fileDigestWhenReadable(certPath, retryMs, signal);
  const stopped = first
    .then((digest) => watch(options, digest))
    .catch((error) => {
      if (!signal.aborted) {
        log.error("TLS certificate watcher failed", { error: errorMessage(error) });
      }
    });
  const ready = first.then(() => {});
  ready.catch(() => {}); // An abort is the owner's doing; whoever awaits `ready` still sees it.
  return { ready, stopped };
}

async function watch(options: TlsCertWatcherOptions, initialDigest: string): Promise<void> {
  const { certPath, state, signal } = options;
  const intervalMs = options.intervalMs ?? CERT_CHECK_INTERVAL_MS;
  const retryMs = options.retryMs ?? CERT_READ_RETRY_MS;
  let digest = initialDigest;
  let reason = "TLS certificate watcher started";
  log.info("watching the TLS certificate", {
    path: certPath,
    sha256: digest,
    interval_ms: intervalMs,
  });
  for (;;) {
    if (!(await requestReconfiguration(state, reason, signal))) return;
    const next = await nextDigest(state, certPath, digest, { intervalMs, retryMs, signal });
    if (next === null) return;
    digest = next;
    log.info("the TLS certificate changed", { path: certPath, sha256: digest });
    reason = "TLS certificate changed";
  }
}

/**
 * Waits until the compute is `running` (then moves it to
 * `configuration_pending`) or already `configuration_pending`. Returns false
 * when the compute is terminating instead.
 */
async function requestReconfiguration(
  state: ComputeState,
  reason: string,
  signal: AbortSignal,
): Promise<boolean> {
  for (;;) {
    const seen = await state.waitForStatus([...REQUEST_STATUSES, ...FINAL_STATUSES], signal);
    if (FINAL_STATUSES.includes(seen)) return false;
    // The status may have moved on since the waiter was woken: act on the current one.
    if (state.status === "running") state.transition("configuration_pending", reason);
    if (state.status === "configuration_pending") return true;
  }
}

/**
 * Hashes `path` every `intervalMs` until its digest differs from `digest` and
 * returns the new one, or null as soon as the compute is terminating.
 */
async function nextDigest(
  state: ComputeState,
  path: string,
  digest: string,
  { intervalMs, retryMs, signal }: { intervalMs: number; retryMs: number; signal: AbortSignal },
): Promise<string | null> {
  const scope = new AbortController();
  const scoped = AbortSignal.any([signal, scope.signal]);
  const changed = async () => {
    for (;;) {
      await sleep(intervalMs, scoped);
      const next = await fileDigestWhenReadable(path, retryMs, scoped);
      if (next !== digest) return next;
    }
  };
  try {
    return await Promise.race([
      changed(),
      state.waitForStatus(FINAL_STATUSES, scoped).then(() => null),
    ]);
  } finally {
    scope.abort();
  }
}
