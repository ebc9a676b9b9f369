/**
 * @module
 * The endpoint storage's LFC state object:
 * `http://<addr>/<tenant>/<timeline>/<endpoint>/lfc_state`, read with `GET` and
 * written with `PUT`, bearer-authenticated, zstd-compressed. Messages follow
 * Neon's so a `failed` state reads the same.
 */

import { promisify } from "node:util";
import { zstdCompress, zstdDecompress } from "node:zlib";
import { httpStatusLabel } from "./control_plane.ts";

const compress = promisify(zstdCompress);
const decompress = promisify(zstdDecompress);

/** Where one endpoint's LFC state lives and the token to reach it. */
export interface LfcStateLocation {
  url: string;
  token: string;
}

/** What the URL is made of. */
export interface LfcStateAddress {
  /** `host:port` of the endpoint storage. */
  addr: string;
  tenantId: string;
  timelineId: string;
  endpointId: string;
}

/** `http://<addr>/<tenant>/<timeline>/<endpoint>/lfc_state`. */
export function lfcStateUrl({ addr, tenantId, timelineId, endpointId }: LfcStateAddress): string {
  return `http://${addr}/${tenantId}/${timelineId}/${endpointId}/lfc_state`;
}

/**
 * Downloads the compressed state: the bytes, or null when the storage has
 * none (404). Throws for any other status or a network failure; an abort of
 * `signal` rejects with its reason.
 */
export async function fetchLfcState(
  location: LfcStateLocation,
  signal?: AbortSignal,
): Promise<Uint8Array | null> {
  let response: Response;
  try {
    response = await fetch(location.url, {
      headers: { authorization: `Bearer ${location.token}` },
      signal,
    });
  } catch (error) {
    signal?.throwIfAborted();
    throw new Error(`querying endpoint storage: ${(error as Error).message}`);
  }
  if (response.status === 404) {
    await response.body?.cancel();
    return null;
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new Error(`${httpStatusLabel(response.status)} querying endpoint storage`);
  }
  try {
    return new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    signal?.throwIfAborted();
    throw new Error(
      `getting request body from endpoint storage: ${(error as Error).message}`,
    );
  }
}

/** Uploads the compressed state; anything but 200 throws. */
export async function uploadLfcState(location: LfcStateLocation, body: Uint8Array): Promise<void> {
  let response: Response;
  try {
    response = await fetch(location.url, {
      method: "PUT",
      headers: { authorization: `Bearer ${location.token}` },
      body: body as Uint8Array<ArrayBuffer>,
    });
  } catch (error) {
    throw new Error(`writing to endpoint storage: ${(error as Error).message}`);
  }
  await response.body?.cancel();
  if (response.status !== 200) {
    throw new Error(`request failed with status: ${httpStatusLabel(response.status)}`);
  }
}

/** zstd-decompresses a downloaded state. */
export async function decompressLfcState(compressed: Uint8Array): Promise<Uint8Array> {
  try {
    return new Uint8Array(await decompress(compressed));
  } catch (error) {
    throw new Error(`decoding LFC state: ${(error as Error).message}`);
  }
}

/** zstd-compresses a state for upload. */
export async function compressLfcState(state: Uint8Array): Promise<Uint8Array> {
  try {
    return new Uint8Array(await compress(state));
  } catch (error) {
    throw new Error(`compressing LFC state: ${(error as Error).message}`);
  }
}
