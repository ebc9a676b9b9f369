/**
 * @module
 * The CopyData payloads of PostgreSQL's physical streaming replication
 * (protocol "Streaming Replication Protocol"): `XLogData` ('w') and primary
 * keepalives ('k') from the server, standby status updates ('r') and hot standby
 * feedback ('h') from the client. All integers are big-endian; times are
 * microseconds since 2000-01-01 00:00:00 UTC ({@link pgEpochMicros}).
 */

import type { Lsn } from "../src/api/lsn.ts";

/** WAL bytes sent by the server. */
export interface XLogData {
  tag: "w";
  /** LSN of the first byte of `data`. */
  dataStart: Lsn;
  /** The server's current end of WAL. */
  walEnd: Lsn;
  /** Server clock at sending, µs since the PostgreSQL epoch. */
  sendTime: bigint;
  data: Uint8Array;
}

/** The server's keepalive. */
export interface PrimaryKeepalive {
  tag: "k";
  walEnd: Lsn;
  sendTime: bigint;
  /** Whether the server asks for an immediate status update. */
  replyRequested: boolean;
}

/** The client's report of how far it has written, flushed and applied WAL. */
export interface StandbyStatusUpdate {
  tag: "r";
  write: Lsn;
  flush: Lsn;
  apply: Lsn;
  /** Client clock at sending, µs since the PostgreSQL epoch. */
  clientTime: bigint;
  /** Whether the client asks for an immediate keepalive. */
  replyRequested: boolean;
}

/** The client's oldest transaction ids still needed, with their epochs. */
export interface HotStandbyFeedback {
  tag: "h";
  clientTime: bigint;
  xmin: number;
  xminEpoch: number;
  catalogXmin: number;
  catalogXminEpoch: number;
}

/** A CopyData message the server sends during replication. */
export type BackendCopyData = XLogData | PrimaryKeepalive;
/** A CopyData message the client sends during replication. */
export type FrontendCopyData = StandbyStatusUpdate | HotStandbyFeedback;

/** Thrown when a payload is not a replication message this module knows. */
export class ReplicationCodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReplicationCodecError";
  }
}

/** 2000-01-01T00:00:00Z in Unix milliseconds. */
const PG_EPOCH_UNIX_MS = 946_684_800_000;

/** `date` as PostgreSQL's `TimestampTz`: microseconds since 2000-01-01 UTC. */
export function pgEpochMicros(date: Date = new Date()): bigint {
  return BigInt(date.getTime() - PG_EPOCH_UNIX_MS) * 1000n;
}

/** The `Date` of a PostgreSQL timestamp (sub-millisecond part dropped, rounding down). */
export function dateFromPgEpochMicros(micros: bigint): Date {
  const millis = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n);
  return new Date(Number(millis) + PG_EPOCH_UNIX_MS);
}

const SIZES = { w: 25, k: 18, r: 34, h: 25 } as const;
type Tag = keyof typeof SIZES;

function tagCode(tag: Tag): number {
  return tag.charCodeAt(0);
}

function describeTag(code: number): string {
  return code >= 0x20 && code < 0x7f ? `'${String.fromCharCode(code)}'` : `0x${code.toString(16)}`;
}

/** Checks a fixed-layout payload's length (at least, for 'w') and returns a view on it. */
function viewOf(payload: Uint8Array, tag: Tag): DataView {
  const size = SIZES[tag];
  if (payload.length < size || (tag !== "w" && payload.length > size)) {
    throw new ReplicationCodecError(
      `'${tag}' message must be ${
        tag === "w" ? "at least " : ""
      }${size} bytes, got ${payload.length}`,
    );
  }
  return new DataView(payload.buffer, payload.byteOffset, payload.length);
}

function tagOf(payload: Uint8Array): number {
  if (payload.length === 0) throw new ReplicationCodecError("empty CopyData payload");
  return payload[0];
}

/** Decodes a CopyData payload from the server ('w' or 'k'); `data` is a copy. */
export function decodeBackendCopyData(payload: Uint8Array): BackendCopyData {
  const code = tagOf(payload);
  if (code === tagCode("w")) {
    const view = viewOf(payload, "w");
    return {
      tag: "w",
      dataStart: view.getBigUint64(1),
      walEnd: view.getBigUint64(9),
      sendTime: view.getBigInt64(17),
      data: payload.slice(SIZES.w),
    };
  }
  if (code === tagCode("k")) {
    const view = viewOf(payload, "k");
    return {
      tag: "k",
      walEnd: view.getBigUint64(1),
      sendTime: view.getBigInt64(9),
      replyRequested: view.getUint8(17) !== 0,
    };
  }
  throw new ReplicationCodecError(`unknown replication message ${describeTag(code)} from server`);
}

