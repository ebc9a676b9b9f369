/**
 * @module
 * The compute's extension server (`POST /extension_server/<file>` on the
 * internal port, called by the Neon extension when Postgres misses a control
 * file or a library): check that remote extensions are configured and that the
 * spec lets this compute have the file's extension, then download and install
 * its archive once. Concurrent requests for one archive share one download;
 * an archive that was installed is not fetched again; a failed download is
 * tried again by the next request.
 */

import { TaskGroup } from "../_async.ts";
import type { ParsedSpec } from "../api/parsed_spec.ts";
import {
  type ArchiveTarget,
  goArch,
  RemoteExtensionNotFoundError,
  remoteExtensionPath,
  resolveRemoteExtension,
} from "../api/remote_extensions.ts";
import { errorMessage, getLogger } from "../log.ts";
import { buildTag, remoteExtRequests } from "../metrics.ts";
import type { InstallDirs } from "../postgres/install_layout.ts";
import { installDirs } from "../postgres/pg_config.ts";
import { type PgMajor, pgMajorLabel, postgresMajor } from "../postgres/pg_version.ts";
import {
  downloadExtension,
  type ExtensionDownloadRequest,
  type ExtensionInstallResult,
} from "../storage/extension_store.ts";
import type { NodeSettings } from "./settings.ts";

const log = getLogger("extension_server");

/** Why a request was refused; the route turns each into its status code. */
export type ExtensionServerErrorKind =
  /** No `--remote-ext-base-url` (412). */
  | "not_configured"
  /** No spec has arrived yet (412; Neon panics). */
  | "no_spec"
  /** The spec has no `remote_extensions` (409). */
  | "no_remote_extensions"
  /** The file maps to no extension this compute may have (404). */
  | "not_found"
  /** The download or install failed (500). */
  | "download_failed";

/** A refused or failed extension request, with Neon's message. */
export class ExtensionServerError extends Error {
  override name = "ExtensionServerError";
  constructor(readonly kind: ExtensionServerErrorKind, message: string) {
    super(message);
  }
}

/**
 * Runs one task per key at a time: callers arriving while it runs get its
 * result; after a success the key is done and later calls return at once;
 * after a failure the next call runs the task again.
 */
export class KeyedSingleFlight {
  #running = new Map<string, Promise<void>>();
  #done = new Set<string>();

  /** Whether `key` has completed successfully. */
  isDone(key: string): boolean {
    return this.#done.has(key);
  }

  /** Resolves when `key`'s task (started here or by an earlier caller) succeeded. */
  run(key: string, task: () => Promise<void>): Promise<void> {
    if (this.#done.has(key)) return Promise.resolve();
    const running = this.#running.get(key);
    if (running !== undefined) return running;
    const started = (async () => {
      try {
        await task();
        this.#done.add(key);
      } finally {
        this.#running.delete(key);
      }
    })();
    this.#running.set(key, started);
    return started;
  }
}

/** What {@link ExtensionServer} needs. */
export interface ExtensionServerOptions {
  /** `--remote-ext-base-url` (ending in `/`); undefined when remote extensions are off. */
  baseUrl?: string;
  /**
   * `--pgbin`: its `--version` says the major the archives are built for;
   * `pg_config` beside it, or else the install's layout, where they go.
   */
  pgbin: string;
  /** The spec in force, or null before one arrived. */
  currentSpec: () => ParsedSpec | null;
  /** Default: `BUILD_TAG` or `latest`. */
  buildTag?: string;
  /** Default: this machine's, in Go's naming. */
  arch?: string;
  /** Replaceable for tests. */
  pgMajor?: (pgbin: string) => Promise<PgMajor>;
  /** Replaceable for tests. */
  installDirs?: (pgbin: string) => Promise<InstallDirs>;
  /** Replaceable for tests. */
  download?: (request: ExtensionDownloadRequest) => Promise<ExtensionInstallResult>;
}

/** What the archives are chosen by and installed into. */
interface PgInstall {
  major: PgMajor;
  dirs: InstallDirs;
}

/** Serves extension downloads for one compute. */
export class ExtensionServer {
  readonly #options: ExtensionServerOptions;
  readonly #downloads = new KeyedSingleFlight();
  readonly #requests = new TaskGroup("extension server");
  #install: Promise<PgInstall> | undefined;

