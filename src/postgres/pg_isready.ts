/**
 * @module
 * `pg_isready` against the local Postgres, for `GET /hadron_liveness_probe`:
 * the port comes from `--connstr` (it must be stated there), and so does the
 * host, so the probe also works when Postgres's unix socket is not in the
 * default directory.
 */

import { siblingBinary } from "./process.ts";

/** The connection string names no port (HTTP 500 with this message). */
export class MissingPortError extends Error {
  override name = "MissingPortError";
  constructor() {
    super("Failed to get the port from the connection string");
  }
}

/** Where to probe: the explicit port of `connstr` and its host, if any. */
export interface ProbeTarget {
  port: number;
  /** Host name, address or socket directory; absent when the URL names none. */
  host?: string;
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
  return host === undefined ? { port: Number(port) } : { port: Number(port), host };
}

/** pg_isready's arguments for `target`. */
export function pgIsReadyArgs({ port, host }: ProbeTarget): string[] {
  return host === undefined ? ["-p", String(port)] : ["-h", host, "-p", String(port)];
}

/**
 * Runs `<dirname(pgbin)>/pg_isready` for `target`; resolves when it exits 0.
 * Otherwise throws `could not run \`<bin> --port <port>\`` (the reference's
 * message) with the spawn error or exit status as `cause`.
 */
export async function pgIsReady(pgbin: string, target: ProbeTarget): Promise<void> {
  const bin = siblingBinary(pgbin, "pg_isready");
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
    throw failed(new Error("spawn() failed", { cause: error }));
  }
  if (!output.success) {
    const said = new TextDecoder().decode(output.stdout).trim();
    throw failed(new Error(`process exited with exit status: ${output.code}: ${said}`));
  }
}
