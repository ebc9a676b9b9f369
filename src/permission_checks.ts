/**
 * @module
 * Checks, before the manager uses them, that the paths, programs and hosts it
 * was told to use are granted by the Deno permissions it runs under (the
 * `compute` permission set of `deno.json`, or flags). Without these checks a
 * `--pgdata` outside the grants fails deep in start-up with Deno's generic
 * "run again with --allow-write", and a spec naming a host nobody granted
 * fails only when the compute first connects there. Each refusal is one line
 * naming the setting and the grant that allows it.
 *
 * The functions are pure apart from the `query` they are given
 * ({@linkcode denoPermissionQuery} in production), so they are unit-tested
 * with a fake one.
 */

import type { ComputeConfig } from "./api/config.ts";
import { type ParsedSpec, parseSpec, shardIndex, SpecError } from "./api/parsed_spec.ts";
import type { CliOptions } from "./cli.ts";
import { COMMUNICATOR_SOCKET_NAME, MAX_DIRECT_SOCKET_PATH_BYTES } from "./postgres/communicator.ts";

/** Asks whether one permission is granted; resolves with Deno's answer. */
export type PermissionQuery = (
  descriptor: Deno.PermissionDescriptor,
) => Promise<Deno.PermissionState>;

/** {@linkcode PermissionQuery} backed by `Deno.permissions.query`. */
export const denoPermissionQuery: PermissionQuery = async (descriptor) =>
  (await Deno.permissions.query(descriptor)).state;

/** What the manager does with a target: the Deno permission it needs. */
export type Access = "read" | "write" | "run" | "connect" | "listen";

/** One thing a setting makes the manager use, and which grant allows it. */
export interface Requirement {
  /** The setting as the operator wrote it, e.g. `--pgdata /srv/pg`. */
  subject: string;
  /** The accesses needed, each checked. */
  access: readonly Access[];
  /**
   * What is queried: a path (read, write), a program (run), or `host:port` /
   * `unix:<socket path>` (connect, listen).
   */
  target: string;
  /** The entry that grants it: the path or program, or the host without its port. */
  grant: string;
}

/** A spec that names a host the process may not connect to: `/configure` answers 400. */
export class PermissionRefusedError extends SpecError {
  constructor(message: string) {
    super(message);
    this.name = "PermissionRefusedError";
  }
}

/** The flags whose targets are checked at start. */
export type StartupFlags = Pick<
  CliOptions,
  | "pgdata"
  | "pgbin"
  | "config"
  | "connstr"
  | "controlPlaneUri"
  | "remoteExtBaseUrl"
  | "externalHttpBind"
  | "externalHttpPort"
  | "internalHttpBind"
  | "internalHttpPort"
>;

const PERMISSION_KEY: Record<Access, string> = {
  read: "read",
  write: "write",
  run: "run",
  connect: "net",
  listen: "net",
};

/**
 * What the command line makes the manager use from the first moment: PGDATA
 * (read and write), the `--config` file, `--pgbin` and `pg_ctl` beside it, the
 * hosts of `--connstr`, `--control-plane-uri` and `--remote-ext-base-url`, and
 * both HTTP listen addresses.
 */
export function startupRequirements(flags: StartupFlags): Requirement[] {
  const pgCtl = siblingOf(flags.pgbin, "pg_ctl");
  const needs: Requirement[] = [
    pathRequirement(`--pgdata ${flags.pgdata}`, ["read", "write"], flags.pgdata),
    programRequirement(`--pgbin ${flags.pgbin}`, flags.pgbin),
    programRequirement(`pg_ctl beside --pgbin (${pgCtl})`, pgCtl),
    postgresRequirement(flags.connstr),
    listenRequirement("--external-http-bind", flags.externalHttpBind, flags.externalHttpPort),
    listenRequirement("--internal-http-bind", flags.internalHttpBind, flags.internalHttpPort),
  ];
  if (flags.config !== undefined) {
    needs.push(pathRequirement(`--config ${flags.config}`, ["read"], flags.config));
  }
  if (flags.controlPlaneUri !== undefined) {
    needs.push(...urlRequirement("--control-plane-uri's", flags.controlPlaneUri));
  }
  if (flags.remoteExtBaseUrl !== undefined) {
    needs.push(...urlRequirement("--remote-ext-base-url's", flags.remoteExtBaseUrl));
  }
  return needs;
}

/**
 * The hosts a spec makes the manager connect to: every pageserver's
 * `libpq_url`, every safekeeper, and the endpoint storage (LFC state). Each
 * names the field it came from.
 */
