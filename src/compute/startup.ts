/**
 * @module
 * The first start of a compute, from `init` to `running` (or `failed`): wipe
 * PGDATA and write `postgresql.conf` while choosing the LSN, fetch the basebackup, fix up
 * `pg_hba.conf` / `pg_dynshmem` / `standby.signal`, start Postgres and wait for
 * it, on vanilla storage tell the safekeepers where to pull its WAL from, then
 * (primary only) apply the spec's catalog and start the migrations in the
 * background, handing them to the node, which awaits them before it ends.
 * Each phase is timed into `ComputeMetrics`.
 */

import { formatLsn, type Lsn } from "../api/lsn.ts";
import { type ParsedSpec, shardLibpqUrl, staticLsn } from "../api/parsed_spec.ts";
import type { ComputeMetrics } from "../api/responses.ts";
import { errorMessage, getLogger } from "../log.ts";
import { dbMigrationFailed } from "../metrics.ts";
import {
  ensureMd5HbaLine,
  lineInFile,
  linkDynshmem,
  recreatePgdata,
  writeStandbySignal,
} from "../postgres/files.ts";
import { runMigrations } from "../postgres/migrations.ts";
import {
  type PostgresProcess,
  reloadPostgres,
  spawnPostgres,
  waitForReady,
} from "../postgres/process.ts";
import { applySpec, concurrencyForStartup } from "../postgres/spec_apply.ts";
import { waitForStandbyReplay } from "../postgres/standby.ts";
import { fetchBasebackupWithRetries } from "../storage/basebackup.ts";
import { checkSafekeepersQuorum } from "../storage/safekeepers.ts";
import { failpoints } from "./failpoints.ts";
import { type CollectionInterval, updateCollectionInterval } from "./installed_extensions.ts";
import {
  childEnv,
  isVanillaStorage,
  withClusterSizeOverride,
  writePostgresqlConf,
} from "./postgres_config.ts";
import type { NodeSettings } from "./settings.ts";
import type { ComputeState } from "./state.ts";
import type { TlsConfig } from "./tls.ts";
import { FAST_PATH_TIMEOUT_MS, syncSafekeepersForStart } from "./sync_safekeepers.ts";
import { announceWalSource, ensureSafekeeperHbaLines } from "./wal_source.ts";

const log = getLogger("startup");

/** First basebackup retry delay; each next one is 1.5 times longer. */
export const BASEBACKUP_BASE_DELAY_MS = 500;

/** The line that re-enables logical replication subscribers after the first apply. */
export const ENABLE_SUBSCRIBERS_LINE = "neon.disable_logical_replication_subscribers=false";

/** The settings the start-up uses. */
export type StartupSettings = Pick<
  NodeSettings,
  "pgbin" | "pgdata" | "connstr" | "privilegedRoleName" | "internalHttpPort" | "basebackupRetries"
>;

/** What the start-up needs from the node. */
export interface StartupContext {
  settings: StartupSettings;
  state: ComputeState;
  metrics: ComputeMetrics;
  pspec: ParsedSpec;
  /** `compute_ctl_config.tls`, or null. */
  tls: TlsConfig | null;
  /**
   * Resolves once the TLS certificate watcher could read and hash the
   * certificate; Postgres starts only after that (absent: nothing to wait for).
   */
  tlsCertReady?: Promise<void>;
  /** The installed-extensions interval, which the applied spec replaces. */
  extensionStats: CollectionInterval;
  /** Called as soon as the postmaster exists, so termination can signal it. */
  onSpawn(proc: PostgresProcess): void;
  /** A primary's start LSN, once chosen: where its WAL begins (vanilla storage re-announces it). */
  onStartLsn(lsn: Lsn): void;
  /**
   * The migrations run in the background once the catalog is applied; the node
   * awaits `done` before it ends (it never rejects: failures are logged).
   */
  onMigrationsStarted(done: Promise<void>): void;
  /** Aborted when the compute is being terminated: stops sync and basebackup retries. */
  signal: AbortSignal;
}

/**
 * Reads the failpoint `compute-migration=return(N)` out of a `FAILPOINTS`
 * value (`name=actions;name=actions`) and returns N: the migration to fail.
 */
