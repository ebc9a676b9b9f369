/**
 * @module
 * The pageserver's basebackup cache on its own: bytes kept only from a stream
 * read to its end, an entry dropped when the timeline's base images changed,
 * and the least recently used entries evicted past the entry and byte bounds.
 */

import assert from "node:assert/strict";
import {
  type BasebackupCacheKey,
  createBasebackupCache,
} from "../../harness/pageserver_basebackup_cache.ts";

const key = (lsn: bigint, images = "base-0"): BasebackupCacheKey => ({
  tenantId: "t",
  timelineId: "tl",
  lsn,
  images,
});

const bytes = (...values: number[]) => new Uint8Array(values);

async function readAll(stream: ReadableStream<Uint8Array>): Promise<number[]> {
  const out: number[] = [];
  for await (const chunk of stream) out.push(...chunk);
  return out;
}

Deno.test("basebackup cache: a stream read to its end is kept and served again", async () => {
  const cache = createBasebackupCache();
  assert.equal(cache.read(key(1n)), null);
  const passed = await readAll(cache.record(key(1n), ReadableStream.from([bytes(1, 2), bytes(3)])));
  assert.deepEqual(passed, [1, 2, 3]);
  assert.deepEqual(await readAll(cache.read(key(1n))!), [1, 2, 3]);
  assert.deepEqual({ ...cache.counters }, { hit: 1, miss: 1 });
});

Deno.test("basebackup cache: a cancelled or failed stream is not kept", async () => {
  const cache = createBasebackupCache();
  const reader = cache.record(key(1n), ReadableStream.from([bytes(1), bytes(2)])).getReader();
  await reader.read();
  await reader.cancel();
  assert.equal(cache.read(key(1n)), null);
  const failing = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes(1));
      controller.error(new Error("composing failed"));
    },
  });
  await assert.rejects(readAll(cache.record(key(2n), failing)), /composing failed/);
  assert.equal(cache.read(key(2n)), null);
});

Deno.test("basebackup cache: new base images invalidate the entry", async () => {
  const cache = createBasebackupCache();
  await readAll(cache.record(key(1n, "base-0"), ReadableStream.from([bytes(1)])));
  assert.equal(cache.read(key(1n, "base-0\nbase-1")), null);
  assert.equal(cache.read(key(1n, "base-0")), null, "the stale entry was dropped");
});

Deno.test("basebackup cache: the least recently used entries go first", async () => {
  const cache = createBasebackupCache({ maxEntries: 2, maxBytes: 4 });
  await readAll(cache.record(key(1n), ReadableStream.from([bytes(1)])));
  await readAll(cache.record(key(2n), ReadableStream.from([bytes(2)])));
  assert.notEqual(cache.read(key(1n)), null); // 1 is now the most recently used
  await readAll(cache.record(key(3n), ReadableStream.from([bytes(3)])));
  assert.equal(cache.read(key(2n)), null);
  assert.notEqual(cache.read(key(1n)), null);
  await readAll(cache.record(key(4n), ReadableStream.from([bytes(4, 4, 4, 4)])));
  assert.equal(cache.read(key(1n)), null, "evicted to stay within 4 bytes");
  assert.deepEqual(await readAll(cache.read(key(4n))!), [4, 4, 4, 4]);
  await readAll(cache.record(key(5n), ReadableStream.from([bytes(5, 5, 5, 5, 5)])));
  assert.equal(cache.read(key(5n)), null, "larger than the whole cache: never kept");
});
