/**
 * @module
 * The compute spec as the control plane sends it: zod schemas with the same JSON
 * names, optionality and defaults as Neon's `ComputeSpec`. Unknown keys are
 * ignored (zod objects strip them), absent and `null` both mean "none" for
 * optional fields, and every type here is inferred from its schema.
 */

import { z } from "zod";
import { confTextProblem } from "./conf_syntax.ts";
import { hexIdSchema } from "./ids.ts";
import { parseLsn } from "./lsn.ts";
import {
  checkedString,
  confStringProblem,
  nameProblem,
  roleNameProblem,
  settingNameProblem,
  settingValueProblem,
  textProblem,
} from "./spec_names.ts";
import { databaseOptionProblems, type OptionProblem, roleOptionProblems } from "./spec_options.ts";

const u32 = z.number().int().min(0).max(0xffff_ffff);
const u64 = z.number().int().min(0);

/** An LSN kept in its JSON string form (`"0/169AD58"`), checked on parse. */
export const lsnTextSchema = z.string().refine((text) => {
  try {
    parseLsn(text);
    return true;
  } catch {
    return false;
  }
}, { message: "invalid LSN, expected X/Y in hexadecimal" });

/** Adds each option problem as an issue at `options.<index>.<field>` under `prefix`. */
function addOptionIssues(
  ctx: z.RefinementCtx,
  prefix: PropertyKey[],
  problems: OptionProblem[],
): void {
  for (const { index, field, message } of problems) {
    ctx.addIssue({ code: "custom", message, path: [...prefix, "options", index, field] });
  }
}

/** A `name`/`value`/`vartype` triple: a GUC, or a clause of CREATE ROLE/DATABASE. */
export const genericOptionSchema = z.object({
  name: z.string(),
  value: z.string().nullish(),
  vartype: z.string(),
});
export type GenericOption = z.infer<typeof genericOptionSchema>;

const genericOptions = z.array(genericOptionSchema).nullish();

/** A `cluster.settings` entry: a line of `postgresql.conf` (`name = value`, quoted for `string`). */
export const settingSchema = genericOptionSchema.superRefine((option, ctx) => {
  const nameIssue = settingNameProblem(option.name);
  if (nameIssue !== undefined) ctx.addIssue({ code: "custom", message: nameIssue, path: ["name"] });
  const valueIssue = settingValueProblem(option);
  if (valueIssue !== undefined) {
    ctx.addIssue({ code: "custom", message: valueIssue, path: ["value"] });
  }
});

/** Text written into `postgresql.conf` between quotes: no NUL, no line break. */
const confString = checkedString(confStringProblem);

/**
 * A role the compute must have; the password is an md5 hex digest or a SCRAM
 * verifier. Its options are checked with the spec (they depend on `local_proxy_config`).
 */
export const roleSchema = z.object({
  name: checkedString(roleNameProblem),
  encrypted_password: checkedString(textProblem).nullish(),
  options: genericOptions,
});
export type Role = z.infer<typeof roleSchema>;

/** A database the compute must have, with its owner role. */
export const databaseSchema = z.object({
  name: checkedString(nameProblem),
  owner: checkedString(nameProblem),
  options: genericOptions,
}).superRefine((database, ctx) => {
  addOptionIssues(ctx, [], databaseOptionProblems(database.options ?? []));
});
export type Database = z.infer<typeof databaseSchema>;

/** The desired end state: roles, databases, settings and verbatim conf text. */
export const clusterSchema = z.object({
  cluster_id: z.string().nullish(),
  name: z.string().nullish(),
  state: z.string().nullish(),
  roles: z.array(roleSchema),
  databases: z.array(databaseSchema),
  postgresql_conf: checkedString((text) => textProblem(text) ?? confTextProblem(text)).nullish(),
  settings: z.array(settingSchema).nullish(),
});
export type Cluster = z.infer<typeof clusterSchema>;

/** The names each delta action takes: a database's, a role's (new role names follow role rules). */
const DELTA_NAME_RULES: Readonly<Record<string, (name: string) => string | undefined>> = {
  delete_db: nameProblem,
  rename_db: nameProblem,
  delete_role: nameProblem,
  rename_role: roleNameProblem,
};