export function migrationFailpoint(failpoints: string | undefined): number | undefined {
  for (const entry of (failpoints ?? "").split(";")) {
    const match = /^\s*compute-migration\s*=\s*return\((\d+)\)\s*$/.exec(entry);
    if (match) return Number(match[1]);
  }
  return undefined;
}

/**
 * The migration to fail, from the failpoint `compute-migration=return(N)` as
 * configured when the migrations start (`FAILPOINTS` or `POST /failpoints`).
 */
async function migrationFailAt(): Promise<number | undefined> {
  const fired = await failpoints.evaluate("compute-migration");
  return fired?.value !== undefined && /^\d+$/.test(fired.value) ? Number(fired.value) : undefined;
}

function elapsedMs(since: number): number {
  return Math.round(performance.now() - since);
}

/** How the start-up ended: the Postgres process (if spawned) and whether it reached `running`. */
export interface StartupOutcome {
  postgres: PostgresProcess | null;
  started: boolean;
}

/**
 * Runs the start-up with the status at `init`. Ends in `running`, or in
 * `failed` with the error text recorded and Postgres (if spawned) sent SIGQUIT.
 */
export async function startCompute(ctx: StartupContext): Promise<StartupOutcome> {
  const { settings, state, metrics, pspec } = ctx;
  log.info("starting compute", {
    tenant_id: pspec.tenantId,
    timeline_id: pspec.timelineId,
    mode: JSON.stringify(pspec.spec.mode),
    operation_uuid: pspec.spec.operation_uuid ?? null,
  });
  let proc: PostgresProcess | null = null;
  try {
    const [startLsn] = await Promise.all([preparePgdata(ctx), ctx.tlsCertReady]);
    if (pspec.spec.mode === "Primary") ctx.onStartLsn(startLsn);
    const startedAt = performance.now();
    proc = spawnPostgres({ pgbin: settings.pgbin, pgdata: settings.pgdata, env: childEnv(pspec) });
    ctx.onSpawn(proc);
    await waitForReady(settings.pgdata, proc);
    metrics.start_postgres_ms = elapsedMs(startedAt);

    // Vanilla storage hands a standby WAL to replay, not pages at the LSN: wait for it.
    if (pspec.spec.mode !== "Primary" && await isVanillaStorage(settings)) {
      await waitForStandbyReplay(settings.connstr, { signal: ctx.signal });
    }
    // Before any commit of ours: without a quorum of safekeepers streaming, none would return.
    if (pspec.spec.mode === "Primary" && await isVanillaStorage(settings)) {
      await announceWalSource(settings, pspec, startLsn, ctx.signal);
    }

    const configStartedAt = performance.now();
    if (pspec.spec.mode === "Primary" && !pspec.spec.skip_pg_catalog_updates) {
      await configureAsPrimary(ctx);
    }
    metrics.config_ms = elapsedMs(configStartedAt);
    metrics.total_startup_ms = Math.max(0, Date.now() - state.startTime.getTime());
    state.transition("running", `started in ${metrics.total_startup_ms} ms`);
    return { postgres: proc, started: true };
  } catch (error) {
    const message = errorMessage(error);
    log.error("could not start the compute", { error: message });
    state.error = message;
    state.transition("failed", message);
    proc?.kill("SIGQUIT");
    return { postgres: proc, started: false };
  }
}

/**
 * Wipes PGDATA and fills it: conf, basebackup at the chosen LSN, and the
 * fix-ups. Returns that LSN.
 */
