/**
 * @module
 * The configurator: the background loop that applies a spec pushed with
 * `/configure` (`configuration_pending → configuration → running | failed`) and
 * answers refresh requests (`refresh_configuration_pending →
 * refresh_configuration`): re-read the config, and reconfigure only when the
 * pageserver connection info changed. A failed refresh waits for the next
 * request; a control plane that has no spec for us any more ends the process.
 * On vanilla storage a primary whose set of safekeepers changed tells the new
 * set where to pull its WAL from before any catalog change commits.
 */

import { sleep } from "../_async.ts";
import type { ComputeConfig } from "../api/config.ts";
import type { Lsn } from "../api/lsn.ts";
import { type ParsedSpec, parseSpec, samePageserverConnInfo } from "../api/parsed_spec.ts";
import { errorMessage, getLogger } from "../log.ts";
import { reloadPostgres } from "../postgres/process.ts";
import { applySpec, concurrencyForReconfigure } from "../postgres/spec_apply.ts";
import { type CollectionInterval, updateCollectionInterval } from "./installed_extensions.ts";
import {
  isVanillaStorage,
  withClusterSizeOverride,
  writePostgresqlConf,
} from "./postgres_config.ts";
import type { NodeSettings } from "./settings.ts";
import type { ComputeState } from "./state.ts";
import { announceWalSource, ensureSafekeeperHbaLines } from "./wal_source.ts";

const log = getLogger("configurator");

/** How long after an unchanged or failed refresh the next one may start (reference: 5 s). */
export const REFRESH_BACKOFF_MS = 5_000;

/** What the configurator needs from the node. */
export interface ConfiguratorContext {
  state: ComputeState;
  /** The spec in force. */
  currentSpec(): ParsedSpec;
  /** Installs a new spec (refresh with changed pageserver info). */
  replaceSpec(pspec: ParsedSpec): void;
  /** Fetches the config anew: `--config` file or control plane. */
  fetchConfig(): Promise<ComputeConfig>;
  /** Ends the process (the control plane no longer knows this compute). */
  exitProcess(code: number): void;
  /**
   * Brings the running Postgres to `pspec` ({@link reconfigure} with what the
   * node knows: the spec Postgres runs now, and where its WAL history begins).
   */
  reconfigure(pspec: ParsedSpec, signal: AbortSignal): Promise<void>;
  refreshBackoffMs?: number;
}

/** What {@link reconfigure} needs to know about the running compute besides the new spec. */
export interface ReconfigureOptions {
  /** The spec Postgres ran before; absent means unknown (the safekeepers are told again). */
  previous?: ParsedSpec;
  /**
   * Where this compute's WAL history on the safekeepers begins: a primary's
   * start LSN, or where a replica promoted by a restart left recovery. Null or
   * absent when it has none (a standby, or Neon's in-place promotion).
   */
  startLsn?: Lsn | null;
  /** Aborts the wait for the safekeepers. */
  signal?: AbortSignal;
  /** `compute_ctl_config.tls` is set. */
  tls?: boolean;
  /** The installed-extensions interval, which `pspec` replaces. */
  extensionStats?: CollectionInterval;
}

/** The settings a reconfiguration uses. */
export type ReconfigureSettings = Pick<
  NodeSettings,
  "pgbin" | "pgdata" | "connstr" | "privilegedRoleName" | "internalHttpPort"
>;

/**
 * Brings a running Postgres to `pspec` without a restart: rewrite
 * `postgresql.conf` (on vanilla storage, for a primary whose safekeeper set
 * changed, also `pg_hba.conf`), reload, tell the new safekeepers where to pull
 * WAL from (see {@link walSourceChanged}), and unless `skip_pg_catalog_updates`
 * apply the catalog (primary only) under the size-limit override with
 * `reconfigure_concurrency` (default 1).
 */
export async function reconfigure(
  settings: ReconfigureSettings,
  pspec: ParsedSpec,
  options: ReconfigureOptions = {},
): Promise<void> {
  const spec = pspec.spec;
  if (options.extensionStats) updateCollectionInterval(options.extensionStats, spec);
  // Only a compute with a WAL history of its own on timeline 1 waits for the safekeepers.
  const walQuorum = options.startLsn != null;
  const announce = walQuorum && walSourceChanged(options.previous, pspec) &&
    await isVanillaStorage(settings);
  await writePostgresqlConf(settings, pspec, { walQuorum, tls: options.tls });
  if (announce) await ensureSafekeeperHbaLines(settings, pspec);
  await reloadPostgres(settings.pgbin, settings.pgdata);
  if (announce) await announceWalSource(settings, pspec, options.startLsn!, options.signal);
  if (!spec.skip_pg_catalog_updates) {
    await withClusterSizeOverride(settings, async () => {
      if (spec.mode !== "Primary") return;
      await applySpec(settings.connstr, spec, {
        concurrency: concurrencyForReconfigure(spec),
        privilegedRoleName: settings.privilegedRoleName,
      });
    });
  }
  log.info("finished reconfiguration", { operation_uuid: spec.operation_uuid ?? null });
}

