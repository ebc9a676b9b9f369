/**
 * @module
 * The storage protocols end to end on real loopback sockets: the fake pageserver
 * and safekeepers (harness) against the compute's clients (src/storage), plus
 * byte-for-byte checks of the frames a raw TCP client receives.
 */

import { locatePostgresOnce } from "../../harness/pg_locate.ts";
import { readControlFile } from "../../harness/pg_control.ts";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import pg from "pg";
import { pack as tarPack } from "tar-stream";
import { startPageserver } from "../../harness/pageserver.ts";
import { PgError, startPgServer } from "../../harness/pgwire.ts";
import { startSafekeeper } from "../../harness/safekeeper.ts";
import { createTimelineStore, type TimelineStore } from "../../harness/timeline_store.ts";
import { formatLsn, type Lsn } from "../../src/api/lsn.ts";
import { extractTarInto, fetchBasebackup } from "../../src/storage/basebackup.ts";
import {
  checkSafekeepersSynced,
  SafekeeperTimeoutError,
  timelineStatus,
} from "../../src/storage/safekeepers.ts";
import { eventually } from "./_helpers.ts";

const PGBIN = (await locatePostgresOnce()).pgbin;
const TENANT = "0123456789abcdef0123456789abcdef";
const OTHER_TENANT = "ffffffffffffffffffffffffffffffff";
const TIMELINE = "fedcba9876543210fedcba9876543210";
const encoder = new TextEncoder();

// ---------------------------------------------------------------------------
// Fixtures

interface TempDir extends AsyncDisposable {
  path: string;
}

async function tempDir(prefix: string): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** A store (in its own temp dir) holding TENANT/TIMELINE. */
async function storeWithTimeline(): Promise<TimelineStore> {
  const dir = await Deno.makeTempDir({ prefix: "storage-test-store-" });
  await Deno.remove(dir);
  const store = createTimelineStore({ dir, pgbin: PGBIN, waitLsnTimeoutMs: 200 });
  try {
    await store.createTimeline(TENANT, TIMELINE);
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

function request(libpqUrl: string, pgdata: string, extra: { lsn?: Lsn; gzip?: boolean } = {}) {
  return {
    libpqUrl,
    tenantId: TENANT,
    timelineId: TIMELINE,
    lsn: extra.lsn ?? 0n,
    mode: "Primary" as const,
    pgdata,
    gzip: extra.gzip,
  };
}

async function misroutedMetric(httpUrl: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const match = /^pageserver_misrouted_pagestream_requests_total (\d+)$/m.exec(text);
  assert.ok(match, text);
  return Number(match[1]);
}

// ---------------------------------------------------------------------------
// A raw frontend, to see the server's bytes exactly

function frontend(type: string, ...parts: Uint8Array[]): Uint8Array {
  const body = concat(parts);
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, 4 + body.length);
  out.set(body, 5);
  return out;
}

function cstr(text: string): Uint8Array {
  return concat([encoder.encode(text), new Uint8Array([0])]);
}

function i16(value: number): Uint8Array {
  const out = new Uint8Array(2);
  new DataView(out.buffer).setInt16(0, value);
  return out;
}

function i32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, value);
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function startupMessage(params: Record<string, string>): Uint8Array {
  const body = concat([
    i32(196608),
    ...Object.entries(params).flatMap(([key, value]) => [cstr(key), cstr(value)]),
    new Uint8Array([0]),
  ]);
  return concat([i32(body.length + 4), body]);
}

interface BackendMessage {
  type: string;
  /** The whole message, type byte and length included. */
  bytes: Uint8Array;
  body: Uint8Array;
}

interface RawClient extends AsyncDisposable {
  send(...messages: Uint8Array[]): Promise<void>;
  readBytes(count: number): Promise<Uint8Array>;
  /** Messages up to and including the first of type `last`. */
  readUntil(last: string): Promise<BackendMessage[]>;
}

