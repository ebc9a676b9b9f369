/**
 * @module
 * Log sequence numbers as Neon writes them: `"HI/LO"`, two hexadecimal halves of a
 * 64-bit WAL position, printed upper-case without zero padding (`"0/169AD58"`).
 * An `Lsn` is a `bigint`, so comparison (`<`) and arithmetic (`+`) are the
 * language's own.
 */

import { z } from "zod";

/** A WAL position. `0n` means "none" or "latest", as in the reference. */
export type Lsn = bigint;

/** The invalid / unset LSN. */
export const INVALID_LSN: Lsn = 0n;

const U32_MAX = 0xffff_ffffn;
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Thrown when a string is not an `X/Y` LSN. */
export class LsnError extends Error {
  constructor(text: string) {
    super(`invalid LSN: ${JSON.stringify(text)}`);
    this.name = "LsnError";
  }
}

/**
 * Parses `X/Y` (hex halves, any case, surrounding whitespace ignored, exactly one
 * `/`, each half at most 32 bits) into an `Lsn`.
 */
export function parseLsn(text: string): Lsn {
  const parts = text.trim().split("/");
  if (parts.length !== 2) throw new LsnError(text);
  const [hi, lo] = parts.map((part) => {
    if (!/^[0-9a-fA-F]{1,8}$/.test(part)) throw new LsnError(text);
    return BigInt(`0x${part}`);
  });
  if (hi > U32_MAX || lo > U32_MAX) throw new LsnError(text);
  return (hi << 32n) | lo;
}

/** Prints an `Lsn` as `X/Y`, upper-case hex, no padding. */
export function formatLsn(lsn: Lsn): string {
  if (lsn < 0n || lsn > U64_MAX) throw new RangeError(`LSN out of range: ${lsn}`);
  const hi = (lsn >> 32n).toString(16).toUpperCase();
  const lo = (lsn & U32_MAX).toString(16).toUpperCase();
  return `${hi}/${lo}`;
}

/** Adds a byte offset to an LSN, refusing to wrap past 2^64 - 1. */
export function addLsn(lsn: Lsn, bytes: bigint | number): Lsn {
  const sum = lsn + BigInt(bytes);
  if (sum < 0n || sum > U64_MAX) throw new RangeError(`LSN overflow: ${lsn} + ${bytes}`);
  return sum;
}

/** zod schema for the JSON form of an LSN: a string `X/Y`, parsed to `Lsn`. */
export const lsnSchema = z.string().transform((text, ctx) => {
  try {
    return parseLsn(text);
  } catch {
    ctx.addIssue({ code: "custom", message: `invalid LSN: ${JSON.stringify(text)}` });
    return z.NEVER;
  }
});
