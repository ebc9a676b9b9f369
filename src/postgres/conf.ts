/**
 * @module
 * Renders `postgresql.conf` from a parsed spec, line for line in the order of
 * Neon's `write_postgres_conf`: the control plane's verbatim text, the Neon
 * storage GUCs (plus, on vanilla Postgres, the safekeeper quorum as
 * `synchronous_standby_names`), mode and locale lines, the managed settings
 * block, the audit block, and the trailing `include_if_exists` of the
 * temporary override file.
 * Later lines win in Postgres, so the order is part of the contract. Pure.
 */

import { formatLsn } from "../api/lsn.ts";
import { type ParsedSpec, shardLibpqUrl, staticLsn } from "../api/parsed_spec.ts";
import { safekeeperStandbyName, vanillaQuorumSize } from "../api/safekeeper_names.ts";
import {
  type ComputeAudit,
  computeModeName,
  type ComputeSpec,
  findOption,
  type PageserverConnectionInfo,
} from "../api/spec.ts";
import { quoteConfValue, settingsBlock } from "./sql_quote.ts";

/** What the conf depends on besides the spec. */
export interface ConfOptions {
  /** `--privileged-role-name`, written as `neon.privileged_role_name`. */
  privilegedRoleName: string;
  /** `--internal-http-port`, written as `neon.extension_server_port`. */
  internalHttpPort: number;
  /** Chooses the locale (`C.UTF-8` on linux, `C` on darwin). Default `"linux"`. */
  platform?: "linux" | "darwin";
  /** The value of `/proc/sys/vm/overcommit_memory`; `2` selects mmap shared memory (linux). */
  overcommitMemory?: number;
  /** True when `compute_ctl_config.tls` is set; TLS is on if the spec also has `tls_experimental`. */
  tls?: boolean;
  /**
   * Vanilla Postgres (no `neon` extension): a primary waits for a majority of
   * its safekeepers through `synchronous_standby_names` instead of the
   * walproposer. Default false.
   */
  vanillaStorage?: boolean;
}

/** The certificate (chain) Postgres serves, relative to PGDATA. */
export const SERVER_CRT = "server.crt";
/** The private key of {@link SERVER_CRT}, relative to PGDATA. */
export const SERVER_KEY = "server.key";

/**
 * Whether Postgres serves TLS: `compute_ctl_config.tls` is set (`tlsConfigured`)
 * and the spec has the `tls_experimental` feature. The one place that rule lives.
 */
export function servesTls(spec: ComputeSpec, tlsConfigured: boolean): boolean {
  return tlsConfigured && spec.features.includes("tls_experimental");
}

/** The last line: lets compute_ctl override GUCs temporarily (see `withTempOverride`). */
export const TEMP_OVERRIDE_INCLUDE = "include_if_exists = 'compute_ctl_temp_override.conf'";

/**
 * Returns the full text of `postgresql.conf` for `pspec`. Throws (`SpecError`)
 * when `pageserver_connection_info` lacks one of its shards.
 */
export function renderPostgresqlConf(pspec: ParsedSpec, options: ConfOptions): string {
  const spec = pspec.spec;
  const lines: string[] = [];
  const platform = options.platform ?? "linux";

  if (spec.cluster.postgresql_conf != null) lines.push(spec.cluster.postgresql_conf);

  lines.push("# Neon storage settings", "");
  lines.push(...pageserverLines(spec));
  lines.push(...safekeeperLines(spec));
  if (options.vanillaStorage && spec.mode === "Primary" && pspec.safekeeperConnstrings.length > 0) {
    lines.push(synchronousStandbyNamesLine(pspec.safekeeperConnstrings));
  }
  for (
    const [name, value] of [
      ["neon.tenant_id", spec.tenant_id],
      ["neon.timeline_id", spec.timeline_id],
      ["neon.project_id", spec.project_id],
      ["neon.branch_id", spec.branch_id],
      ["neon.endpoint_id", spec.endpoint_id],
    ] as const
  ) {
    if (value != null) lines.push(`${name}=${quoteConfValue(value)}`);
  }

  if (servesTls(spec, options.tls ?? false)) {
    lines.push("ssl = on", `ssl_cert_file = '${SERVER_CRT}'`, `ssl_key_file = '${SERVER_KEY}'`);
  }

  const locale = quoteConfValue(platform === "darwin" ? "C" : "C.UTF-8");
  for (const name of ["lc_messages", "lc_monetary", "lc_time", "lc_numeric"]) {
    lines.push(`${name}=${locale}`);
  }

  lines.push(`neon.compute_mode=${computeModeName(spec.mode)}`);
  const lsn = staticLsn(spec);
  if (lsn !== undefined) {
    lines.push("hot_standby=on", `recovery_target_lsn=${quoteConfValue(formatLsn(lsn))}`);
  } else if (spec.mode === "Replica") {
    lines.push("hot_standby=on");
  }

  if (platform === "linux" && options.overcommitMemory === 2) {
    lines.push("dynamic_shared_memory_type = mmap");
  }

  lines.push(`neon.privileged_role_name=${quoteConfValue(options.privilegedRoleName)}`);

  const settings = spec.cluster.settings;
  if (settings != null) {
    // settingsBlock ends with its own newline; drop it so the join below adds exactly one.
    lines.push("# Managed by compute_ctl: begin", settingsBlock(settings).slice(0, -1));
    lines.push("# Managed by compute_ctl: end");
  }

  lines.push(...auditLines(spec.audit_log_level, findOption(settings, "shared_preload_libraries")));

  lines.push(`neon.extension_server_port=${options.internalHttpPort}`);
  lines.push(
    `neon.disable_logical_replication_subscribers=${spec.drop_subscriptions_before_start}`,
  );
  if (spec.logs_export_host != null) lines.push("log_destination='stderr,syslog'");

  lines.push(TEMP_OVERRIDE_INCLUDE);
  return `${lines.join("\n")}\n`;
}

