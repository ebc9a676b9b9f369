/**
 * @module
 * The configuration steps start-up and reconfigure share: rendering
 * `postgresql.conf` into PGDATA (with the TLS key pair copied beside it when
 * Postgres serves TLS), the environment Postgres runs in, running
 * catalog changes with the project size limit lifted
 * (`neon.max_cluster_size=-1` in the temporary override file, reloaded in and
 * out), and telling whether the storage runs in vanilla mode.
 */

import type { ParsedSpec } from "../api/parsed_spec.ts";
import { renderPostgresqlConf } from "../postgres/conf.ts";
import { replaceFile, withTempOverride } from "../postgres/files.ts";
import { readOvercommitMemory } from "../postgres/overcommit.ts";
import { reloadPostgres, supportsSyncSafekeepers } from "../postgres/process.ts";
import type { NodeSettings } from "./settings.ts";
import { activeTls, installKeyPairWhenValid, type TlsConfig } from "./tls.ts";

/** The environment of the compute's Postgres: the storage token as `NEON_AUTH_TOKEN`. */
export function childEnv(pspec: ParsedSpec): Record<string, string> {
  const token = pspec.spec.storage_auth_token;
  return token ? { NEON_AUTH_TOKEN: token } : {};
}

/** The override every catalog apply runs under, so size limits cannot block it. */
export const CLUSTER_SIZE_OVERRIDE = "neon.max_cluster_size=-1";

/** What `postgresql.conf` is rendered from besides the spec. */
export type ConfSettings = Pick<
  NodeSettings,
  "pgbin" | "pgdata" | "privilegedRoleName" | "internalHttpPort"
>;

/** Options of {@link writePostgresqlConf}. */
export interface WriteConfOptions {
  /** Whether commits wait for the safekeepers on vanilla storage (default true). */
  walQuorum?: boolean;
  /**
   * `compute_ctl_config.tls`: when the spec has `tls_experimental`, Postgres
   * serves TLS with this key pair, copied into PGDATA first.
   */
  tls?: TlsConfig | null;
  /** Stops the wait for a usable TLS key pair (the compute is terminating). */
  signal?: AbortSignal;
}

/**
 * Writes `<pgdata>/postgresql.conf` for `pspec`, replacing the previous file
 * unless it already holds exactly that text.
 * A binary without `--sync-safekeepers` (vanilla Postgres) gets the vanilla
 * storage line (`synchronous_standby_names` naming the safekeepers) unless
 * `walQuorum` is false: a promoted replica's WAL is on timeline 2, which the
 * safekeepers cannot follow, so it must not wait for them. When Postgres
 * serves TLS, the key pair is installed first, waiting (retried every second)
 * until the files hold a matching pair; only `signal` ends that wait early.
 */
export async function writePostgresqlConf(
  settings: ConfSettings,
  pspec: ParsedSpec,
  { walQuorum = true, tls, signal }: WriteConfOptions = {},
): Promise<void> {
  const served = activeTls(pspec.spec, tls);
  if (served !== null) await installKeyPairWhenValid(served, settings.pgdata, { signal });
  const text = renderPostgresqlConf(pspec, {
    privilegedRoleName: settings.privilegedRoleName,
    internalHttpPort: settings.internalHttpPort,
    overcommitMemory: await readOvercommitMemory(),
    tls: served !== null,
    vanillaStorage: walQuorum && await isVanillaStorage(settings),
  });
  const path = `${settings.pgdata}/postgresql.conf`;
  // A reconfiguration that changes no setting leaves the file as it is.
  if (await Deno.readTextFile(path).catch(() => null) === text) return;
  await replaceFile(path, text);
}

/**
 * True when `--pgbin` lacks `--sync-safekeepers` (vanilla Postgres): then the
 * safekeepers pull WAL as streaming-replication clients, named in
 * `synchronous_standby_names`, instead of the walproposer pushing it.
 */
export async function isVanillaStorage(
  settings: Pick<NodeSettings, "pgbin">,
): Promise<boolean> {
  return !(await supportsSyncSafekeepers(settings.pgbin));
}

/**
 * Writes the size-limit override, reloads Postgres, runs `fn`, then empties the
 * override and reloads again (also when `fn` fails). Returns what `fn` returned.
 */
export async function withClusterSizeOverride<T>(
  settings: Pick<NodeSettings, "pgbin" | "pgdata">,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await withTempOverride(settings.pgdata, CLUSTER_SIZE_OVERRIDE, async () => {
      await reloadPostgres(settings.pgbin, settings.pgdata);
      return await fn();
    });
  } finally {
    await reloadPostgres(settings.pgbin, settings.pgdata);
  }
}
