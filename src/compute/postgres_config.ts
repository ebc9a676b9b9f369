/**
 * @module
 * The two configuration steps start-up and reconfigure share: rendering
 * `postgresql.conf` into PGDATA, and running catalog changes with the project
 * size limit lifted (`neon.max_cluster_size=-1` in the temporary override file,
 * reloaded in and out).
 */

import type { ParsedSpec } from "../api/parsed_spec.ts";
import { renderPostgresqlConf } from "../postgres/conf.ts";
import { withTempOverride } from "../postgres/files.ts";
import { readOvercommitMemory } from "../postgres/overcommit.ts";
import { reloadPostgres } from "../postgres/process.ts";
import type { NodeSettings } from "./node.ts";

/** The override every catalog apply runs under, so size limits cannot block it. */
export const CLUSTER_SIZE_OVERRIDE = "neon.max_cluster_size=-1";

/** Writes `<pgdata>/postgresql.conf` for `pspec`, replacing the previous file. */
export async function writePostgresqlConf(
  settings: NodeSettings,
  pspec: ParsedSpec,
): Promise<void> {
  const text = renderPostgresqlConf(pspec, {
    privilegedRoleName: settings.privilegedRoleName,
    internalHttpPort: settings.internalHttpPort,
    overcommitMemory: await readOvercommitMemory(),
    tls: settings.tlsConfigured,
  });
  await Deno.writeTextFile(`${settings.pgdata}/postgresql.conf`, text);
}

/**
 * Writes the size-limit override, reloads Postgres, runs `fn`, then empties the
 * override and reloads again (also when `fn` fails). Returns what `fn` returned.
 */
export async function withClusterSizeOverride<T>(
  settings: NodeSettings,
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