export function specRequirements(pspec: ParsedSpec): Requirement[] {
  const { spec } = pspec;
  const settingsField = (name: string) => `the spec's cluster.settings ${name}`;
  const pageserverField = spec.pageserver_connection_info
    ? "the spec's pageserver_connection_info"
    : spec.pageserver_connstring
    ? "the spec's pageserver_connstring"
    : settingsField("neon.pageserver_connstring");
  const needs: Requirement[] = [];
  const info = pspec.pageserverConnInfo;
  for (const [key, shard] of Object.entries(info.shards)) {
    const shardName = info.shard_count === 0 && key === shardIndex(0, 0) ? "" : ` (shard ${key})`;
    for (const pageserver of shard.pageservers) {
      if (!pageserver.libpq_url) continue;
      needs.push(...urlRequirement(`${pageserverField}${shardName}`, pageserver.libpq_url));
    }
  }
  const safekeeperField = spec.safekeeper_connstrings.length > 0
    ? "the spec's safekeeper_connstrings"
    : settingsField("neon.safekeepers");
  for (const entry of pspec.safekeeperConnstrings) {
    needs.push(hostRequirement(`${safekeeperField} entry`, entry, 5454));
  }
  if (pspec.endpointStorageAddr !== undefined) {
    const field = spec.endpoint_storage_addr != null
      ? "the spec's endpoint_storage_addr"
      : settingsField("neon.endpoint_storage_addr");
    needs.push(hostRequirement(`${field} host`, pspec.endpointStorageAddr, 80));
  }
  return needs;
}

/**
 * The communicator socket of the Postgres in `pgdata`, which
 * `/autoscaling_metrics` connects to: Deno grants a unix socket only by its
 * exact path (`unix:<path>` in `net`).
 */
function communicatorRequirement(pgdata: string): Requirement {
  const path = `${pgdata.replace(/\/+$/, "")}/${COMMUNICATOR_SOCKET_NAME}`;
  return socketRequirement(`the communicator socket ${path} (GET /autoscaling_metrics)`, path);
}

/**
 * A warning when `/autoscaling_metrics` cannot work under these permissions
 * (it is optional: vanilla Postgres has no communicator), else undefined. A
 * socket path too long for a unix address is reached through a temporary
 * link whose name no grant can list in advance.
 */
export async function communicatorWarning(
  pgdata: string,
  query: PermissionQuery = denoPermissionQuery,
): Promise<string | undefined> {
  const need = communicatorRequirement(pgdata);
  if (
    new TextEncoder().encode(need.target.slice("unix:".length)).length >=
      MAX_DIRECT_SOCKET_PATH_BYTES
  ) {
    return `${need.subject}: the path is ${MAX_DIRECT_SOCKET_PATH_BYTES} bytes or longer, so it is ` +
      `reached through a temporary link in /tmp that no "net" grant can name: use a shorter --pgdata`;
  }
  const [refused] = await refusals([need], query);
  return refused;
}

/** A connection to the unix socket at `path`: Deno grants it only as `unix:<path>` in `net`. */
function socketRequirement(subject: string, path: string): Requirement {
  const target = `unix:${path}`;
  return { subject, access: ["connect"], target, grant: target };
}

/**
 * The refusals among `needs`: one line per requirement whose accesses are not
 * all granted, naming the setting and how to grant it. Empty when everything
 * is granted. A descriptor Deno cannot even parse counts as not granted.
 */
export async function refusals(
  needs: readonly Requirement[],
  query: PermissionQuery = denoPermissionQuery,
): Promise<string[]> {
  const lines: string[] = [];
  for (const need of needs) {
    const missing: Access[] = [];
    for (const access of need.access) {
      if (!(await isGranted(query, descriptor(access, need.target)))) missing.push(access);
    }
    if (missing.length > 0) lines.push(refusalMessage(need, missing));
  }
  return lines;
}

/**
 * Throws {@linkcode PermissionRefusedError} (a 400 at `/configure`) when the
 * spec names a host the process may not connect to; its message holds every
 * refusal, separated by `; `.
 */
export async function assertSpecGranted(
  pspec: ParsedSpec,
  query: PermissionQuery = denoPermissionQuery,
): Promise<void> {
  const refused = await refusals(specRequirements(pspec), query);
  if (refused.length > 0) throw new PermissionRefusedError(refused.join("; "));
}

/**
 * `config` itself once its spec (if any) names only granted hosts; else
 * rejects with {@linkcode PermissionRefusedError}. For configs fetched later
 * (a refresh), which are checked as the first one was.
 */
export async function grantedConfig(
  config: ComputeConfig,
  query: PermissionQuery = denoPermissionQuery,
): Promise<ComputeConfig> {
  if (config.spec != null) await assertSpecGranted(parseSpec(config.spec), query);
  return config;
}