  constructor(options: ExtensionServerOptions) {
    this.#options = options;
  }

  /** The install's major and directories, asked once (a failure is asked again next time). */
  #pgInstall(): Promise<PgInstall> {
    const { pgbin } = this.#options;
    const major = this.#options.pgMajor ?? postgresMajor;
    const dirs = this.#options.installDirs ?? installDirs;
    this.#install ??= (async () => ({ major: await major(pgbin), dirs: await dirs(pgbin) }))()
      .catch((error) => {
        this.#install = undefined;
        throw error;
      });
    return this.#install;
  }

  /**
   * Makes `filename` (an extension name, or a library file with `isLibrary`)
   * available to Postgres. Resolves once its archive is installed; throws
   * {@link ExtensionServerError}, checks in Neon's order: storage configured,
   * spec present, `remote_extensions` present, extension allowed, download.
   * After {@link stop} it rejects with `TaskGroupClosedError`.
   */
  async download(filename: string, isLibrary: boolean): Promise<void> {
    await this.#requests.run(() => this.#download(filename, isLibrary));
  }

  /** Shutdown: refuses new requests and resolves when the running downloads have ended. */
  async stop(): Promise<void> {
    await this.#requests.close();
  }

  async #download(filename: string, isLibrary: boolean): Promise<void> {
    const { baseUrl } = this.#options;
    if (baseUrl === undefined) {
      throw new ExtensionServerError("not_configured", "remote storage is not configured");
    }
    const pspec = this.#options.currentSpec();
    if (pspec === null) {
      throw new ExtensionServerError(
        "no_spec",
        "the compute has no spec yet, so no remote extensions are known",
      );
    }
    const remote = pspec.spec.remote_extensions;
    if (remote == null) {
      throw new ExtensionServerError(
        "no_remote_extensions",
        "information about remote extensions is unavailable",
      );
    }
    let extension: string;
    try {
      extension = resolveRemoteExtension(remote, filename, isLibrary);
    } catch (error) {
      if (!(error instanceof RemoteExtensionNotFoundError)) throw error;
      log.warn(`extension download failed to find extension: ${error.message}`);
      throw new ExtensionServerError("not_found", error.message);
    }
    try {
      const install = await this.#pgInstall();
      const target: ArchiveTarget = {
        buildTag: this.#options.buildTag ?? buildTag(),
        arch: this.#options.arch ?? goArch(),
        pgMajor: pgMajorLabel(install.major),
      };
      const path = remoteExtensionPath(target, extension);
      if (this.#downloads.isDone(path)) {
        log.info("extension already downloaded, skipping re-download", { extension });
      }
      await this.#downloads.run(path, async () => {
        await (this.#options.download ?? downloadExtension)({
          extension,
          baseUrl,
          path,
          dirs: install.dirs,
          onAttempt: (httpStatus, file) =>
            remoteExtRequests.inc({ http_status: httpStatus, filename: file }),
        });
      });
    } catch (error) {
      log.error("extension download failed", { extension, error: errorMessage(error) });
      throw new ExtensionServerError(
        "download_failed",
        `Failed to download a remote file: ${errorMessage(error)}`,
      );
    }
  }
}

/** What {@link createExtensionServer} needs from the compute. */
export interface ExtensionServerOwner {
  readonly settings: Pick<NodeSettings, "pgbin" | "remoteExtBaseUrl">;
  readonly parsedSpec: ParsedSpec | null;
}

/** The extension server of `compute`, off unless `--remote-ext-base-url` was given. */
export function createExtensionServer(compute: ExtensionServerOwner): ExtensionServer {
  return new ExtensionServer({
    baseUrl: compute.settings.remoteExtBaseUrl,
    pgbin: compute.settings.pgbin,
    currentSpec: () => compute.parsedSpec,
  });
}