/** Stripe size before connstring: the extension needs the stripe size to parse shards. */
function pageserverLines(spec: ComputeSpec): string[] {
  const info = spec.pageserver_connection_info;
  if (info != null) return connectionInfoLines(info);

  const lines: string[] = [];
  if (spec.shard_stripe_size != null) {
    lines.push(
      "# from compute spec's shard_stripe_size field",
      `neon.stripe_size=${spec.shard_stripe_size}`,
    );
  }
  if (spec.pageserver_connstring != null) {
    lines.push(
      "# from compute spec's pageserver_connstring field",
      `neon.pageserver_connstring=${quoteConfValue(spec.pageserver_connstring)}`,
    );
  }
  return lines;
}

function connectionInfoLines(info: PageserverConnectionInfo): string[] {
  const lines: string[] = [];
  if (info.stripe_size != null) {
    lines.push(
      "# from compute spec's pageserver_connection_info.stripe_size field",
      `neon.stripe_size=${info.stripe_size}`,
    );
  }
  const urls: (string | undefined)[] = [];
  for (let shard = 0; shard < Math.max(info.shard_count, 1); shard++) {
    urls.push(shardLibpqUrl(info, shard));
  }
  if (urls.every((url) => url !== undefined)) {
    lines.push(
      "# derived from compute spec's pageserver_connection_info field",
      `neon.pageserver_connstring=${quoteConfValue(urls.join(","))}`,
    );
  } else {
    lines.push("# no neon.pageserver_connstring");
  }
  return lines;
}

/** Only the spec's own list (not the settings fallback), with the generation prefix if any. */
function safekeeperLines(spec: ComputeSpec): string[] {
  if (spec.safekeeper_connstrings.length === 0) return [];
  const generation = spec.safekeepers_generation != null ? `g#${spec.safekeepers_generation}:` : "";
  const list = spec.safekeeper_connstrings.join(",");
  return [`neon.safekeepers=${quoteConfValue(`${generation}${list}`)}`];
}

/**
 * The vanilla stand-in for the walproposer's quorum commit: a commit returns
 * once any majority of the safekeepers (named by {@link safekeeperStandbyName},
 * in list order) has flushed it, e.g.
 * `synchronous_standby_names = 'ANY 2 ("safekeeper_a", "safekeeper_b", "safekeeper_c")'`.
 */
export function synchronousStandbyNamesLine(safekeepers: readonly string[]): string {
  const names = safekeepers.map((entry) => `"${safekeeperStandbyName(entry)}"`).join(", ");
  const value = `ANY ${vanillaQuorumSize(safekeepers.length)} (${names})`;
  return `synchronous_standby_names = ${quoteConfValue(value)}`;
}

/**
 * The pgaudit block, after the settings so users cannot override it. The
 * libraries are appended to the settings' `shared_preload_libraries` when not
 * already listed (compared entry by entry; Neon's substring test would take
 * `pgauditlogtofile` for `pgaudit`).
 */
function auditLines(level: ComputeAudit, preload: string | undefined): string[] {
  switch (level) {
    case "Disabled":
      return [];
    case "Log":
    case "Base":
      return [
        "# Managed by compute_ctl base audit settings: start",
        "pgaudit.log='ddl,role'",
        "pgaudit.log_catalog=off",
        `shared_preload_libraries=${preloadWith(preload, "neon,pgaudit", ["pgaudit"])}`,
        "# Managed by compute_ctl base audit settings: end",
      ];
    case "Hipaa":
    case "Extended":
    case "Full": {
      const full = level === "Full";
      const libraries = preloadWith(preload, "neon,pgaudit,pgauditlogtofile", [
        "pgaudit",
        "pgauditlogtofile",
      ]);
      return [
        "# Managed by compute_ctl compliance audit settings: begin",
        `pgaudit.log_parameter=${full ? "on" : "off"}`,
        full ? "pgaudit.log='all'" : "pgaudit.log='all, -misc'",
        "pgaudit.log_catalog=off",
        "pgaudit.log_rotation_age=5",
        `shared_preload_libraries=${libraries}`,
        "# Managed by compute_ctl compliance audit settings: end",
      ];
    }
  }
}

function preloadWith(
  preload: string | undefined,
  fallback: string,
  required: readonly string[],
): string {
  if (preload === undefined) return quoteConfValue(fallback);
  const present = new Set(preload.split(",").map((entry) => entry.trim()));
  const missing = required.filter((library) => !present.has(library));
  return quoteConfValue([preload, ...missing].join(","));
}
