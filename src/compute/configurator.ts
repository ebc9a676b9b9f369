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
 *
 * A reconfiguration that fails puts back the files it rewrote and reloads, so
 * Postgres keeps running on the configuration it had; the node keeps the
 * previous spec in force. A pushed spec that failed leaves `failed`, from
 * which a new `/configure` is accepted, and the next refresh applies the
 * control plane's spec whatever its pageserver info.
 */

import { sleep } from "../_async.ts";
import type { ComputeConfig } from "../api/config.ts";
import type { Lsn } from "../api/lsn.ts";
import {
  type ParsedSpec,
  parseSpec,
  samePageserverConnInfo,
  SpecError,
} from "../api/parsed_spec.ts";
import { errorMessage, getLogger } from "../log.ts";
import { confFileErrors, describeConfFileError } from "../postgres/conf_check.ts";
import type { SystemSession } from "../postgres/maintenance_session.ts";
import { reloadPostgres } from "../postgres/process.ts";
import {
  applySpec,
  checkSpecAgainstPostgres,
  concurrencyForReconfigure,
} from "../postgres/spec_apply.ts";
import { SpecPlanError } from "../postgres/spec_plan/mod.ts";
import {
  changedConfigFiles,
  restoreConfigFiles,
  saveConfigFiles,
  type SavedConfigFiles,
} from "./config_files.ts";
import { type CollectionInterval, updateCollectionInterval } from "./installed_extensions.ts";
import {
  isVanillaStorage,
  withClusterSizeOverride,
  writePostgresqlConf,
} from "./postgres_config.ts";
import type { NodeSettings } from "./settings.ts";
import type { ComputeState } from "./state.ts";
import type { TlsConfig } from "./tls.ts";
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
  /** `compute_ctl_config.tls`: the key pair is copied into PGDATA again. */
  tls?: TlsConfig | null;
  /** The installed-extensions interval, which `pspec` replaces. */
  extensionStats?: CollectionInterval;
  /** Where the catalog apply's cluster-wide part runs; default: a session of its own. */
  systemSession?: SystemSession;
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
 * `reconfigure_concurrency` (default 1). A changed `postgresql.conf` is
 * checked by Postgres before the reload: a value it refuses fails the
 * reconfiguration.
 *
 * Unlike Neon, which reloads three times whatever changed, it reloads only
 * for a change: not at all when the files come out byte-identical and the
 * catalog plan is empty, once when only the files changed, and twice when the
 * catalog plan has statements (the reload that lifts the size limit also takes
 * the new files; one more puts the limit back).
 *
 * On any failure the files it rewrote are put back and Postgres is reloaded
 * before the error is thrown (statements of the catalog apply that completed
 * stay applied).
 */
export async function reconfigure(
  settings: ReconfigureSettings,
  pspec: ParsedSpec,
  options: ReconfigureOptions = {},
): Promise<void> {
  const saved = await saveConfigFiles(settings.pgdata);
  try {
    await applyConfiguration(settings, pspec, options, saved);
  } catch (error) {
    await putBack(settings, saved);
    throw error;
  }
  if (options.extensionStats) updateCollectionInterval(options.extensionStats, pspec.spec);
  log.info("finished reconfiguration", { operation_uuid: pspec.spec.operation_uuid ?? null });
}

/** Puts back the files a failed reconfiguration rewrote and reloads; logs instead of throwing. */
async function putBack(settings: ReconfigureSettings, saved: SavedConfigFiles): Promise<void> {
  try {
    const restored = await restoreConfigFiles(saved);
    if (restored.length === 0) return;
    await reloadPostgres(settings.pgbin, settings.pgdata);
    log.warn("reconfiguration failed: previous configuration put back and reloaded", {
      files: restored.join(", "),
    });
  } catch (error) {
    log.error("could not put back the previous configuration", { error: errorMessage(error) });
  }
}

/** Throws when Postgres would refuse a line of the `postgresql.conf` now on disk. */
async function refuseRejectedConf(connstr: string): Promise<void> {
  const refused = await confFileErrors(connstr);
  if (refused.length === 0) return;
  throw new Error(
    `postgres refuses the new configuration: ${refused.map(describeConfFileError).join("; ")}`,
  );
}

/**
 * The steps of {@link reconfigure}, without the rollback; `saved` holds the
 * files as they were, to tell whether a reload would change anything.
 */