/** Decodes a CopyData payload from the client ('r' or 'h'). */
export function decodeFrontendCopyData(payload: Uint8Array): FrontendCopyData {
  const code = tagOf(payload);
  if (code === tagCode("r")) {
    const view = viewOf(payload, "r");
    return {
      tag: "r",
      write: view.getBigUint64(1),
      flush: view.getBigUint64(9),
      apply: view.getBigUint64(17),
      clientTime: view.getBigInt64(25),
      replyRequested: view.getUint8(33) !== 0,
    };
  }
  if (code === tagCode("h")) {
    const view = viewOf(payload, "h");
    return {
      tag: "h",
      clientTime: view.getBigInt64(1),
      xmin: view.getUint32(9),
      xminEpoch: view.getUint32(13),
      catalogXmin: view.getUint32(17),
      catalogXminEpoch: view.getUint32(21),
    };
  }
  throw new ReplicationCodecError(`unknown replication message ${describeTag(code)} from client`);
}

/** Writes big-endian fields in order after a tag byte, checking each value's range. */
class PayloadWriter {
  readonly bytes: Uint8Array;
  readonly #view: DataView;
  #at = 1;

  constructor(tag: Tag, extra = 0) {
    this.bytes = new Uint8Array(SIZES[tag] + extra);
    this.bytes[0] = tagCode(tag);
    this.#view = new DataView(this.bytes.buffer);
  }

  u64(name: string, value: bigint): this {
    if (value < 0n || value > 0xffff_ffff_ffff_ffffn) throw rangeError(name, value);
    this.#view.setBigUint64(this.#at, value);
    return this.#skip(8);
  }

  i64(name: string, value: bigint): this {
    if (value !== BigInt.asIntN(64, value)) throw rangeError(name, value);
    this.#view.setBigInt64(this.#at, value);
    return this.#skip(8);
  }

  u32(name: string, value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw rangeError(name, value);
    this.#view.setUint32(this.#at, value);
    return this.#skip(4);
  }

  flag(value: boolean): this {
    this.#view.setUint8(this.#at, value ? 1 : 0);
    return this.#skip(1);
  }

  #skip(length: number): this {
    this.#at += length;
    return this;
  }
}

function rangeError(name: string, value: bigint | number): RangeError {
  return new RangeError(`${name} out of range: ${value}`);
}

/** The 'w' payload carrying `data`, which starts at `dataStart`. */
export function encodeXLogData(message: Omit<XLogData, "tag">): Uint8Array {
  const writer = new PayloadWriter("w", message.data.length)
    .u64("dataStart", message.dataStart)
    .u64("walEnd", message.walEnd)
    .i64("sendTime", message.sendTime);
  writer.bytes.set(message.data, SIZES.w);
  return writer.bytes;
}

/** The 'k' payload. */
export function encodeKeepalive(message: Omit<PrimaryKeepalive, "tag">): Uint8Array {
  return new PayloadWriter("k")
    .u64("walEnd", message.walEnd)
    .i64("sendTime", message.sendTime)
    .flag(message.replyRequested).bytes;
}

/** The 'r' payload. */
export function encodeStandbyStatusUpdate(message: Omit<StandbyStatusUpdate, "tag">): Uint8Array {
  return new PayloadWriter("r")
    .u64("write", message.write)
    .u64("flush", message.flush)
    .u64("apply", message.apply)
    .i64("clientTime", message.clientTime)
    .flag(message.replyRequested).bytes;
}

/** The 'h' payload. */
export function encodeHotStandbyFeedback(message: Omit<HotStandbyFeedback, "tag">): Uint8Array {
  return new PayloadWriter("h")
    .i64("clientTime", message.clientTime)
    .u32("xmin", message.xmin)
    .u32("xminEpoch", message.xminEpoch)
    .u32("catalogXmin", message.catalogXmin)
    .u32("catalogXminEpoch", message.catalogXminEpoch).bytes;
}
