/**
 * @module
 * The backend messages the harness's libpq servers send: authentication
 * requests, ParameterStatus, RowDescription of text columns (laid out as Neon's
 * `RowDescriptor::text_col`), DataRow, and ErrorResponse with exactly the
 * fields `S`, `C` and `M`, as Neon's `postgres_backend` writes them.
 */

import { concatBytes, cstring, frame, int16, int32 } from "./_wire.ts";

const TEXT_OID = 25;

/** An error to report: its message and SQLSTATE. */
export interface ReportedError {
  message: string;
  code: string;
}

const encoder = new TextEncoder();
export const READY_FOR_QUERY = frame("Z", encoder.encode("I"));

export function authenticationMessage(code: number): Uint8Array {
  return frame("R", int32(code));
}

export function parameterStatus(name: string, value: string): Uint8Array {
  return frame("S", concatBytes([cstring(name), cstring(value)]));
}

export function rowDescription(columns: readonly string[]): Uint8Array {
  const parts = [int16(columns.length)];
  for (const name of columns) {
    // table oid, attnum, type oid (text), typlen, typmod, format code
    parts.push(cstring(name), int32(0), int16(0), int32(TEXT_OID), int16(-1), int32(-1), int16(0));
  }
  return frame("T", concatBytes(parts));
}

export function dataRow(values: readonly (string | null)[]): Uint8Array {
  const parts = [int16(values.length)];
  for (const value of values) {
    if (value === null) {
      parts.push(int32(-1));
    } else {
      const bytes = encoder.encode(value);
      parts.push(int32(bytes.length), bytes);
    }
  }
  return frame("D", concatBytes(parts));
}

export function errorResponse(error: ReportedError): Uint8Array {
  const field = (tag: string, value: string) => concatBytes([encoder.encode(tag), cstring(value)]);
  return frame(
    "E",
    concatBytes([
      field("S", "ERROR"),
      field("C", error.code),
      field("M", error.message),
      new Uint8Array([0]),
    ]),
  );
}

export function firstCString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end === -1 ? bytes : bytes.subarray(0, end));
}