async function applyConfiguration(
  settings: ReconfigureSettings,
  pspec: ParsedSpec,
  options: ReconfigureOptions,
  saved: SavedConfigFiles,
): Promise<void> {
  const spec = pspec.spec;
  // Only a compute with a WAL history of its own on timeline 1 waits for the safekeepers.
  const walQuorum = options.startLsn != null;
  const announce = walQuorum && walSourceChanged(options.previous, pspec) &&
    await isVanillaStorage(settings);
  await writePostgresqlConf(settings, pspec, {
    walQuorum,
    tls: options.tls,
    signal: options.signal,
  });
  if (announce) await ensureSafekeeperHbaLines(settings, pspec);
  const changed = await changedConfigFiles(saved);
  if (changed.includes("postgresql.conf")) await refuseRejectedConf(settings.connstr);
  // Reloads only when the files changed; then tells the new safekeepers, before any catalog change.
  const takeFiles = async () => {
    if (changed.length > 0) await reloadPostgres(settings.pgbin, settings.pgdata);
    if (announce) await announceWalSource(settings, pspec, options.startLsn!, options.signal);
  };
  if (spec.skip_pg_catalog_updates || spec.mode !== "Primary") return await takeFiles();
  await applySpec(settings.connstr, spec, {
    concurrency: concurrencyForReconfigure(spec),
    privilegedRoleName: settings.privilegedRoleName,
    systemSession: options.systemSession,
    aroundExecute: async (plan, execute) => {
      if (plan.steps.length === 0) {
        await takeFiles();
        return await execute();
      }
      // Its first reload takes the new files too.
      await withClusterSizeOverride(settings, async () => {
        if (announce) await announceWalSource(settings, pspec, options.startLsn!, options.signal);
        await execute();
      });
    },
  });
}

/**
 * `/configure`'s look at the running Postgres before anything changes (see
 * `checkSpecAgainstPostgres`): throws `SpecError` (a 400) for a setting the
 * server does not have or a catalog plan that cannot succeed. When Postgres
 * cannot be asked, the spec goes on unchecked: its apply reports the trouble.
 * Runs on `systemSession` (default: a session of its own).
 */
export async function checkSpecBeforeApply(
  settings: Pick<NodeSettings, "connstr" | "privilegedRoleName">,
  pspec: ParsedSpec,
  systemSession?: SystemSession,
): Promise<void> {
  try {
    await checkSpecAgainstPostgres(settings.connstr, pspec.spec, {
      systemSession,
      privilegedRoleName: settings.privilegedRoleName,
      concurrency: concurrencyForReconfigure(pspec.spec),
      catalog: pspec.spec.mode === "Primary",
    });
  } catch (error) {
    if (error instanceof SpecPlanError) throw new SpecError(error.message);
    log.warn("could not check the spec against postgres; applying it unchecked", {
      error: errorMessage(error),
    });
  }
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
  // Set while the spec in force is not the last one asked for (an apply failed).
  let applyFailed = false;
  const apply = (pspec: ParsedSpec) => ctx.reconfigure(pspec, signal);
  try {
    while (!signal.aborted) {
      const status = await ctx.state.waitForStatus(
        ["configuration_pending", "refresh_configuration_pending"],
        signal,
      );
      if (status === "configuration_pending") {
        applyFailed = !(await applyPushedSpec(ctx, apply));
        continue;
      }
      const wait = refreshNotBefore - Date.now();
      if (wait > 0) await sleep(wait, signal);
      if (ctx.state.status !== "refresh_configuration_pending") continue;
      const outcome = await refresh(ctx, apply, { reapply: applyFailed });
      if (outcome === "reconfigured") applyFailed = false;
      if (outcome === "apply_failed") applyFailed = true;
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

/** Applies the spec `/configure` installed; true when it reached `running`, false at `failed`. */
async function applyPushedSpec(ctx: ConfiguratorContext, apply: Apply): Promise<boolean> {
  const { state } = ctx;
  state.transition("configuration");
  try {
    await apply(ctx.currentSpec());
    state.transition("running");
    return true;
  } catch (error) {
    const message = errorMessage(error);
    log.error("reconfiguration failed", { error: message });
    state.error = message;
    state.transition("failed", message);
    return false;
  }
}

type RefreshOutcome = "reconfigured" | "unchanged" | "fetch_failed" | "apply_failed";

/**
 * One refresh; says whether it reconfigured, found nothing to do, or failed
 * (and where). It reconfigures when the pageserver info changed, or, with
 * `reapply`, in any case: the last apply failed, so the spec in force is older
 * than what was asked for and the control plane's spec is applied whole.
 */
async function refresh(
  ctx: ConfiguratorContext,
  apply: Apply,
  { reapply }: { reapply: boolean },
): Promise<RefreshOutcome> {
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
  const samePageservers = samePageserverConnInfo(
    current.pageserverConnInfo,
    pspec.pageserverConnInfo,
  );
  if (samePageservers && !reapply) {
    state.transition("running", "pageserver connection info unchanged");
    return "unchanged";
  }
  ctx.replaceSpec(pspec);
  try {
    await apply(pspec);
    const reason = samePageservers
      ? "the control plane's spec applied after a failed apply"
      : "pageserver connection info changed";
    state.transition("running", reason);
    return "reconfigured";
  } catch (error) {
    const message = errorMessage(error);
    log.error("reconfiguration after refresh failed", { error: message });
    state.error = message;
    state.transition("refresh_configuration_pending", "reconfigure failed");
    return "apply_failed";
  }
}
