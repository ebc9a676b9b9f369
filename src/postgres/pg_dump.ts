/**
 * @module
 * `pg_dump --schema-only` of one database, streamed (`GET /database_schema`).
 * The database name travels in `PGDATABASE`, never on the command line, so
 * names with `=` or spaces cannot be read as a connection string; host, port
 * and user come from `--connstr`. The dump is only handed out once its first
 * bytes arrived: a dump that produces nothing is an error, and "database does
 * not exist" is recognised from pg_dump's first stderr line. Cancelling the
 * stream (the client went away) kills pg_dump.
 */

import { getLogger } from "../log.ts";
import { isMissingProgram, programStatus, siblingBinary } from "./programs.ts";

const log = getLogger("pg_dump");

/**
 * Why a dump could not start; `kind` picks the HTTP answer. `unavailable`:
 * the install has no pg_dump (PostgreSQL from npm has none) or this process
 * may not run it; the message says which.
 */
export class SchemaDumpError extends Error {
  constructor(
    readonly kind: "database_does_not_exist" | "io" | "unavailable" | "unexpected",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "SchemaDumpError";
  }
}

/** Where pg_dump connects: host (name, address or socket directory), port and user. */
export interface DumpTarget {
  host: string;
  port: number;
  user: string;
}

/**
 * Host, port and user of `connstr` (a `postgres://` URL; `?host=`, `?port=`,
 * `?user=` override). All three must be stated explicitly, as the reference
 * requires; otherwise throws a {@linkcode SchemaDumpError} of kind `unexpected`.
 */
export function dumpTarget(connstr: string): DumpTarget {
  let url: URL;
  try {
    url = new URL(connstr);
  } catch (error) {
    throw new SchemaDumpError("unexpected", "invalid connection string", { cause: error });
  }
  const params = url.searchParams;
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const host = params.get("host") ?? (decodeURIComponent(hostname) || null);
  const port = url.port || params.get("port");
  const user = params.get("user") ?? (decodeURIComponent(url.username) || null);
  if (host === null || !port || user === null) {
    throw new SchemaDumpError("unexpected", "connection string lacks a host, port or user");
  }
  return { host, port: Number(port), user };
}

/** pg_dump's arguments for `target` (the database comes from `PGDATABASE`). */
export function pgDumpArgs({ host, port, user }: DumpTarget): string[] {
  return ["--host", host, "--port", String(port), "--username", user, "--schema-only"];
}

/** Whether a pg_dump stderr line says that `database` does not exist (note the two spaces). */
export function isMissingDatabaseLine(line: string, database: string): boolean {
  return line.includes(`FATAL:  database "${database}" does not exist`);
}

/** What {@linkcode dumpSchema} needs. */
export interface DumpSchemaOptions {
  /** `--pgbin`; pg_dump is its sibling. */
  pgbin: string;
  /** `--connstr`. */
  connstr: string;
  database: string;
}

/**
 * Starts pg_dump and waits for its first output. Resolves with the dump as a
 * byte stream (cancel it to kill pg_dump); throws a {@linkcode
 * SchemaDumpError}: `database_does_not_exist`, `unavailable` (no pg_dump in
 * the install, or not granted), `io` (spawn failure, or no output at all), or
 * `unexpected` (see {@linkcode dumpTarget}). pg_dump's stderr is logged as
 * warnings.
 */
export async function dumpSchema(
  { pgbin, connstr, database }: DumpSchemaOptions,
): Promise<ReadableStream<Uint8Array>> {
  const target = dumpTarget(connstr);
  const bin = siblingBinary(pgbin, "pg_dump");
  await assertPgDumpUsable(pgbin, bin);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(bin, {
      args: pgDumpArgs(target),
      env: { PGDATABASE: database },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (isMissingProgram(error)) throw missingPgDump(bin);
    throw new SchemaDumpError("io", `could not start ${bin}`, { cause: error });
  }
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
  };
  const stdout = child.stdout.getReader();
  const stderr = lines(child.stderr);

  let first: ReadableStreamReadResult<Uint8Array>;
  try {
    first = await stdout.read();
  } catch (error) {
    kill();
    drain(stderr);
    throw new SchemaDumpError("io", "reading pg_dump output failed", { cause: error });
  }
  if (first.done || first.value.byteLength === 0) {
    const line = await stderr.next().catch(() => ({ done: true as const, value: undefined }));
    kill();
    await stdout.cancel().catch(() => {});
    await child.status;
    if (!line.done) {
      if (isMissingDatabaseLine(line.value, database)) {
        drain(stderr);
        throw new SchemaDumpError("database_does_not_exist", "database does not exist");
      }
      log.warn(`pg_dump stderr: ${line.value}`);
    }
    drain(stderr);
    throw new SchemaDumpError("io", "failed to start pg_dump");
  }
  drain(stderr);
  child.status.then((status) => {
    if (!status.success) log.warn(`pg_dump exited with code ${status.code}`, { database });
  });

  let pending: Uint8Array | null = first.value;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (pending !== null) {
        controller.enqueue(pending);
        pending = null;
        return;
      }
      try {
        const next = await stdout.read();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (error) {
        // A failed read, or a read that finished after the stream was cancelled.
        kill();
        controller.error(error);
      }
    },
    async cancel() {
      kill();
      await stdout.cancel().catch(() => {});
    },
  });
}

/** Throws `unavailable` when the install has no pg_dump or this process may not run it. */
async function assertPgDumpUsable(pgbin: string, bin: string): Promise<void> {
  const status = await programStatus(pgbin, "pg_dump");
  if (status === "missing") throw missingPgDump(bin);
  if (status === "not_granted") {
    throw new SchemaDumpError(
      "unavailable",
      `${bin} may not be run under the permissions this process was started with: add ` +
        `${JSON.stringify(bin)} to "run" in the "compute" permission set of deno.json, or run ` +
        `with --allow-run=${bin},<the set's "run" list>`,
    );
  }
}

function missingPgDump(bin: string): SchemaDumpError {
  return new SchemaDumpError(
    "unavailable",
    `${bin} does not exist: pg_dump is not part of this PostgreSQL install`,
  );
}

/** The lines of a byte stream, decoded as UTF-8 (invalid bytes replaced). */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    buffered += text;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, newline).replace(/\r$/, "");
      buffered = buffered.slice(newline + 1);
    }
  }
  if (buffered !== "") yield buffered;
}

/** Logs the remaining stderr lines in the background. */
function drain(stderr: AsyncGenerator<string>): void {
  (async () => {
    for await (const line of stderr) log.warn(`pg_dump stderr: ${line}`);
  })().catch(() => {});
}
