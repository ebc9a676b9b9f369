import assert from "node:assert/strict";
import { parseLsn } from "../../src/api/lsn.ts";
import {
  type BackendCopyData,
  dateFromPgEpochMicros,
  decodeBackendCopyData,
  decodeFrontendCopyData,
  encodeHotStandbyFeedback,
  encodeKeepalive,
  encodeStandbyStatusUpdate,
  encodeXLogData,
  type FrontendCopyData,
  pgEpochMicros,
  ReplicationCodecError,
} from "../../harness/replication_codec.ts";

const bytes = (...values: number[]) => new Uint8Array(values);
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

Deno.test("pgEpochMicros counts microseconds from 2000-01-01 UTC", () => {
  assert.equal(pgEpochMicros(new Date("2000-01-01T00:00:00Z")), 0n);
  assert.equal(pgEpochMicros(new Date("2024-01-01T00:00:00.123Z")), 757_382_400_123_000n);
  assert.equal(pgEpochMicros(new Date("1999-12-31T23:59:59Z")), -1_000_000n);
  const now = Date.now();
  const micros = pgEpochMicros();
  assert.ok(dateFromPgEpochMicros(micros).getTime() - now < 1000, "defaults to now");
});

Deno.test("dateFromPgEpochMicros inverts pgEpochMicros, rounding down to milliseconds", () => {
  for (
    const text of [
      "2000-01-01T00:00:00.000Z",
      "2024-02-29T12:34:56.789Z",
      "1970-01-01T00:00:00.001Z",
    ]
  ) {
    const date = new Date(text);
    assert.equal(dateFromPgEpochMicros(pgEpochMicros(date)).toISOString(), text);
  }
  assert.equal(dateFromPgEpochMicros(1_999n).toISOString(), "2000-01-01T00:00:00.001Z");
  assert.equal(dateFromPgEpochMicros(-1n).toISOString(), "1999-12-31T23:59:59.999Z");
});

Deno.test("XLogData is 'w', dataStart, walEnd, sendTime, then the WAL bytes", () => {
  const payload = encodeXLogData({
    dataStart: 0x0102_0304_0506_0708n,
    walEnd: 0x1112_1314_1516_1718n,
    sendTime: -2n,
    data: bytes(0xaa, 0xbb),
  });
  assert.deepEqual(
    payload,
    bytes(
      0x77,
      ...[1, 2, 3, 4, 5, 6, 7, 8],
      ...[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18],
      ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
      0xaa,
      0xbb,
    ),
  );
});

Deno.test("a keepalive is 'k', walEnd, sendTime, replyRequested", () => {
  const payload = encodeKeepalive({
    walEnd: parseLsn("1/2"),
    sendTime: 0x0304n,
    replyRequested: true,
  });
  assert.deepEqual(
    payload,
    bytes(0x6b, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 3, 4, 1),
  );
});

Deno.test("a standby status update is 'r', write, flush, apply, clientTime, replyRequested", () => {
  const payload = encodeStandbyStatusUpdate({
    write: 3n,
    flush: 2n,
    apply: 1n,
    clientTime: 0x0102n,
    replyRequested: false,
  });
  const u64 = (last: number) => [0, 0, 0, 0, 0, 0, 0, last];
  assert.deepEqual(
    payload,
    bytes(0x72, ...u64(3), ...u64(2), ...u64(1), 0, 0, 0, 0, 0, 0, 1, 2, 0),
  );
});

Deno.test("hot standby feedback is 'h', clientTime, xmin, epoch, catalog xmin, epoch", () => {
  const payload = encodeHotStandbyFeedback({
    clientTime: 1n,
    xmin: 0x0a0b_0c0d,
    xminEpoch: 2,
    catalogXmin: 0xffff_ffff,
    catalogXminEpoch: 0,
  });
  assert.deepEqual(
    payload,
    bytes(0x68, 0, 0, 0, 0, 0, 0, 0, 1, 10, 11, 12, 13, 0, 0, 0, 2, 255, 255, 255, 255, 0, 0, 0, 0),
  );
});

Deno.test("every server message round-trips, extremes included", () => {
  const messages: BackendCopyData[] = [
    { tag: "w", dataStart: 0n, walEnd: 0n, sendTime: 0n, data: new Uint8Array() },
    { tag: "w", dataStart: U64_MAX, walEnd: U64_MAX, sendTime: I64_MIN, data: bytes(1, 2, 3) },
    { tag: "w", dataStart: parseLsn("0/1500790"), walEnd: 5n, sendTime: I64_MAX, data: bytes(0) },
    { tag: "k", walEnd: U64_MAX, sendTime: I64_MAX, replyRequested: true },
    { tag: "k", walEnd: 0n, sendTime: I64_MIN, replyRequested: false },
  ];
  for (const message of messages) {
    const payload = message.tag === "w" ? encodeXLogData(message) : encodeKeepalive(message);
    assert.deepEqual(decodeBackendCopyData(payload), message);
  }
});

