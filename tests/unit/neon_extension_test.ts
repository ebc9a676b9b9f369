/**
 * The emulated Neon extension's pure parts: the connstring list, the
 * pagestream v3 request bytes, the verdict on an answer, the back-off. (The
 * probe loop itself is in tests/integration/neon_extension_test.ts.)
 */

import assert from "node:assert/strict";
import {
  classifyPagestreamAnswer,
  encodePagestreamV3Request,
  LATEST_LSN,
} from "../../harness/pagestream.ts";
import {
  MAX_BACKOFF_MS,
  nextBackoffMs,
  parseLibpqAddress,
  shardConnstrings,
  shardZeroAddress,
} from "../../harness/neon_extension.ts";

Deno.test("shardConnstrings splits the per-shard list and drops empty parts", () => {
  assert.deepEqual(shardConnstrings("postgresql://no_user@h:1"), ["postgresql://no_user@h:1"]);
  assert.deepEqual(
    shardConnstrings(" postgresql://no_user@a:1 ,postgresql://no_user@b:2,"),
    ["postgresql://no_user@a:1", "postgresql://no_user@b:2"],
  );
  assert.deepEqual(shardConnstrings(""), []);
  assert.deepEqual(shardConnstrings(" , "), []);
});

Deno.test("parseLibpqAddress reads the URL form", () => {
  assert.deepEqual(parseLibpqAddress("postgresql://no_user@127.0.0.1:6400"), {
    host: "127.0.0.1",
    port: 6400,
    user: "no_user",
  });
  // neon_local writes an empty password: none is sent.
  assert.deepEqual(parseLibpqAddress("postgresql://no_user:@localhost:64000"), {
    host: "localhost",
    port: 64000,
    user: "no_user",
  });
  assert.deepEqual(parseLibpqAddress("postgres://cloud_admin:p%40ss@[::1]:5/postgres"), {
    host: "::1",
    port: 5,
    user: "cloud_admin",
    password: "p@ss",
    database: "postgres",
  });
  assert.deepEqual(parseLibpqAddress("postgresql://ps.local"), {
    host: "ps.local",
    port: 5432,
    user: "no_user",
  });
});

Deno.test("parseLibpqAddress reads the key=value form", () => {
  assert.deepEqual(
    parseLibpqAddress("host=10.0.0.1 port=6400 user=no_user password='a b\\'c' dbname=x"),
    { host: "10.0.0.1", port: 6400, user: "no_user", password: "a b'c", database: "x" },
  );
  assert.deepEqual(parseLibpqAddress("host=ps"), { host: "ps", port: 5432, user: "no_user" });
});

Deno.test("parseLibpqAddress returns null for what names no server", () => {
  for (
    const text of [
      "",
      "not a connstring",
      "postgresql://",
      "postgresql://h:0",
      "postgresql://h:70000",
      "port=6400",
      "host=h port=x",
      "http://h:1",
    ]
  ) {
    assert.equal(parseLibpqAddress(text), null, text);
  }
});

Deno.test("shardZeroAddress takes the first shard", () => {
  assert.deepEqual(
    shardZeroAddress("postgresql://no_user@a:1,postgresql://no_user@b:2"),
    { host: "a", port: 1, user: "no_user" },
  );
  assert.equal(shardZeroAddress(""), null);
});

Deno.test("encodePagestreamV3Request lays out a DbSize request as pagestream_api.rs", () => {
  const bytes = encodePagestreamV3Request(
    { reqid: 0x0102030405060708n, requestLsn: LATEST_LSN, notModifiedSince: 0x169ad58n },
    { kind: "db_size", dbnode: 5 },
  );
  assert.deepEqual(
    [...bytes],
    [
      3,
      ...[1, 2, 3, 4, 5, 6, 7, 8],
      ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
      ...[0, 0, 0, 0, 0x01, 0x69, 0xad, 0x58],
      ...[0, 0, 0, 5],
    ],
  );
});

Deno.test("encodePagestreamV3Request lays out an Exists request with its RelTag", () => {
  const bytes = encodePagestreamV3Request(
    { reqid: 1n, requestLsn: 2n, notModifiedSince: 3n },
    { kind: "exists", rel: { spcnode: 1663, dbnode: 5, relnode: 16384, forknum: 1 } },
  );
  assert.deepEqual(
    [...bytes],
    [
      0,
      ...[0, 0, 0, 0, 0, 0, 0, 1],
      ...[0, 0, 0, 0, 0, 0, 0, 2],
      ...[0, 0, 0, 0, 0, 0, 0, 3],
      ...[0, 0, 0x06, 0x7f],
      ...[0, 0, 0, 5],
      ...[0, 0, 0x40, 0],
      1,
    ],
  );
});

/** A v3 response: tag, the echoed header (reqid, 0, 0), then `rest`. */
function response(tag: number, reqid: bigint, rest: number[] = []): Uint8Array {
  const out = new Uint8Array(25 + rest.length);
  out[0] = tag;
  new DataView(out.buffer).setBigUint64(1, reqid);
  out.set(rest, 25);
  return out;
}

Deno.test("classifyPagestreamAnswer: a pagestream answer to our request means attached", () => {
  const text = [...new TextEncoder().encode("not served here"), 0];
  assert.deepEqual(
    classifyPagestreamAnswer({ kind: "copy_data", payload: response(103, 7n, text) }, 7n),
    { reachable: true, detail: "pagestream Error: not served here" },
  );
  assert.deepEqual(
    classifyPagestreamAnswer({ kind: "copy_data", payload: response(104, 7n, [0, 0, 0, 5]) }, 7n),
    { reachable: true, detail: "pagestream DbSize response" },
  );
});

Deno.test("classifyPagestreamAnswer: anything else is a failure, with why", () => {
  const cases: [Parameters<typeof classifyPagestreamAnswer>[0], string][] = [
    [
      { kind: "error_response", message: "not found", code: "XX000" },
      "ErrorResponse XX000: not found",
    ],
    [{ kind: "closed" }, "connection closed"],
    [{ kind: "closed", detail: "reset" }, "connection closed: reset"],
    [{ kind: "timeout" }, "no answer in time"],
    [{ kind: "copy_data", payload: response(103, 8n) }, "answer to request 8, expected 7"],
    [{ kind: "copy_data", payload: response(42, 7n) }, "unknown pagestream response tag 42"],
    [
      { kind: "copy_data", payload: new Uint8Array([103, 0]) },
      "pagestream Error response of 2 bytes",
    ],
  ];
  for (const [answer, reason] of cases) {
    assert.deepEqual(classifyPagestreamAnswer(answer, 7n), { reachable: false, reason });
  }
});

Deno.test("nextBackoffMs doubles up to 10 s", () => {
  const waits = [1_000];
  while (waits.length < 7) waits.push(nextBackoffMs(waits.at(-1)!, 1_000));
  assert.deepEqual(waits, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
  assert.equal(MAX_BACKOFF_MS, 10_000);
  // A first wait above the cap is kept, not shortened.
  assert.equal(nextBackoffMs(15_000, 15_000), 15_000);
});
