/**
 * @module
 * Bytes of the PostgreSQL v3 protocol that both sides of the harness write and
 * read: message framing, C strings, big-endian integers, and a socket reader
 * that returns exactly the bytes asked for.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One message: its type byte, the length (itself included), then `body`. */
export function frame(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, 4 + body.length);
  out.set(body, 5);
  return out;
}

/** `text` in UTF-8 with its terminating NUL. */
export function cstring(text: string): Uint8Array {
  return concatBytes([encoder.encode(text), new Uint8Array([0])]);
}

export function int16(value: number): Uint8Array {
  const out = new Uint8Array(2);
  new DataView(out.buffer).setInt16(0, value);
  return out;
}

export function int32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, value);
  return out;
}

/** The NUL-terminated strings in `bytes`, in order (a trailing unterminated part is dropped). */
export function splitCStrings(bytes: Uint8Array): string[] {
  const strings: string[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0) continue;
    strings.push(decoder.decode(bytes.subarray(start, i)));
    start = i + 1;
  }
  return strings;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Reads exactly `length` bytes, or null once the peer closed (or the socket failed). */
export interface ByteReader {
  readExact(length: number): Promise<Uint8Array | null>;
}

/** A {@link ByteReader} over `socket`, reading `chunkSize` bytes at a time. */
export function createByteReader(socket: Deno.Conn, chunkSize = 64 * 1024): ByteReader {
  let pending: Uint8Array = new Uint8Array(0);
  const scratch = new Uint8Array(chunkSize);
  return {
    async readExact(length) {
      while (pending.length < length) {
        let count: number | null;
        try {
          count = await socket.read(scratch);
        } catch {
          return null;
        }
        if (count === null) return null;
        pending = concatBytes([pending, scratch.subarray(0, count)]);
      }
      const out = pending.slice(0, length);
      pending = pending.subarray(length);
      return out;
    },
  };
}

/**
 * Splits a startup `options` string into `key=value` pairs the way Neon does:
 * whitespace-separated tokens (a backslash escapes the next character), a bare
 * `-c` token skipped, a `-c` prefix stripped (`-ckey=value`), tokens without `=`
 * ignored. `"-c timeline_id=T tenant_id=X"` yields both keys.
 */
export function startupOptionPairs(options: string): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const token of splitOptionTokens(options)) {
    if (token === "-c") continue;
    const setting = token.startsWith("-c") ? token.slice(2) : token;
    const eq = setting.indexOf("=");
    if (eq <= 0) continue;
    pairs.set(setting.slice(0, eq), setting.slice(eq + 1));
  }
  return pairs;
}

function splitOptionTokens(options: string): string[] {
  const tokens: string[] = [];
  let current = "";
  let inToken = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i];
    if (/\s/.test(ch)) {
      if (inToken) tokens.push(current);
      current = "";
      inToken = false;
      continue;
    }
    inToken = true;
    if (ch === "\\" && i + 1 < options.length) {
      current += options[++i];
    } else {
      current += ch;
    }
  }
  if (inToken) tokens.push(current);
  return tokens;
}