async function preparePgdata(ctx: StartupContext): Promise<Lsn> {
  const { settings, metrics, pspec } = ctx;
  const pgdata = settings.pgdata;
  // Neon writes the conf before syncing the safekeepers because `--sync-safekeepers`
  // reads it; the quick `TIMELINE_STATUS` check that usually settles the LSN does
  // not, so PGDATA is wiped and the conf written while the safekeepers answer.
  const confWritten = (async () => {
    await recreatePgdata(pgdata);
    await writePostgresqlConf(settings, pspec, { tls: ctx.tls, signal: ctx.signal });
  })();
  confWritten.catch(() => {}); // awaited below; this only marks it handled meanwhile
  const lsn = await chooseLsn(ctx, confWritten);
  await confWritten;
  const libpqUrl = shardLibpqUrl(pspec.pageserverConnInfo, 0);
  if (libpqUrl === undefined) {
    throw new Error("shard 0 has no libpq_url: basebackup over gRPC is not supported");
  }
  const startedAt = performance.now();
  const result = await fetchBasebackupWithRetries({
    libpqUrl,
    tenantId: pspec.tenantId,
    timelineId: pspec.timelineId,
    lsn,
    mode: pspec.spec.mode,
    pgdata,
    authToken: pspec.spec.storage_auth_token ?? undefined,
  }, {
    attempts: settings.basebackupRetries + 1,
    baseDelayMs: BASEBACKUP_BASE_DELAY_MS,
    signal: ctx.signal,
  });
  metrics.pageserver_connect_micros = result.connectMicros;
  metrics.basebackup_bytes = result.bytes;
  metrics.basebackup_ms = elapsedMs(startedAt);

  await ensureMd5HbaLine(pgdata);
  if (pspec.spec.mode === "Primary" && await isVanillaStorage(settings)) {
    await ensureSafekeeperHbaLines(settings, pspec);
  }
  await linkDynshmem(pgdata);
  if (pspec.spec.mode !== "Primary") await writeStandbySignal(pgdata);
  return lsn;
}

/**
 * Primary: the safekeepers' commit LSN (the quick quorum check, else the full
 * sync once `confWritten`); Static: the spec's; Replica: 0 (latest).
 */
async function chooseLsn(ctx: StartupContext, confWritten: Promise<void>): Promise<Lsn> {
  const { pspec } = ctx;
  if (pspec.spec.mode !== "Primary") return staticLsn(pspec.spec) ?? 0n;
  const checkStartedAt = performance.now();
  const quick = await checkSafekeepersQuorum(pspec.safekeeperConnstrings, {
    tenantId: pspec.tenantId,
    timelineId: pspec.timelineId,
    authToken: pspec.spec.storage_auth_token ?? undefined,
    timeoutMs: FAST_PATH_TIMEOUT_MS,
  }).catch((error) => ({ lsn: null, reason: errorMessage(error) }));
  if (quick.lsn !== null) {
    ctx.metrics.sync_sk_check_ms = elapsedMs(checkStartedAt);
    log.info("safekeepers are already synced", { lsn: formatLsn(quick.lsn) });
    return quick.lsn;
  }
  await confWritten;
  return await syncSafekeepersForStart(ctx.settings, pspec, ctx.metrics, ctx.signal);
}

/**
 * Applies the spec's roles, databases and extensions with the size limit
 * lifted, re-enables logical replication subscribers, reloads, and starts the
 * migrations in the background (handed to the node to await).
 */
async function configureAsPrimary(ctx: StartupContext): Promise<void> {
  const { settings, pspec } = ctx;
  updateCollectionInterval(ctx.extensionStats, pspec.spec);
  await withClusterSizeOverride(settings, async () => {
    await applySpec(settings.connstr, pspec.spec, {
      concurrency: concurrencyForStartup(pspec.spec),
      privilegedRoleName: settings.privilegedRoleName,
    });
  });
  await lineInFile(`${settings.pgdata}/postgresql.conf`, ENABLE_SUBSCRIBERS_LINE);
  await reloadPostgres(settings.pgbin, settings.pgdata);
  ctx.onMigrationsStarted(runMigrationsLogged(settings));
}

/** Runs the built-in migrations; failures are counted and logged, never thrown. */
export async function runMigrationsLogged(
  settings: Pick<NodeSettings, "connstr" | "privilegedRoleName">,
): Promise<void> {
  try {
    await runMigrations(settings.connstr, {
      privilegedRoleName: settings.privilegedRoleName,
      failAt: await migrationFailAt(),
      onFailure: (migrationId: number) => {
        dbMigrationFailed.inc({ migration_id: String(migrationId) });
      },
    });
  } catch (error) {
    log.error("migrations failed", { error: errorMessage(error) });
  }
}