Deno.test("every client message round-trips, extremes included", () => {
  const messages: FrontendCopyData[] = [
    { tag: "r", write: U64_MAX, flush: 1n, apply: 0n, clientTime: I64_MIN, replyRequested: true },
    { tag: "r", write: 0n, flush: 0n, apply: 0n, clientTime: I64_MAX, replyRequested: false },
    {
      tag: "h",
      clientTime: -5n,
      xmin: 0xffff_ffff,
      xminEpoch: 0,
      catalogXmin: 3,
      catalogXminEpoch: 0xffff_ffff,
    },
  ];
  for (const message of messages) {
    const payload = message.tag === "r"
      ? encodeStandbyStatusUpdate(message)
      : encodeHotStandbyFeedback(message);
    assert.deepEqual(decodeFrontendCopyData(payload), message);
  }
});

Deno.test("decoded WAL bytes are a copy that outlives the payload", () => {
  const payload = encodeXLogData({ dataStart: 1n, walEnd: 2n, sendTime: 3n, data: bytes(7, 8) });
  const decoded = decodeBackendCopyData(payload);
  payload.fill(0);
  assert.equal(decoded.tag, "w");
  assert.deepEqual(decoded.tag === "w" && decoded.data, bytes(7, 8));
});

Deno.test("decoding reads payloads that are views into a larger buffer", () => {
  const payload = encodeKeepalive({ walEnd: 9n, sendTime: 8n, replyRequested: true });
  const framed = new Uint8Array(payload.length + 10);
  framed.set(payload, 5);
  assert.deepEqual(decodeBackendCopyData(framed.subarray(5, 5 + payload.length)), {
    tag: "k",
    walEnd: 9n,
    sendTime: 8n,
    replyRequested: true,
  });
});

Deno.test("decoding rejects unknown tags, short and overlong payloads", () => {
  const keepalive = encodeKeepalive({ walEnd: 1n, sendTime: 1n, replyRequested: false });
  const status = encodeStandbyStatusUpdate({
    write: 1n,
    flush: 1n,
    apply: 1n,
    clientTime: 1n,
    replyRequested: false,
  });
  const cases: [() => unknown, RegExp][] = [
    [() => decodeBackendCopyData(new Uint8Array()), /empty CopyData payload/],
    [() => decodeBackendCopyData(status), /unknown replication message 'r' from server/],
    [() => decodeBackendCopyData(bytes(0)), /unknown replication message 0x0 from server/],
    [() => decodeFrontendCopyData(keepalive), /unknown replication message 'k' from client/],
    [
      () => decodeBackendCopyData(bytes(0x77, 1, 2)),
      /'w' message must be at least 25 bytes, got 3/,
    ],
    [
      () => decodeBackendCopyData(keepalive.subarray(0, 17)),
      /'k' message must be 18 bytes, got 17/,
    ],
    [() => decodeBackendCopyData(bytes(...keepalive, 0)), /'k' message must be 18 bytes, got 19/],
    [() => decodeFrontendCopyData(status.subarray(0, 33)), /'r' message must be 34 bytes/],
    [() => decodeFrontendCopyData(bytes(0x68)), /'h' message must be 25 bytes, got 1/],
  ];
  for (const [decode, message] of cases) {
    assert.throws(
      decode,
      (error) => error instanceof ReplicationCodecError && message.test(error.message),
    );
  }
});

Deno.test("encoding rejects values that do not fit their fields", () => {
  const time = { sendTime: 0n, replyRequested: false };
  assert.throws(() => encodeKeepalive({ walEnd: -1n, ...time }), /walEnd out of range: -1/);
  assert.throws(() => encodeKeepalive({ walEnd: U64_MAX + 1n, ...time }), /walEnd out of range/);
  assert.throws(
    () => encodeKeepalive({ walEnd: 0n, sendTime: I64_MAX + 1n, replyRequested: false }),
    /sendTime out of range/,
  );
  const feedback = { clientTime: 0n, xminEpoch: 0, catalogXmin: 0, catalogXminEpoch: 0 };
  for (const xmin of [-1, 0x1_0000_0000, 1.5, Number.NaN]) {
    assert.throws(() => encodeHotStandbyFeedback({ ...feedback, xmin }), RangeError, String(xmin));
  }
});
