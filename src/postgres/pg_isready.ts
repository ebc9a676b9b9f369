/**
 * @module
 * `pg_isready` against the local Postgres, for `GET /hadron_liveness_probe`:
 * the port comes from `--connstr` (it must be stated there), and so does the
 * host, so the probe also works when Postgres's unix socket is not in the
 * default directory. An install without `pg_isready` (PostgreSQL from npm),
 * or a permission set without it, gets the same check in-process.
 */

import { pingPostgres } from "./pg_ping.ts";
import { isMissingProgram, mayRun, siblingBinary } from "./programs.ts";

/** The connection string names no port (HTTP 500 with this message). */
export class MissingPortError extends Error {
  override name = "MissingPortError";
  constructor() {
    super("Failed to get the port from the connection string");
  }
}

/** Where to probe: the explicit port of `connstr`, its host, user and database. */
export interface ProbeTarget {
  port: number;
  /** Host name, address or socket directory; absent when the URL names none. */
  host?: string;
  /** The URL's user, if any (the in-process check introduces itself as it). */
  user?: string;
  /** The database the URL names (default: the user's name, then `postgres`). */
  database: string;
}

/**
 * The port stated in the `--connstr` URL (the authority's, or `?port=`) and
 * its host; throws {@linkcode MissingPortError} when there is no explicit port.
 */
export function probeTarget(connstr: string): ProbeTarget {
  let url: URL;
  try {
    url = new URL(connstr);
  } catch {
    throw new MissingPortError();
  }
  const port = url.port || url.searchParams.get("port");
  if (!port || !/^\d+$/.test(port)) throw new MissingPortError();
  const host = url.searchParams.get("host") ??
    (decodeURIComponent(url.hostname.replace(/^\[(.*)\]$/, "$1")) || undefined);
  const user = url.searchParams.get("user") ?? (decodeURIComponent(url.username) || undefined);
  const database = decodeURIComponent(url.pathname.replace(/^\//, "")) ||
    url.searchParams.get("dbname") || user || "postgres";
  return {
    port: Number(port),
    ...(host === undefined ? {} : { host }),
    ...(user === undefined ? {} : { user }),
    database,
  };
}

/** pg_isready's arguments for `target`. */
export function pgIsReadyArgs({ port, host }: Pick<ProbeTarget, "port" | "host">): string[] {
  return host === undefined ? ["-p", String(port)] : ["-h", host, "-p", String(port)];
}

/** Binaries found missing once: not tried again by this process. */
const missing = new Set<string>();

/**
 * Resolves when the Postgres at `target` accepts connections. Runs
 * `<dirname(pgbin)>/pg_isready` when the install has it and this process may
 * run it; its failure throws `could not run \`<bin> --port <port>\`` (the
 * reference's message) with the spawn error or exit status as `cause`.
 * Otherwise asks in-process with the same meaning ({@linkcode pingPostgres}),
 * and throws naming the address and the outcome.
 */
export async function pgIsReady(pgbin: string, target: ProbeTarget): Promise<void> {
  const bin = siblingBinary(pgbin, "pg_isready");
  if (!missing.has(bin) && await mayRun(bin)) {
    const ran = await runPgIsReady(bin, target);
    if (ran) return;
    missing.add(bin);
  }
  const result = await pingPostgres({ ...target, user: target.user ?? "postgres" });
  if (result.state === "accepting") return;
  const where = target.host?.startsWith("/")
    ? `${target.host.replace(/\/+$/, "")}/.s.PGSQL.${target.port}`
    : `${target.host ?? "localhost"}:${target.port}`;
  const detail = result.detail ? `: ${result.detail}` : "";
  throw new Error(
    result.state === "rejecting"
      ? `Postgres at ${where} rejects connections${detail}`
      : `no response from Postgres at ${where}${detail}`,
  );
}

/** Runs pg_isready; true once it said "accepting", false when the binary does not exist. */
async function runPgIsReady(bin: string, target: ProbeTarget): Promise<boolean> {
  const failed = (cause: unknown) =>
    new Error(`could not run \`${bin} --port ${target.port}\``, { cause });
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(bin, {
      args: pgIsReadyArgs(target),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (isMissingProgram(error)) return false;
    throw failed(new Error("spawn() failed", { cause: error }));
  }
  if (!output.success) {
    const said = new TextDecoder().decode(output.stdout).trim();
    throw failed(new Error(`process exited with exit status: ${output.code}: ${said}`));
  }
  return true;
}