async function rawClient(port: number): Promise<RawClient> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let pending: Uint8Array = new Uint8Array(0);
  const fill = async (count: number) => {
    while (pending.length < count) {
      const chunk = new Uint8Array(65536);
      const n = await conn.read(chunk);
      if (n === null) throw new Error(`EOF after ${pending.length} bytes, wanted ${count}`);
      pending = concat([pending, chunk.subarray(0, n)]);
    }
  };
  const readBytes = async (count: number) => {
    await fill(count);
    const out = pending.slice(0, count);
    pending = pending.subarray(count);
    return out;
  };
  return {
    send: async (...messages) => {
      const bytes = concat(messages);
      for (let offset = 0; offset < bytes.length;) {
        offset += await conn.write(bytes.subarray(offset));
      }
    },
    readBytes,
    readUntil: async (last) => {
      const messages: BackendMessage[] = [];
      for (;;) {
        const head = await readBytes(5);
        const length = new DataView(head.buffer).getInt32(1);
        const body = await readBytes(length - 4);
        const message = { type: String.fromCharCode(head[0]), bytes: concat([head, body]), body };
        messages.push(message);
        if (message.type === last) return messages;
      }
    },
    [Symbol.asyncDispose]: () => Promise.resolve(conn.close()),
  };
}

const TRUST_GREETING = concat([
  frontend("R", i32(0)),
  frontend("S", cstr("client_encoding"), cstr("UTF8")),
  frontend("S", cstr("integer_datetimes"), cstr("on")),
  frontend("S", cstr("server_version"), cstr("14.1")),
  frontend("Z", encoder.encode("I")),
]);

function errorFrame(message: string, code = "XX000"): Uint8Array {
  return frontend(
    "E",
    encoder.encode("S"),
    cstr("ERROR"),
    encoder.encode("C"),
    cstr(code),
    encoder.encode("M"),
    cstr(message),
    new Uint8Array([0]),
  );
}

function textColumn(name: string): Uint8Array {
  return concat([cstr(name), i32(0), i16(0), i32(25), i16(-1), i32(-1), i16(0)]);
}

async function tarNames(bytes: Uint8Array): Promise<string[]> {
  const dir = await tempDir("storage-test-tar-");
  try {
    await extractTarInto(dir.path, ReadableStream.from([bytes as Uint8Array<ArrayBuffer>]));
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir.path)) names.push(entry.name);
    return names.sort();
  } finally {
    await dir[Symbol.asyncDispose]();
  }
}

// ---------------------------------------------------------------------------
// Pageserver

