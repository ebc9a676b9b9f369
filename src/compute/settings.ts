/**
 * @module
 * The compute's settings: what the command line and the environment fixed at
 * start, read-only for the whole run. What else the compute learns (whether
 * TLS is configured, once the config is loaded) or changes (the
 * installed-extensions interval, with every applied spec) is the node's
 * state, not settings. Each phase takes only the fields it uses
 * (`Pick<NodeSettings, …>`).
 */

import type { CliOptions } from "../cli.ts";

/** Basebackup retries when `NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES` is unset (11 attempts). */
export const DEFAULT_BASEBACKUP_RETRIES = 10;

/** Everything the lifecycle needs to know from the command line and environment. */
export interface NodeSettings {
  /** `--pgbin`. */
  readonly pgbin: string;
  /** `--pgdata`. */
  readonly pgdata: string;
  /** `--connstr`, as a URL string. */
  readonly connstr: string;
  /** `--privileged-role-name`. */
  readonly privilegedRoleName: string;
  /** `--internal-http-port` (also `neon.extension_server_port`). */
  readonly internalHttpPort: number;
  /** Linger after a fast termination or a failed start (`--exit-delay-ms`). */
  readonly exitDelayMs: number;
  /** Basebackup retries (`NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES`, default 10). */
  readonly basebackupRetries: number;
  /** `--compute-id`: the control plane's name for this compute. */
  readonly computeId: string;
  /** `--config`: a JSON file holding `{spec, compute_ctl_config}`. */
  readonly configPath?: string;
  /** `--control-plane-uri`. */
  readonly controlPlaneUri?: string;
  /** `NEON_CONTROL_PLANE_TOKEN`. */
  readonly controlPlaneToken?: string;
  /** The `FAILPOINTS` environment variable. */
  readonly failpoints?: string;
  /** `--remote-ext-base-url` (ending in `/`); undefined when remote extensions are off. */
  readonly remoteExtBaseUrl?: string;
  /** `--installed-extensions-collection-interval`: the first interval (s); specs replace it. */
  readonly installedExtensionsCollectionIntervalSeconds?: number;
  /** How often the TLS certificate watcher hashes the certificate (`--tls-cert-check-interval-ms`). */
  readonly tlsCertCheckIntervalMs?: number;
  /** Delay between rate-limited refreshes (tests shorten it). */
  readonly refreshBackoffMs?: number;
}

/** The environment variables the settings read. */
export type SettingsEnv = Readonly<
  Record<
    "NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES" | "FAILPOINTS" | "NEON_CONTROL_PLANE_TOKEN",
    string | undefined
  >
>;

/** The retries `NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES` asks for; throws naming a bad value. */
export function basebackupRetries(text: string | undefined): number {
  if (text === undefined) return DEFAULT_BASEBACKUP_RETRIES;
  if (!/^\d+$/.test(text)) {
    throw new Error(`NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES must be a number, got ${text}`);
  }
  return Number(text);
}

/**
 * The settings of a compute started with `cli` in `env`, frozen. Throws when
 * an environment variable has a value the compute cannot use.
 */
export function nodeSettings(cli: CliOptions, env: SettingsEnv): NodeSettings {
  return Object.freeze({
    pgbin: cli.pgbin,
    pgdata: cli.pgdata,
    connstr: cli.connstr.href,
    privilegedRoleName: cli.privilegedRoleName,
    internalHttpPort: cli.internalHttpPort,
    exitDelayMs: cli.exitDelayMs,
    tlsCertCheckIntervalMs: cli.tlsCertCheckIntervalMs,
    basebackupRetries: basebackupRetries(env.NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES),
    computeId: cli.computeId,
    configPath: cli.config,
    controlPlaneUri: cli.controlPlaneUri,
    controlPlaneToken: env.NEON_CONTROL_PLANE_TOKEN,
    failpoints: env.FAILPOINTS,
    remoteExtBaseUrl: cli.remoteExtBaseUrl,
    installedExtensionsCollectionIntervalSeconds: cli.installedExtensionsCollectionIntervalSeconds,
  });
}
