/**
 * `src/postgres/pg_ping.ts`: libpq's `PQping` rules, as `pg_isready` applies
 * them. The first answer decides: an authentication request or any error but
 * 57P03 is "accepting", 57P03 is "rejecting", silence, a hang-up or no
 * connection is "no response". Pure parts with bytes, the rest against a fake
 * server.
 */

import assert from "node:assert/strict";
import { classifyAnswer, pingPostgres, startupMessage } from "../../src/postgres/pg_ping.ts";
import { fakeServer, message } from "./_fake_postgres.ts";

const encoder = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return bytes;
}

Deno.test("startupMessage: protocol 3.0, user, database, application name", () => {
  const bytes = startupMessage({ user: "cloud_admin", database: "postgres" });
  const view = new DataView(bytes.buffer);
  assert.equal(view.getInt32(0), bytes.length);
  assert.equal(view.getInt32(4), 196608);
  assert.equal(
    new TextDecoder().decode(bytes.subarray(8)),
    "user\0cloud_admin\0database\0postgres\0application_name\0compute_ctl:liveness\0\0",
  );
});

Deno.test("classifyAnswer: PQping's rules on the first message", () => {
  const auth = message("R", new Uint8Array([0, 0, 0, 0]));
  const error = (code: string) =>
    message("E", encoder.encode(`SFATAL\0C${code}\0Mwords for ${code}\0\0`));
  assert.deepEqual(classifyAnswer(auth), { state: "accepting" });
  assert.deepEqual(classifyAnswer(error("57P03")), {
    state: "rejecting",
    detail: "words for 57P03",
  });
  for (const code of ["28P01", "3D000", "53300"]) {
    assert.deepEqual(classifyAnswer(error(code)), {
      state: "accepting",
      detail: `words for ${code}`,
    });
  }
  const notice = message("N", encoder.encode("SNOTICE\0Mhello\0\0"));
  assert.deepEqual(classifyAnswer(concat(notice, auth)), { state: "accepting" });
  assert.equal(classifyAnswer(auth.subarray(0, 7)), undefined, "incomplete: read on");
  assert.equal(classifyAnswer(new Uint8Array(0)), undefined);
  assert.equal(classifyAnswer(message("Z", encoder.encode("I")))?.state, "no_response");
});

Deno.test("pingPostgres against a fake server: each answer, silence and a closed port", async () => {
  const target = { host: "127.0.0.1", user: "u", database: "d" };
  for (
    const [answer, state] of [
      ["trust", "accepting"],
      ["auth", "accepting"],
      ["denied", "accepting"],
      ["starting", "rejecting"],
      ["silent", "no_response"],
    ] as const
  ) {
    await using server = fakeServer(answer);
    const result = await pingPostgres({ ...target, port: server.port }, { timeoutMs: 300 });
    assert.equal(result.state, state, `${answer}: ${JSON.stringify(result)}`);
  }
  await using server = fakeServer("auth");
  const closed = await server.closedPort();
  const result = await pingPostgres({ ...target, port: closed }, { timeoutMs: 1000 });
  assert.equal(result.state, "no_response");
  assert.match(result.detail ?? "", /refused/i);
});

Deno.test("pingPostgres ends a trusted session with Terminate, leaves a password request", async () => {
  for (const [answer, sent] of [["trust", [0x58, 0, 0, 0, 4]], ["auth", []]] as const) {
    await using server = fakeServer(answer);
    const result = await pingPostgres({
      host: "127.0.0.1",
      port: server.port,
      user: "u",
      database: "d",
    });
    assert.equal(result.state, "accepting");
    // The fake records what was sent once the client has hung up.
    for (let waited = 0; server.afterwards.length === 0 && waited < 2000; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.deepEqual([...server.afterwards[0] ?? []], [...sent], answer);
  }
});
