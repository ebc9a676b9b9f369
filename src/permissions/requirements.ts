/**
 * @module
 * What a setting makes the manager use, as Deno permissions: a
 * {@linkcode Requirement} names the setting as the operator wrote it and lists
 * each access it needs with the grant that allows it. The constructors here
 * turn paths, programs, URLs, `host:port` entries, unix sockets and listen
 * addresses into requirements. Pure.
 */

/** What the manager does with a target: the Deno permission it needs. */
export type Access = "read" | "write" | "run" | "connect" | "listen";

/** One access to one target, and the entry that grants it. */
export interface Need {
  access: Access;
  /**
   * What is queried: a path (read, write), a program (run), or `host:port` /
   * `unix:<socket path>` (connect, listen).
   */
  target: string;
  /** The entry that grants it: the path or program, or the host without its port. */
  grant: string;
}

/** Everything one setting makes the manager use; refused in one line when any need is missing. */
export interface Requirement {
  /** The setting as the operator wrote it, e.g. `--pgdata /srv/pg`. */
  subject: string;
  needs: readonly Need[];
  /** The subject names several things ("are not writable"). */
  plural?: boolean;
}

/** The `deno.json` permission key (and `--allow-…` flag) of each access. */
export const PERMISSION_KEY: Record<Access, string> = {
  read: "read",
  write: "write",
  run: "run",
  connect: "net",
  listen: "net",
};

/** `access` to each path in `paths` (read, write), granted by the path itself. */
export function pathRequirement(
  subject: string,
  access: readonly Access[],
  paths: readonly string[],
  plural = false,
): Requirement {
  const needs = paths.flatMap((path) =>
    access.map((each) => ({ access: each, target: path, grant: path }))
  );
  return { subject, needs, plural };
}

/** Running each of `programs`, granted by its exact path (Deno's `run` takes no directories). */
export function programNeeds(programs: readonly string[]): Need[] {
  return programs.map((program) => ({ access: "run", target: program, grant: program }));
}

/** A connection to the unix socket at `path`: Deno grants it only as `unix:<path>` in `net`. */
export function socketRequirement(subject: string, path: string): Requirement {
  const target = `unix:${path}`;
  return { subject, needs: [{ access: "connect", target, grant: target }] };
}

/** `host` as Deno's net descriptors write it: IPv6 addresses in brackets. */
function netHost(host: string): string {
  const bare = host.replace(/^\[(.*)\]$/, "$1");
  return bare.includes(":") ? `[${bare}]` : bare.toLowerCase();
}

/** A connection to `host:port`, named by `what` (e.g. `--control-plane-uri's host`). */
export function netRequirement(what: string, host: string, port: number): Requirement {
  const grant = netHost(host);
  const target = `${grant}:${port}`;
  return { subject: `${what} ${target}`, needs: [{ access: "connect", target, grant }] };
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
export function urlRequirement(what: string, text: string): Requirement[] {
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
export function hostRequirement(what: string, address: string, defaultPort: number): Requirement {
  const match = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d{1,5}))?$/.exec(address.trim());
  const host = match ? match[1] ?? match[2] : address;
  const port = match?.[3] ? Number(match[3]) : defaultPort;
  return netRequirement(what, host, port);
}

/**
 * The local Postgres of `--connstr`: its TCP host, or with `?host=/dir` its
 * unix socket `/dir/.s.PGSQL.<port>`, which Deno grants only by exact path.
 */
export function postgresRequirement(connstr: URL): Requirement {
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
export function listenRequirement(flag: string, bind: string, port: number): Requirement {
  const grant = netHost(bind);
  return {
    subject: `${flag} ${bind} (port ${port})`,
    needs: [{ access: "listen", target: `${grant}:${port}`, grant }],
  };
}
