/**
 * @module
 * Fetching a basebackup from the pageserver into PGDATA, as compute_ctl does
 * (reference neon-01 §2.8a, neon-04 §A.3): a libpq connection to shard 0's
 * pageserver (password = storage auth token, `application_name=compute_ctl`,
 * `options=-c neon.compute_mode=<mode>`), the query
 * `basebackup <tenant> <timeline> [<lsn>] --gzip [--replica]` read as COPY OUT,
 * and the stream — byte counter → gunzip → tar — extracted straight into PGDATA
 * (`tar_extract.ts`).
 *
 * The tar reader skips end-of-archive zero blocks and the COPY is read to its
 * very end, so an ErrorResponse the pageserver sends after a complete tar still
 * fails the fetch (compute_ctl's `ignore_zeros`).
 */

import type { Buffer } from "node:buffer";
import { Socket } from "node:net";
import { createGunzip } from "node:zlib";
import pg from "pg";
import { sleep } from "../_async.ts";
import { closeClient } from "./_pg_client.ts";
import { to as copyTo } from "pg-copy-streams";
import { formatLsn, type Lsn } from "../api/lsn.ts";
import { type ComputeMode, computeModeName } from "../api/spec.ts";
import { errorMessage, getLogger } from "../log.ts";

import { extractTarInto } from "./tar_extract.ts";

export { extractTarInto, tarEntryPath, UnsafeTarEntryError } from "./tar_extract.ts";

const log = getLogger("basebackup");

/**
 * Output chunk of the gunzip: a quarter of what the extraction keeps in
 * flight, so writes overlap; larger chunks extract no faster and leave more
 * heap behind.
 */
const GUNZIP_CHUNK = 256 * 1024;

/** What to fetch, from where, and into which directory. */
export interface BasebackupRequest {
  /** Shard 0's first pageserver, e.g. `postgresql://no_user@127.0.0.1:6400`. */
  libpqUrl: string;
  tenantId: string;
  timelineId: string;
  /** `0n` means latest (the LSN is then left out of the command). */
  lsn: Lsn;
  mode: ComputeMode;
  /** The (freshly recreated) data directory to extract into. */
  pgdata: string;
  /** Replaces any password in `libpqUrl`. */
  authToken?: string;
  /** Ask for and gunzip a gzip stream; `true` (compute_ctl always does). */
  gzip?: boolean;
}

/** What one successful fetch measured. */
export interface BasebackupResult {
  /** Time to establish the libpq connection (`pageserver_connect_micros`). */
  connectMicros: number;
  /** Bytes read from the COPY, before gunzip (`basebackup_bytes`). */
  bytes: number;
}

/** Options of {@link fetchBasebackupWithRetries}. */
export interface BasebackupRetryOptions {
  /** Total attempts; 11 (compute_ctl's 10 retries) by default. */
  attempts?: number;
  /** Sleep before the first retry; 500 ms by default. */
  baseDelayMs?: number;
  /** Each next sleep is this much longer; 1.5 by default. */
  factor?: number;
  /** Aborts the running attempt and the waiting between attempts. */
  signal?: AbortSignal;
  /** Called after a failed attempt that will be retried. */
  onRetry?: (event: { attempt: number; error: unknown; delayMs: number }) => void;
}

/** A failed basebackup; the message starts `failed to get basebackup@<lsn>`. */
export class BasebackupError extends Error {
  constructor(lsn: Lsn, cause: unknown) {
    super(`failed to get basebackup@${formatLsn(lsn)}: ${errorMessage(cause)}`, { cause });
    this.name = "BasebackupError";
  }
}

/**
 * The exact query compute_ctl sends: `basebackup <t> <tl> [<lsn>] --gzip [--replica]`;
 * the LSN is left out when it is `0/0`, `--replica` is added for every mode but
 * Primary, and `--gzip` is left out only when `gzip: false` is asked for.
 */
export function basebackupCommand(
  request: Pick<BasebackupRequest, "tenantId" | "timelineId" | "lsn" | "mode" | "gzip">,
): string {
  const words = ["basebackup", request.tenantId, request.timelineId];
  if (request.lsn !== 0n) words.push(formatLsn(request.lsn));
  if (request.gzip ?? true) words.push("--gzip");
  if (computeModeName(request.mode) !== "primary") words.push("--replica");
  return words.join(" ");
}

/**
 * Turns a libpq URL (`postgresql://user:password@host:port/db`) into an npm:pg
 * client config; every field is explicit so npm:pg consults as few `PG*`
 * environment variables as it can.
 */
