/**
 * @module
 * A fake pageserver's cache of gzipped basebackups, like Neon's pageserver
 * basebackup cache: the bytes of `basebackup <tenant> <timeline> <lsn> --gzip`
 * kept per (tenant, timeline, LSN) once a request streamed them whole, so the
 * next compute starting at that LSN is served without composing and
 * compressing the image again. Bounded by entries and bytes (least recently
 * used goes first); an entry is valid only while the timeline's base images
 * are the ones it was composed from (compaction and GC invalidate it).
 */

import { formatLsn, type Lsn } from "../src/api/lsn.ts";
import type { TimelineStore } from "./timeline_store.ts";

const CACHE_READ_METRIC = "pageserver_basebackup_cache_read_total";

/** What a cached basebackup is keyed and validated by. */
export interface BasebackupCacheKey {
  tenantId: string;
  timelineId: string;
  lsn: Lsn;
  /** Identifies the timeline's base images when the bytes were composed. */
  images: string;
}

/** Hits and misses so far, as `pageserver_basebackup_cache_read_total{result}` counts them. */
export interface BasebackupCacheCounters {
  hit: number;
  miss: number;
}

/** The cache; see the module comment. */
export interface BasebackupCache {
  /** A stream of the cached bytes, or null (a miss: call {@linkcode BasebackupCache.record}). */
  read(key: BasebackupCacheKey): ReadableStream<Uint8Array> | null;
  /** Passes `stream` through, keeping its bytes once it ended whole (not when cancelled or failed). */
  record(key: BasebackupCacheKey, stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array>;
  readonly counters: Readonly<BasebackupCacheCounters>;
}

/** Options of {@linkcode createBasebackupCache}. */
export interface BasebackupCacheOptions {
  /** Default 4. */
  maxEntries?: number;
  /** Default 128 MiB. */
  maxBytes?: number;
}

interface Entry {
  images: string;
  chunks: Uint8Array[];
  bytes: number;
}

/** Returns an empty cache. */
export function createBasebackupCache(
  { maxEntries = 4, maxBytes = 128 * 1024 * 1024 }: BasebackupCacheOptions = {},
): BasebackupCache {
  const entries = new Map<string, Entry>();
  const counters: BasebackupCacheCounters = { hit: 0, miss: 0 };
  const slot = (key: BasebackupCacheKey) =>
    `${key.tenantId}/${key.timelineId}/${formatLsn(key.lsn)}`;

  const store = (name: string, entry: Entry) => {
    if (entry.bytes > maxBytes) return;
    entries.delete(name);
    entries.set(name, entry);
    let total = 0;
    for (const { bytes } of entries.values()) total += bytes;
    for (const [oldest, { bytes }] of entries) {
      if (entries.size <= maxEntries && total <= maxBytes) break;
      entries.delete(oldest);
      total -= bytes;
    }
  };

  return {
    read(key) {
      const name = slot(key);
      const entry = entries.get(name);
      if (entry === undefined || entry.images !== key.images) {
        entries.delete(name);
        counters.miss++;
        return null;
      }
      counters.hit++;
      entries.delete(name);
      entries.set(name, entry);
      return ReadableStream.from(entry.chunks);
    },
    record(key, stream) {
      const chunks: Uint8Array[] = [];
      let bytes = 0;
      return stream.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            chunks.push(chunk);
            bytes += chunk.length;
            controller.enqueue(chunk);
          },
          flush() {
            store(slot(key), { images: key.images, chunks, bytes });
          },
        }),
      );
    },
    counters,
  };
}

/**
 * A gzipped basebackup from `cache`, or composed by `store` and kept.
 * `latest` (no LSN) means the commit LSN now; an LSN served before is
 * committed, so a hit skips only waiting the store would not do either.
 */
export async function cachedBasebackup(
  cache: BasebackupCache,
  store: TimelineStore,
  request: { tenantId: string; timelineId: string; lsn?: Lsn | null },
): Promise<ReadableStream<Uint8Array>> {
  const { tenantId, timelineId } = request;
  const lsn = request.lsn ?? store.commitLsn(tenantId, timelineId);
  const images = store.baseImages(tenantId, timelineId).map((image) => image.dir).join("\n");
  const key = { tenantId, timelineId, lsn, images };
  const cached = cache.read(key);
  if (cached !== null) return cached;
  return cache.record(key, await store.basebackupTar(tenantId, timelineId, lsn, { gzip: true }));
}

/** `pageserver_basebackup_cache_read_total{result}` in the Prometheus text format. */
export function basebackupCacheMetricLines(counters: Readonly<BasebackupCacheCounters>): string[] {
  return [
    `# HELP ${CACHE_READ_METRIC} Number of basebackup cache reads, by result`,
    `# TYPE ${CACHE_READ_METRIC} counter`,
    `${CACHE_READ_METRIC}{result="hit"} ${counters.hit}`,
    `${CACHE_READ_METRIC}{result="miss"} ${counters.miss}`,
  ];
}
