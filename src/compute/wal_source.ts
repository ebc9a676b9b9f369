/**
 * @module
 * Vanilla storage's side of the compute: the safekeepers pull WAL from its
 * Postgres as streaming-replication clients. This module names that Postgres
 * as they reach it (`--connstr`'s host, port and user), lets their hosts in
 * (`pg_hba.conf`), and announces where the WAL begins to a quorum of them: at
 * start, after a promotion by restart, and when the safekeeper set changes.
 */

import { formatLsn, type Lsn } from "../api/lsn.ts";
import type { ParsedSpec } from "../api/parsed_spec.ts";
import { getLogger } from "../log.ts";
import { clientConfig } from "../postgres/connect.ts";
import { ensureReplicationHbaLines } from "../postgres/files.ts";
import { parseSafekeeperAddress } from "../storage/safekeepers.ts";
import { announceWalSourceToQuorum, type WalSourcePostgres } from "../storage/wal_source.ts";
import type { NodeSettings } from "./settings.ts";

const log = getLogger("wal_source");

function elapsedMs(since: number): number {
  return Math.round(performance.now() - since);
}

/**
 * Vanilla storage: lets the safekeepers' hosts open replication sessions as
 * the `--connstr` user (`trust`), so they can stream the compute's WAL.
 */
export async function ensureSafekeeperHbaLines(
  settings: Pick<NodeSettings, "pgdata" | "connstr">,
  pspec: ParsedSpec,
): Promise<void> {
  const hosts = pspec.safekeeperConnstrings.map((entry) => parseSafekeeperAddress(entry).host);
  await ensureReplicationHbaLines(settings.pgdata, hosts, walSourcePostgres(settings).user);
}

/** The compute's Postgres as the safekeepers reach it: `--connstr`'s host, port and user. */
export function walSourcePostgres(settings: Pick<NodeSettings, "connstr">): WalSourcePostgres {
  const config = clientConfig(settings.connstr, { applicationName: "" });
  return {
    host: config.host ?? "localhost",
    port: config.port ?? 5432,
    user: config.user ?? "cloud_admin",
  };
}

/**
 * Vanilla storage: tells a quorum of the spec's safekeepers to stream WAL from
 * this compute, starting at `startLsn`, and logs who accepted (info), who did
 * not (warn) and how long it took. Throws when no quorum accepted (see
 * `announceWalSourceToQuorum`). No safekeepers: nothing to do.
 */
export async function announceWalSource(
  settings: Pick<NodeSettings, "connstr">,
  pspec: ParsedSpec,
  startLsn: Lsn,
  signal?: AbortSignal,
): Promise<void> {
  const addresses = pspec.safekeeperConnstrings;
  if (addresses.length === 0) return;
  const startedAt = performance.now();
  const outcome = await announceWalSourceToQuorum(addresses, {
    tenantId: pspec.tenantId,
    timelineId: pspec.timelineId,
    authToken: pspec.spec.storage_auth_token ?? undefined,
    postgres: walSourcePostgres(settings),
    startLsn,
    signal,
  });
  log.info("a quorum of safekeepers pulls WAL from this compute", {
    accepted: outcome.accepted.join(","),
    start_lsn: formatLsn(startLsn),
    duration_ms: elapsedMs(startedAt),
  });
  for (const { address, error } of outcome.failed) {
    log.warn("safekeeper did not accept START_WAL_PULL", { safekeeper: address, error });
  }
}