export function libpqClientConfig(
  libpqUrl: string,
  extra: { password?: string; applicationName: string; options?: string },
): pg.ClientConfig {
  let url: URL;
  try {
    url = new URL(libpqUrl);
  } catch {
    throw new Error(`invalid libpq URL ${JSON.stringify(libpqUrl)}`);
  }
  if (url.protocol !== "postgresql:" && url.protocol !== "postgres:") {
    throw new Error(`invalid libpq URL ${JSON.stringify(libpqUrl)}: not postgresql://`);
  }
  const user = decodeURIComponent(url.username) || "no_user";
  const database = decodeURIComponent(url.pathname.replace(/^\//, "")) || user;
  const password = extra.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port ? Number(url.port) : 5432,
    user,
    database,
    password,
    application_name: extra.applicationName,
    options: extra.options,
    ssl: false,
    connectionTimeoutMillis: 0,
  };
}

/**
 * Fetches one basebackup into `request.pgdata` (overwriting what is there) and
 * returns the connect time and compressed size. Throws {@link BasebackupError}.
 */
export async function fetchBasebackup(
  request: BasebackupRequest,
  options: { signal?: AbortSignal } = {},
): Promise<BasebackupResult> {
  try {
    return await fetchOnce(request, options.signal);
  } catch (error) {
    throw new BasebackupError(request.lsn, error);
  }
}

/**
 * {@link fetchBasebackup} with compute_ctl's retries: up to `attempts` tries,
 * sleeping `baseDelayMs × factor^n` between them; PGDATA is not cleaned between
 * attempts (the tar overwrites). Returns the result and how many attempts it took.
 */
export async function fetchBasebackupWithRetries(
  request: BasebackupRequest,
  options: BasebackupRetryOptions = {},
): Promise<BasebackupResult & { attempts: number }> {
  const { attempts = 11, baseDelayMs = 500, factor = 1.5, signal, onRetry } = options;
  for (let attempt = 1;; attempt++) {
    signal?.throwIfAborted();
    try {
      return { ...(await fetchBasebackup(request, { signal })), attempts: attempt };
    } catch (error) {
      if (attempt >= attempts || signal?.aborted) throw error;
      const delayMs = Math.round(baseDelayMs * factor ** (attempt - 1));
      log.warn("basebackup attempt failed; retrying", {
        attempt,
        delay_ms: delayMs,
        error: errorMessage(error),
      });
      onRetry?.({ attempt, error, delayMs });
      await sleep(delayMs, signal);
    }
  }
}

async function fetchOnce(
  request: BasebackupRequest,
  signal?: AbortSignal,
): Promise<BasebackupResult> {
  if (!request.libpqUrl) throw new Error("no pageserver libpq URL for shard 0");
  signal?.throwIfAborted();
  const socket = new Socket();
  const client = new pg.Client({
    ...libpqClientConfig(request.libpqUrl, {
      password: request.authToken,
      applicationName: "compute_ctl",
      options: `-c neon.compute_mode=${computeModeName(request.mode)}`,
    }),
    stream: () => socket,
  });
  client.on("error", () => {}); // errors surface through connect() and the COPY stream
  const abort = () => socket.destroy(new Error("basebackup aborted"));
  signal?.addEventListener("abort", abort, { once: true });
  try {
    const started = performance.now();
    await client.connect();
    const connectMicros = Math.round((performance.now() - started) * 1000);
    const copy = client.query(copyTo(basebackupCommand(request)));
    const counter = { bytes: 0 };
    const tar = tarStream(copy, counter, request.gzip ?? true);
    await extractTarInto(request.pgdata, tar);
    return { connectMicros, bytes: counter.bytes };
  } finally {
    signal?.removeEventListener("abort", abort);
    await closeClient(client, socket);
  }
}

/**
 * The COPY payload (counted), gunzipped when asked (node:zlib: about twice
 * as fast as `DecompressionStream` here). The COPY is read to its end, so its
 * error after the last byte still surfaces.
 */
async function* tarStream(
  copy: AsyncIterable<Buffer>,
  counter: { bytes: number },
  gzip: boolean,
): AsyncGenerator<Uint8Array> {
  if (!gzip) {
    for await (const chunk of copy) {
      counter.bytes += chunk.length;
      yield chunk;
    }
    return;
  }
  const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK });
  const feeding = (async () => {
    for await (const chunk of copy) {
      counter.bytes += chunk.length;
      if (gunzip.destroyed) return; // the reader stopped: leave the rest to closing the client
      if (!gunzip.write(chunk)) await drainedOrClosed(gunzip);
    }
    gunzip.end();
  })().catch((error) => gunzip.destroy(error));
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) yield chunk;
    await feeding;
  } finally {
    gunzip.destroy();
  }
}

function drainedOrClosed(stream: ReturnType<typeof createGunzip>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}