/** An imperative change: `delete_db`, `rename_db`, `delete_role`, `rename_role` (others ignored). */
export const deltaOpSchema = z.object({
  action: z.string(),
  name: z.string(),
  new_name: z.string().nullish(),
}).superRefine((op, ctx) => {
  const rule = DELTA_NAME_RULES[op.action];
  if (rule === undefined) return;
  const nameIssue = nameProblem(op.name);
  if (nameIssue !== undefined) ctx.addIssue({ code: "custom", message: nameIssue, path: ["name"] });
  const newNameIssue = op.new_name == null || op.new_name === "" ? undefined : rule(op.new_name);
  if (newNameIssue !== undefined) {
    ctx.addIssue({ code: "custom", message: newNameIssue, path: ["new_name"] });
  }
});
export type DeltaOp = z.infer<typeof deltaOpSchema>;

/** `"Primary"`, `{"Static": "X/Y"}` or `"Replica"`. */
export const computeModeSchema = z.union([
  z.literal("Primary"),
  z.literal("Replica"),
  z.strictObject({ Static: lsnTextSchema }),
], { error: 'expected "Primary", "Replica" or {"Static": "X/Y"}' });
export type ComputeMode = z.infer<typeof computeModeSchema>;

/** The lower-case name Neon uses for a mode in `neon.compute_mode` and pageserver options. */
export function computeModeName(mode: ComputeMode): "primary" | "static" | "replica" {
  if (mode === "Primary") return "primary";
  if (mode === "Replica") return "replica";
  return "static";
}

const KNOWN_FEATURES = ["activity_monitor_experimental", "tls_experimental"] as const;

/** A feature flag; unknown strings become `"unknown_feature"` instead of failing. */
export const computeFeatureSchema = z.string().transform((feature) =>
  (KNOWN_FEATURES as readonly string[]).includes(feature) ? feature : "unknown_feature"
);

/** pgaudit level. `Log` and `Hipaa` are deprecated aliases kept for old control planes. */
export const computeAuditSchema = z.enum(["Disabled", "Log", "Base", "Hipaa", "Extended", "Full"]);
export type ComputeAudit = z.infer<typeof computeAuditSchema>;

/** One pageserver serving a shard. Only the first of each shard is used. */
export const pageserverShardConnectionInfoSchema = z.object({
  id: u64.nullish(),
  libpq_url: confString.nullish(),
  grpc_url: z.string().nullish(),
});

/** Where each shard's pageservers are; keys are shard indexes `NNCC` in hex (`"0000"`). */
export const pageserverConnectionInfoSchema = z.object({
  shard_count: z.number().int().min(0).max(255),
  stripe_size: u32.nullish(),
  shards: z.record(
    z.string().regex(/^[0-9a-fA-F]{4}$/, "shard index must be 4 hex characters"),
    z.object({ pageservers: z.array(pageserverShardConnectionInfoSchema) }),
  ).transform((shards) =>
    Object.fromEntries(Object.entries(shards).map(([key, value]) => [key.toLowerCase(), value]))
  ),
  prefer_protocol: z.enum(["libpq", "grpc"]).default("libpq"),
});
export type PageserverConnectionInfo = z.infer<typeof pageserverConnectionInfoSchema>;

/** The remote extension catalogue. */
export const remoteExtSpecSchema = z.object({
  public_extensions: z.array(z.string()).nullish(),
  custom_extensions: z.array(z.string()).nullish(),
  library_index: z.record(z.string(), z.string()),
  extension_data: z.record(
    z.string(),
    z.object({ control_data: z.record(z.string(), z.string()), archive_path: z.string() }),
  ),
});
export type RemoteExtSpec = z.infer<typeof remoteExtSpecSchema>;

/** Paths of a TLS key and certificate. */
export const tlsConfigSchema = z.object({ key_path: z.string(), cert_path: z.string() });

/** JWT settings for local_proxy. */
export const localProxySpecSchema = z.object({
  jwks: z.array(z.object({
    id: z.string(),
    role_names: z.array(z.string()),
    jwks_url: z.string(),
    provider_name: z.string(),
    jwt_audience: z.string().nullish(),
  })).nullish(),
  tls: tlsConfigSchema.nullish(),
});

/** Lakebase-only settings; accepted and ignored by this implementation. */
export const databricksSettingsSchema = z.object({
  pg_compute_tls_settings: z.object({
    cert_file: z.string(),
    key_file: z.string(),
    ca_file: z.string(),
  }),
  databricks_pg_hba: z.string(),
  databricks_pg_ident: z.string(),
  databricks_workspace_host: z.string(),
});