Deno.test("basebackup: gzip and plain tars are extracted into PGDATA", async () => {
  await using store = await storeWithTimeline();
  await using pageserver = startPageserver({ id: 1, store });
  pageserver.attach(TENANT);
  await using gzipDir = await tempDir("storage-test-pgdata-");
  await using plainDir = await tempDir("storage-test-pgdata-");

  const gz = await fetchBasebackup(request(pageserver.libpqUrl, gzipDir.path));
  const plain = await fetchBasebackup(request(pageserver.libpqUrl, plainDir.path, { gzip: false }));

  assert.ok(gz.connectMicros > 0);
  assert.ok(gz.bytes > 100_000, `gzip bytes ${gz.bytes}`);
  assert.ok(plain.bytes > gz.bytes * 2, `plain ${plain.bytes} vs gzip ${gz.bytes}`);
  for (const pgdata of [gzipDir.path, plainDir.path]) {
    assert.equal((await Deno.readTextFile(`${pgdata}/PG_VERSION`)).trim(), "15");
    for (const kept of ["pg_hba.conf", "pg_ident.conf", "postgresql.auto.conf", "global"]) {
      await Deno.lstat(`${pgdata}/${kept}`);
    }
    for (
      const excluded of ["postgresql.conf", "standby.signal", "postmaster.pid", "postmaster.opts"]
    ) {
      await assert.rejects(Deno.lstat(`${pgdata}/${excluded}`), Deno.errors.NotFound, excluded);
    }
    assert.equal((await Deno.stat(`${pgdata}/global/pg_control`)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${pgdata}/base`)).mode! & 0o777, 0o700);
    const control = await readControlFile(pgdata);
    assert.equal(control.state, "shut down in recovery");
    // A fresh timeline ends right after its base image's checkpoint record.
    const checkpoint = control.checkpointLsn;
    const end = store.lastLsn(TENANT, TIMELINE);
    assert.ok(
      checkpoint < end && end - checkpoint < 8192n,
      `${formatLsn(checkpoint)} / ${formatLsn(end)}`,
    );
    const wal = await Array.fromAsync(Deno.readDir(`${pgdata}/pg_wal`));
    assert.deepEqual(wal.filter((entry) => entry.isFile).map((entry) => entry.name), [
      "000000010000000000000001",
    ]);
  }
});

Deno.test("basebackup: an explicit LSN is served between the first base image and the end", async () => {
  await using store = await storeWithTimeline();
  await using pageserver = startPageserver({ id: 1, store });
  pageserver.attach(TENANT);
  await using dir = await tempDir("storage-test-pgdata-");
  const last = store.lastLsn(TENANT, TIMELINE);

  await fetchBasebackup(request(pageserver.libpqUrl, dir.path, { lsn: last }));
  // Beyond the end: Neon waits for the WAL (wait_lsn), then gives up with its text.
  await assert.rejects(
    fetchBasebackup(request(pageserver.libpqUrl, dir.path, { lsn: last + 8n })),
    new RegExp(
      `: failed to get basebackup@${formatLsn(last + 8n)}: Timed out while waiting for WAL ` +
        `record at LSN ${formatLsn(last + 8n)} to arrive, last_record_lsn ${formatLsn(last)}`,
    ),
  );
  // Before the first base image: Neon's GC cutoff check.
  await assert.rejects(
    fetchBasebackup(request(pageserver.libpqUrl, dir.path, { lsn: 0x42n })),
    new RegExp(`: failed to get basebackup@0/42: invalid basebackup lsn: LSN 0/42 is earlier`),
  );
});

Deno.test("pageserver: a tenant not attached here is `not found` and counted as misrouted", async () => {
  await using store = await storeWithTimeline();
  await using pageserver = startPageserver({ id: 7, store });
  await using dir = await tempDir("storage-test-pgdata-");
  const url = pageserver.libpqUrl;

  assert.equal(await misroutedMetric(pageserver.httpUrl), 0);
  await assert.rejects(
    fetchBasebackup(request(url, dir.path)),
    /: failed to get basebackup@0\/0: not found$/,
  );
  assert.equal(pageserver.misroutedRequests, 1);
  assert.equal(await misroutedMetric(pageserver.httpUrl), 1);

  pageserver.setSecondary(TENANT);
  await assert.rejects(fetchBasebackup(request(url, dir.path)), /not found/);
  assert.equal(await misroutedMetric(pageserver.httpUrl), 2);

  pageserver.attach(TENANT);
  await fetchBasebackup(request(url, dir.path));
  assert.equal(await misroutedMetric(pageserver.httpUrl), 2, "served requests are not misrouted");

  pageserver.detach(TENANT);
  await assert.rejects(fetchBasebackup(request(url, dir.path)), /not found/);
  assert.equal(await misroutedMetric(pageserver.httpUrl), 3);
  const notFound = await fetch(`${pageserver.httpUrl}/nope`);
  await notFound.body?.cancel();
  assert.equal(notFound.status, 404);
});

Deno.test("pageserver: lease lsn answers valid_until in ms since the epoch", async () => {
  await using store = await storeWithTimeline();
  await using pageserver = startPageserver({ id: 1, store });
  pageserver.attach(TENANT);
  const client = new pg.Client({ connectionString: pageserver.libpqUrl, ssl: false });
  client.on("error", () => {});
  await client.connect();
  try {
    const lsn = formatLsn(store.lastLsn(TENANT, TIMELINE));
    const before = Date.now();
    const result = await client.query(`lease lsn ${TENANT} ${TIMELINE} ${lsn}`);
    assert.deepEqual(result.fields.map((field) => field.name), ["valid_until"]);
    const validUntil = Number(result.rows[0].valid_until);
    assert.ok(
      validUntil >= before + 600_000 && validUntil <= Date.now() + 600_000,
      `${validUntil}`,
    );
    await assert.rejects(
      client.query(`lease lsn ${TENANT} ${"0".repeat(32)} 0/1`),
      /: Not found: Timeline/,
    );
    // Before the oldest base image (the GC cutoff): refused with NULL, as Neon does.
    const refused = await client.query(`lease lsn ${TENANT} ${TIMELINE} 0/1`);
    assert.deepEqual(refused.rows, [{ valid_until: null }]);
    await client.query("SET datestyle TO 'ISO'");
    // The extended protocol goes through Neon's emulation (Parse/Bind/Describe/Execute/Sync).
    const extended = await client.query({
      text: `lease lsn ${TENANT} ${TIMELINE} ${lsn}`,
      name: "lease",
    });
    assert.equal(extended.rows.length, 1);
  } finally {
    await client.end();
  }
});

Deno.test("pageserver: JWT as password is verified at login and per tenant", async () => {
  const { publicKey, privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
  const stranger = await generateKeyPair("EdDSA", { crv: "Ed25519" });
  const token = (claims: Record<string, string>, key = privateKey) =>
    new SignJWT(claims).setProtectedHeader({ alg: "EdDSA" }).sign(key);
  await using store = await storeWithTimeline();
  await using pageserver = startPageserver({
    id: 1,
    store,
    jwtPublicKey: await exportJWK(publicKey),
  });
  pageserver.attach(TENANT);
  await using dir = await tempDir("storage-test-pgdata-");
  const fetchWith = async (authToken: string) =>
    await fetchBasebackup({ ...request(pageserver.libpqUrl, dir.path), authToken });

  const result = await fetchWith(await token({ tenant_id: TENANT, scope: "tenant" }));
  assert.ok(result.bytes > 0);
  await fetchWith(await token({ scope: "pageserverapi" }));
  const jwtError = /: JWT authentication error$/;
  await assert.rejects(
    fetchWith(await token({ tenant_id: OTHER_TENANT, scope: "tenant" })),
    jwtError,
  );
  await assert.rejects(fetchWith(await token({ scope: "tenant" })), jwtError);
  await assert.rejects(fetchWith(await token({ scope: "safekeeperdata" })), jwtError);
  await assert.rejects(
    fetchWith(await token({ tenant_id: TENANT, scope: "tenant" }, stranger.privateKey)),
    jwtError,
  );
  await assert.rejects(fetchWith("not-a-jwt"), jwtError);

  // On the wire: AuthenticationCleartextPassword, then only client_encoding.
  await using raw = await rawClient(pageserver.port);
  await raw.send(startupMessage({ user: "no_user" }));
  assert.deepEqual(await raw.readBytes(9), frontend("R", i32(3)));
  await raw.send(frontend("p", cstr(await token({ tenant_id: TENANT, scope: "tenant" }))));
  const greeting = concat((await raw.readUntil("Z")).map((m) => m.bytes));
  assert.deepEqual(
    greeting,
    concat([
      frontend("R", i32(0)),
      frontend("S", cstr("client_encoding"), cstr("UTF8")),
      frontend("Z", encoder.encode("I")),
    ]),
  );
});

Deno.test("pageserver: startup and basebackup framing, byte for byte", async () => {
  await using store = await storeWithTimeline();
  await using pageserver = startPageserver({ id: 1, store });
  pageserver.attach(TENANT);
  await using raw = await rawClient(pageserver.port);

  // SSLRequest and GSSENCRequest are refused with 'N', then a trust login.
  await raw.send(concat([i32(8), i32(80877103)]));
  assert.deepEqual(await raw.readBytes(1), encoder.encode("N"));
  await raw.send(concat([i32(8), i32(80877104)]));
  assert.deepEqual(await raw.readBytes(1), encoder.encode("N"));
  await raw.send(startupMessage({ user: "no_user", options: "-c neon.compute_mode=primary" }));
  assert.deepEqual(concat((await raw.readUntil("Z")).map((m) => m.bytes)), TRUST_GREETING);

  // Simple protocol.
  await raw.send(frontend("Q", cstr(`basebackup ${TENANT} ${TIMELINE}`)));
  const simple = await raw.readUntil("Z");
  assert.deepEqual(simple[0].bytes, frontend("H", new Uint8Array([0, 0, 0])));
  const copyData = simple.slice(1, -3);
  assert.ok(copyData.length > 0 && copyData.every((m) => m.type === "d"));
  assert.deepEqual(
    concat(simple.slice(-3).map((m) => m.bytes)),
    concat([
      frontend("c"),
      frontend("C", cstr("SELECT 1")),
      frontend("Z", encoder.encode("I")),
    ]),
  );
  const tar = concat(copyData.map((m) => m.body));
  assert.ok((await tarNames(tar)).includes("PG_VERSION"));

  // Extended protocol, as rust-postgres copy_out() drives it.
  await raw.send(
    frontend("P", cstr(""), cstr(`basebackup ${TENANT} ${TIMELINE} --gzip`), i16(0)),
    frontend("D", encoder.encode("S"), cstr("")),
    frontend("S"),
  );
  assert.deepEqual(
    concat((await raw.readUntil("Z")).map((m) => m.bytes)),
    concat([
      frontend("1"),
      frontend("t", i16(0)),
      frontend("n"),
      frontend("Z", encoder.encode("I")),
    ]),
  );
  await raw.send(
    frontend("B", cstr(""), cstr(""), i16(0), i16(0), i16(0)),
    frontend("E", cstr(""), i32(0)),
    frontend("S"),
  );
  const extended = await raw.readUntil("Z");
  assert.deepEqual(extended[0].bytes, frontend("2"));
  assert.deepEqual(extended[1].bytes, frontend("H", new Uint8Array([0, 0, 0])));
  assert.deepEqual(
    extended.slice(-3).map((m) => m.type),
    ["c", "C", "Z"],
  );
  const gz = concat(extended.slice(2, -3).map((m) => m.body));
  assert.deepEqual([...gz.subarray(0, 2)], [0x1f, 0x8b], "gzip magic");

  // Errors: S/C/M fields only, then ReadyForQuery.
  await raw.send(frontend("Q", cstr("frobnicate a b")));
  assert.deepEqual(
    concat((await raw.readUntil("Z")).map((m) => m.bytes)),
    concat([
      errorFrame("unsupported command frobnicate in frobnicate a b"),
      frontend("Z", encoder.encode("I")),
    ]),
  );
  await raw.send(frontend("Q", cstr(`basebackup ${OTHER_TENANT} ${TIMELINE}`)));
  assert.deepEqual(
    (await raw.readUntil("Z"))[0].bytes,
    errorFrame("reconnect to switch tenant id"),
  );
  await raw.send(frontend("X"));
});

Deno.test("pageserver: pagestream resolves the tenant on the first request", async () => {
  await using store = await storeWithTimeline();
  await using pageserver = startPageserver({ id: 1, store });
  const open = async () => {
    const raw = await rawClient(pageserver.port);
    await raw.send(startupMessage({ user: "no_user" }));
    await raw.readUntil("Z");
    await raw.send(frontend("Q", cstr(`pagestream_v3 ${TENANT} ${TIMELINE}`)));
    assert.deepEqual(await raw.readBytes(8), frontend("W", new Uint8Array([0, 0, 0])));
    return raw;
  };
  // v3 header: tag, reqid, request_lsn, not_modified_since; then the request body.
  const request = (tag: number) =>
    frontend("d", new Uint8Array([tag]), new Uint8Array(24).fill(7), new Uint8Array(13));

  {
    await using raw = await open();
    await raw.send(request(1)); // Nblocks
    assert.deepEqual((await raw.readUntil("E"))[0].bytes, errorFrame("not found"));
    assert.equal(pageserver.misroutedRequests, 1);
  }
  {
    await using raw = await open();
    await raw.send(request(2)); // GetPage
    assert.deepEqual((await raw.readUntil("E"))[0].bytes, errorFrame("reconnect", "08006"));
    assert.equal(pageserver.misroutedRequests, 3);
  }
  pageserver.attach(TENANT);
  {
    await using raw = await open();
    await raw.send(request(0)); // Exists
    const [reply] = await raw.readUntil("d");
    assert.equal(reply.body[0], 103, "pagestream Error response");
    assert.deepEqual(
      reply.body.subarray(1, 25),
      new Uint8Array(24).fill(7),
      "v3 echoes the header",
    );
    await raw.send(frontend("c"));
    assert.deepEqual(
      concat((await raw.readUntil("Z")).map((m) => m.bytes)),
      concat([frontend("C", cstr("SELECT 1")), frontend("Z", encoder.encode("I"))]),
    );
    assert.equal(pageserver.misroutedRequests, 3);
  }
});

Deno.test("basebackup: an ErrorResponse after a complete tar fails the fetch", async () => {
  const tar = await smallTarGz();
  await using dir = await tempDir("storage-test-pgdata-");
  const extracted = () => Deno.readTextFile(`${dir.path}/PG_VERSION`).catch(() => "");
  await using server = startPgServer<undefined>({
    handleConnection: (conn) => async () => {
      conn.sendCopyOutResponse();
      await conn.sendCopyData(tar);
      // Only once the client has unpacked the archive does the error follow.
      await eventually(async () => await extracted() === "15\n", "the client unpacked the tar");
      throw new PgError("timeline was deleted while streaming");
    },
  });
  await assert.rejects(
    fetchBasebackup(request(`postgresql://no_user@127.0.0.1:${server.port}`, dir.path)),
    /: failed to get basebackup@0\/0: timeline was deleted while streaming$/,
  );
  assert.equal(
    await Deno.readTextFile(`${dir.path}/PG_VERSION`),
    "15\n",
    "the tar itself was read",
  );
});

Deno.test("basebackup: tar entries escaping PGDATA are refused", async () => {
  const tar = await smallTarGz([{ name: "../escape", data: "x" }]);
  await using server = startPgServer<undefined>({
    handleConnection: (conn) => async () => {
      conn.sendCopyOutResponse();
      await conn.sendCopyData(tar);
      conn.sendCopyDone();
      conn.sendCommandComplete("SELECT 1");
    },
  });
  await using dir = await tempDir("storage-test-pgdata-");
  await assert.rejects(
    fetchBasebackup(request(`postgresql://no_user@127.0.0.1:${server.port}`, `${dir.path}/pgdata`)),
    /refusing tar entry "\.\.\/escape"/,
  );
  await assert.rejects(Deno.lstat(`${dir.path}/escape`), Deno.errors.NotFound);
});

async function smallTarGz(extra: { name: string; data: string }[] = []): Promise<Uint8Array> {
  const pack = tarPack();
  const entries = [{ name: "PG_VERSION", data: "15\n" }, ...extra];
  for (const entry of entries) pack.entry({ name: entry.name, mode: 0o600 }, entry.data);
  pack.finalize();
  const chunks: Uint8Array[] = [];
  for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  const gz = ReadableStream.from([concat(chunks) as Uint8Array<ArrayBuffer>])
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(gz).arrayBuffer());
}

// ---------------------------------------------------------------------------
// Safekeepers

Deno.test("safekeeper: TIMELINE_STATUS, byte for byte", async () => {
  await using store = await storeWithTimeline();
  await using safekeeper = await startSafekeeper({ id: 1, store });
  const lsn = formatLsn(store.lastLsn(TENANT, TIMELINE));
  const ask = async (timelineId: string) => {
    await using raw = await rawClient(safekeeper.port);
    await raw.send(startupMessage({
      user: "no_user",
      options: `-c timeline_id=${timelineId} tenant_id=${TENANT}`,
    }));
    assert.deepEqual(concat((await raw.readUntil("Z")).map((m) => m.bytes)), TRUST_GREETING);
    await raw.send(frontend("Q", cstr("TIMELINE_STATUS")));
    return concat((await raw.readUntil("Z")).map((m) => m.bytes));
  };
  const header = frontend("T", i16(2), textColumn("flush_lsn"), textColumn("commit_lsn"));
  const trailer = concat([
    frontend("C", cstr("TIMELINE_STATUS")),
    frontend("Z", encoder.encode("I")),
  ]);
  const row = frontend(
    "D",
    i16(2),
    i32(lsn.length),
    encoder.encode(lsn),
    i32(lsn.length),
    encoder.encode(lsn),
  );

  assert.deepEqual(await ask(TIMELINE), concat([header, row, trailer]));
  assert.deepEqual(
    await ask("0".repeat(32)),
    concat([header, trailer]),
    "no row for an unknown timeline",
  );
});

Deno.test("safekeepers: timelineStatus and the quorum fast path", async () => {
  await using store = await storeWithTimeline();
  await using sk1 = await startSafekeeper({ id: 1, store });
  await using sk2 = await startSafekeeper({ id: 2, store });
  await using sk3 = await startSafekeeper({ id: 3, store });
  const safekeepers = [sk1, sk2, sk3];
  const addresses = safekeepers.map((sk) => sk.address);
  const options = { tenantId: TENANT, timelineId: TIMELINE };
  const last = store.lastLsn(TENANT, TIMELINE);

  assert.deepEqual(await timelineStatus(sk1.address, options), { flushLsn: last, commitLsn: last });
  assert.equal(await timelineStatus(sk1.address, { ...options, timelineId: "1".repeat(32) }), null);
  assert.equal(await checkSafekeepersSynced(addresses, options), last);

  // Every pair disagrees: whichever quorum answers first, not synced.
  safekeepers.forEach((sk, i) =>
    sk.setStatusOverride(TENANT, TIMELINE, {
      flushLsn: last + BigInt(i),
      commitLsn: last + BigInt(i),
    })
  );
  assert.equal(await checkSafekeepersSynced(addresses, options), null);
  // Commit behind flush everywhere: not synced.
  safekeepers.forEach((sk) =>
    sk.setStatusOverride(TENANT, TIMELINE, { flushLsn: last + 8n, commitLsn: last })
  );
  assert.equal(await checkSafekeepersSynced(addresses, options), null);
  // Nobody knows the timeline: not synced.
  safekeepers.forEach((sk) => sk.setStatusOverride(TENANT, TIMELINE, null));
  assert.equal(await checkSafekeepersSynced(addresses, options), null);
  safekeepers.forEach((sk) => sk.setStatusOverride(TENANT, TIMELINE, undefined));

  // One safekeeper down: the other two are a quorum.
  await sk3.close();
  await assert.rejects(timelineStatus(sk3.address, options));
  assert.equal(await checkSafekeepersSynced(addresses, options), last);
  // Two down: a quorum failed.
  await sk2.close();
  assert.equal(await checkSafekeepersSynced(addresses, options), null);
});

Deno.test("safekeepers: a silent safekeeper times out after timeoutMs", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const acceptor = (async () => {
    try {
      for await (const conn of listener) accepted.push(conn);
    } catch {
      // closed
    }
  })();
  try {
    const address = `127.0.0.1:${listener.addr.port}`;
    await assert.rejects(
      timelineStatus(address, { tenantId: TENANT, timelineId: TIMELINE, timeoutMs: 100 }),
      (error) =>
        error instanceof SafekeeperTimeoutError &&
        error.message === `safekeeper ${address} did not answer TIMELINE_STATUS within 100 ms`,
    );
    assert.equal(accepted.length, 1, "it connected, then waited for an answer that never came");
  } finally {
    listener.close();
    await acceptor;
    for (const conn of accepted) conn.close();
  }
});