/**
 * Whether a vanilla-storage primary must announce itself to its safekeepers
 * again: it runs as a primary with safekeepers, and before it was not a
 * primary, or its safekeepers were a different set (a new order is no change).
 */
export function walSourceChanged(previous: ParsedSpec | undefined, next: ParsedSpec): boolean {
  if (next.spec.mode !== "Primary" || next.safekeeperConnstrings.length === 0) return false;
  if (previous === undefined || previous.spec.mode !== "Primary") return true;
  const before = new Set(previous.safekeeperConnstrings);
  const after = new Set(next.safekeeperConnstrings);
  return before.size !== after.size || [...after].some((entry) => !before.has(entry));
}

/**
 * Runs the configurator until `signal` aborts (the node aborts it when
 * Postgres exits). Resolves quietly on abort.
 */
export async function runConfigurator(
  ctx: ConfiguratorContext,
  signal: AbortSignal,
): Promise<void> {
  const backoffMs = ctx.refreshBackoffMs ?? REFRESH_BACKOFF_MS;
  let refreshNotBefore = 0;
  const apply = (pspec: ParsedSpec) => ctx.reconfigure(pspec, signal);
  try {
    while (!signal.aborted) {
      const status = await ctx.state.waitForStatus(
        ["configuration_pending", "refresh_configuration_pending"],
        signal,
      );
      if (status === "configuration_pending") {
        await applyPushedSpec(ctx, apply);
        continue;
      }
      const wait = refreshNotBefore - Date.now();
      if (wait > 0) await sleep(wait, signal);
      if (ctx.state.status !== "refresh_configuration_pending") continue;
      const outcome = await refresh(ctx, apply);
      // Rate-limit repeated requests while the control plane has nothing new for us.
      if (outcome === "unchanged" || outcome === "fetch_failed") {
        refreshNotBefore = Date.now() + backoffMs;
      }
      // A failed refresh is retried when the next request (or any change) arrives.
      if (outcome !== "unchanged" && outcome !== "reconfigured") {
        await ctx.state.waitForChange(signal);
      }
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  }
}

type Apply = (pspec: ParsedSpec) => Promise<void>;

async function applyPushedSpec(ctx: ConfiguratorContext, apply: Apply): Promise<void> {
  const { state } = ctx;
  state.transition("configuration");
  try {
    await apply(ctx.currentSpec());
    state.transition("running");
  } catch (error) {
    const message = errorMessage(error);
    log.error("reconfiguration failed", { error: message });
    state.error = message;
    state.transition("failed", message);
  }
}

type RefreshOutcome = "reconfigured" | "unchanged" | "fetch_failed" | "apply_failed";

/** One refresh; says whether it reconfigured, found nothing to do, or failed (and where). */
async function refresh(ctx: ConfiguratorContext, apply: Apply): Promise<RefreshOutcome> {
  const { state } = ctx;
  state.transition("refresh_configuration");
  let pspec: ParsedSpec | null;
  try {
    const config = await ctx.fetchConfig();
    pspec = config.spec == null ? null : parseSpec(config.spec);
  } catch (error) {
    log.error("could not refresh the compute configuration", { error: errorMessage(error) });
    state.transition("refresh_configuration_pending", "refresh failed");
    return "fetch_failed";
  }
  if (pspec === null) {
    log.error("compute is no longer attached (the control plane has no spec for it); exiting");
    ctx.exitProcess(1);
    return "fetch_failed";
  }
  const current = ctx.currentSpec();
  if (samePageserverConnInfo(current.pageserverConnInfo, pspec.pageserverConnInfo)) {
    state.transition("running", "pageserver connection info unchanged");
    return "unchanged";
  }
  ctx.replaceSpec(pspec);
  try {
    await apply(pspec);
    state.transition("running", "pageserver connection info changed");
    return "reconfigured";
  } catch (error) {
    log.error("reconfiguration after refresh failed", { error: errorMessage(error) });
    state.transition("refresh_configuration_pending", "reconfigure failed");
    return "apply_failed";
  }
}