/** The compute spec. Required: `format_version`, `cluster`, `suspend_timeout_seconds`. */
export const computeSpecSchema = z.object({
  format_version: z.number(),
  operation_uuid: z.string().nullish(),
  features: z.array(computeFeatureSchema).default([]),
  swap_size_bytes: u64.nullish(),
  disk_quota_bytes: u64.nullish(),
  disable_lfc_resizing: z.boolean().nullish(),
  cluster: clusterSchema,
  delta_operations: z.array(deltaOpSchema).nullish(),
  skip_pg_catalog_updates: z.boolean().default(false),
  tenant_id: hexIdSchema("tenant id").nullish(),
  timeline_id: hexIdSchema("timeline id").nullish(),
  pageserver_connection_info: pageserverConnectionInfoSchema.nullish(),
  pageserver_connstring: confString.nullish(),
  shard_stripe_size: u32.nullish(),
  project_id: confString.nullish(),
  branch_id: confString.nullish(),
  endpoint_id: confString.nullish(),
  safekeepers_generation: u32.nullish(),
  safekeeper_connstrings: z.array(confString).default([]),
  mode: computeModeSchema.default("Primary"),
  storage_auth_token: z.string().nullish(),
  remote_extensions: remoteExtSpecSchema.nullish(),
  pgbouncer_settings: z.record(z.string(), z.string()).nullish(),
  local_proxy_config: localProxySpecSchema.nullish(),
  reconfigure_concurrency: z.number().int().min(0).default(1),
  drop_subscriptions_before_start: z.boolean().default(false),
  audit_log_level: computeAuditSchema.default("Disabled"),
  logs_export_host: z.string().nullish(),
  endpoint_storage_addr: z.string().nullish(),
  endpoint_storage_token: z.string().nullish(),
  autoprewarm: z.boolean().default(false),
  offload_lfc_interval_seconds: z.number().int()
    .refine((seconds) => seconds !== 0, "must be non-zero")
    .refine((seconds) => seconds >= 0, "must not be negative")
    .nullish(),
  suspend_timeout_seconds: z.number().int(),
  databricks_settings: databricksSettingsSchema.nullish(),
}).superRefine((spec, ctx) => {
  const jwksRoles = jwksRoleNames(spec);
  spec.cluster.roles.forEach((role, index) => {
    const problems = roleOptionProblems(role.options ?? [], { jwksRole: jwksRoles.has(role.name) });
    addOptionIssues(ctx, ["cluster", "roles", index], problems);
  });
});
export type ComputeSpec = z.infer<typeof computeSpecSchema>;

/**
 * Returns the value of the first option named `name`, as Neon's
 * `GenericOptionsSearch::find` does: a later option of the same name is never
 * consulted, even when the first one's value is null (then the result is
 * `undefined`).
 */
export function findOption(
  options: readonly GenericOption[] | null | undefined,
  name: string,
): string | undefined {
  return options?.find((option) => option.name === name)?.value ?? undefined;
}

/** Roles named in any `local_proxy_config.jwks[].role_names`. */
export function jwksRoleNames(spec: Pick<ComputeSpec, "local_proxy_config">): Set<string> {
  return new Set((spec.local_proxy_config?.jwks ?? []).flatMap((jwks) => jwks.role_names));
}

/** The timeline of the spec: `timeline_id`, else the `neon.timeline_id` setting. */
export function specTimelineId(spec: ComputeSpec): string | undefined {
  return spec.timeline_id ?? findOption(spec.cluster.settings, "neon.timeline_id");
}

/** Renders zod issues as one line: `path: message; path: message`, naming missing fields. */
export function formatIssues(error: z.ZodError): string {
  return error.issues.map((issue) => describeIssue(issue, [])).join("; ");
}

function describeIssue(issue: z.core.$ZodIssue, prefix: PropertyKey[]): string {
  const path = [...prefix, ...issue.path];
  if (issue.code === "invalid_key" && issue.issues.length > 0) {
    return issue.issues.map((inner) => describeIssue(inner, path)).join("; ");
  }
  let message = issue.message;
  if (issue.code === "invalid_type" && message.endsWith("received undefined")) {
    message = "missing field";
  }
  const where = path.map(String).join(".");
  return where ? `${where}: ${message}` : message;
}
