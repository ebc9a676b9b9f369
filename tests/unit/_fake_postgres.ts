/**
 * A fake Postgres for the readiness checks: it reads a startup packet and
 * answers with one message, as a real server's first answer would be
 * (`trust`: AuthenticationOk; `auth`: an md5 password request; `starting`:
 * FATAL 57P03; `denied`: FATAL 28P01; `silent`: nothing). It records each
 * startup packet's parameters, and what the client sent after it.
 */

/** How the fake answers a startup packet. */
export type FakeAnswer = "trust" | "auth" | "starting" | "denied" | "silent";

/** A listening fake; `await using` stops it. */
export interface FakeServer extends AsyncDisposable {
  port: number;
  /** The parameters of each startup packet received. */
  startups: Map<string, string>[];
  /** The bytes each client sent after its startup packet, once it hung up. */
  afterwards: Uint8Array[];
  /** A port on 127.0.0.1 where nothing listens. */
  closedPort(): Promise<number>;
}

/** One backend message: type byte, length, body. */
export function message(type: string, body: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(5 + body.length);
  bytes[0] = type.charCodeAt(0);
  new DataView(bytes.buffer).setInt32(1, 4 + body.length);
  bytes.set(body, 5);
  return bytes;
}

function errorResponse(code: string, text: string): Uint8Array {
  return message("E", new TextEncoder().encode(`SFATAL\0C${code}\0M${text}\0\0`));
}

const ANSWERS: Record<Exclude<FakeAnswer, "silent">, Uint8Array> = {
  trust: message("R", new Uint8Array([0, 0, 0, 0])),
  auth: message("R", new Uint8Array([0, 0, 0, 5, 1, 2, 3, 4])),
  starting: errorResponse("57P03", "the database system is starting up"),
  denied: errorResponse("28P01", 'password authentication failed for user "u"'),
};

async function readStartup(conn: Deno.Conn): Promise<Map<string, string>> {
  let received = new Uint8Array(0);
  const chunk = new Uint8Array(1024);
  while (received.length < 4 || received.length < new DataView(received.buffer).getInt32(0)) {
    const read = await conn.read(chunk);
    if (read === null) break;
    const grown = new Uint8Array(received.length + read);
    grown.set(received);
    grown.set(chunk.subarray(0, read), received.length);
    received = grown;
  }
  const parts = new TextDecoder().decode(received.subarray(8)).split("\0");
  const parameters = new Map<string, string>();
  for (let i = 0; i + 1 < parts.length && parts[i] !== ""; i += 2) {
    parameters.set(parts[i], parts[i + 1]);
  }
  return parameters;
}

/** Starts a fake on 127.0.0.1 that answers every startup packet with `answer`. */
export function fakeServer(answer: FakeAnswer): FakeServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const startups: Map<string, string>[] = [];
  const afterwards: Uint8Array[] = [];
  const open = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      open.add(conn);
      (async () => {
        startups.push(await readStartup(conn));
        if (answer !== "silent") await conn.write(ANSWERS[answer]);
        // Wait for the client to hang up (or for the fake to stop).
        const sent: number[] = [];
        const chunk = new Uint8Array(64);
        for (let read; (read = await conn.read(chunk)) !== null;) {
          sent.push(...chunk.subarray(0, read));
        }
        afterwards.push(new Uint8Array(sent));
      })().catch(() => {}).finally(() => {
        open.delete(conn);
        try {
          conn.close();
        } catch {
          // closed by stop
        }
      });
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    startups,
    afterwards,
    closedPort: () => {
      const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const { port } = probe.addr as Deno.NetAddr;
      probe.close();
      return Promise.resolve(port);
    },
    [Symbol.asyncDispose]: async () => {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
      await serving;
    },
  };
}