/** The one-line refusal for `need`, whose `missing` accesses are not granted. */
function refusalMessage(need: Requirement, missing: readonly Access[]): string {
  const keys = [...new Set(missing.map((access) => PERMISSION_KEY[access]))];
  const flags = keys.map((key) => `--allow-${key}=${need.grant},<the set's "${key}" list>`);
  return `${need.subject} ${problem(missing)} under the permissions this process was started ` +
    `with: add ${JSON.stringify(need.grant)} to ${keys.map((key) => `"${key}"`).join(" and ")} ` +
    `in the "compute" permission set of deno.json, or run with ${flags.join(" ")}`;
}

function problem(missing: readonly Access[]): string {
  if (missing.includes("run")) return "cannot be run";
  if (missing.includes("connect")) return "cannot be reached";
  if (missing.includes("listen")) return "cannot be listened on";
  const adjectives = missing.map((access) => access === "read" ? "readable" : "writable");
  return `is not ${adjectives.join(" or ")}`;
}

async function isGranted(query: PermissionQuery, what: Deno.PermissionDescriptor) {
  try {
    return (await query(what)) === "granted";
  } catch {
    return false;
  }
}

function descriptor(access: Access, target: string): Deno.PermissionDescriptor {
  switch (access) {
    case "read":
    case "write":
      return { name: access, path: target };
    case "run":
      return { name: "run", command: target };
    case "connect":
    case "listen":
      return { name: "net", host: target };
  }
}

function pathRequirement(subject: string, access: Access[], path: string): Requirement {
  return { subject, access, target: path, grant: path };
}

function programRequirement(subject: string, program: string): Requirement {
  return { subject, access: ["run"], target: program, grant: program };
}

/** `pg_ctl` and friends live beside `--pgbin`; a bare name is looked up in PATH. */
function siblingOf(pgbin: string, name: string): string {
  const slash = pgbin.lastIndexOf("/");
  return slash < 0 ? name : `${pgbin.slice(0, slash + 1)}${name}`;
}

/** `host` as Deno's net descriptors write it: IPv6 addresses in brackets. */
function netHost(host: string): string {
  const bare = host.replace(/^\[(.*)\]$/, "$1");
  return bare.includes(":") ? `[${bare}]` : bare.toLowerCase();
}

/** A connection to `host:port`, named by `what` (e.g. `--control-plane-uri's host`). */
function netRequirement(what: string, host: string, port: number): Requirement {
  const grant = netHost(host);
  const target = `${grant}:${port}`;
  return { subject: `${what} ${target}`, access: ["connect"], target, grant };
}

const DEFAULT_PORTS: Record<string, number> = {
  "http:": 80,
  "https:": 443,
  "postgresql:": 5432,
  "postgres:": 5432,
};

/**
 * The host of a URL flag or field, never the URL itself (it may carry a
 * password). A URL that does not parse is left to its user, which reports it.
 */
function urlRequirement(what: string, text: string): Requirement[] {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return [];
  }
  const port = url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol] ?? 80;
  return [netRequirement(`${what} host`, url.hostname, port)];
}

/** A `host:port` entry (port optional, `[v6]:port` for IPv6). */
function hostRequirement(what: string, address: string, defaultPort: number): Requirement {
  const match = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d{1,5}))?$/.exec(address.trim());
  const host = match ? match[1] ?? match[2] : address;
  const port = match?.[3] ? Number(match[3]) : defaultPort;
  return netRequirement(what, host, port);
}

/**
 * The local Postgres of `--connstr`: its TCP host, or with `?host=/dir` its
 * unix socket `/dir/.s.PGSQL.<port>`, which Deno grants only by exact path.
 */
function postgresRequirement(connstr: URL): Requirement {
  const params = connstr.searchParams;
  const port = connstr.port ? Number(connstr.port) : Number(params.get("port") ?? 5432);
  const socketDir = params.get("host");
  if (socketDir?.startsWith("/")) {
    const path = `${socketDir.replace(/\/+$/, "")}/.s.PGSQL.${port}`;
    return socketRequirement(`--connstr's socket ${path}`, path);
  }
  const host = socketDir ?? (decodeURIComponent(connstr.hostname) || "localhost");
  return netRequirement("--connstr's host", host, port);
}

/** An HTTP server's address: Deno checks `host:port` when it binds. */
function listenRequirement(flag: string, bind: string, port: number): Requirement {
  const grant = netHost(bind);
  return {
    subject: `${flag} ${bind} (port ${port})`,
    access: ["listen"],
    target: `${grant}:${port}`,
    grant,
  };
}
