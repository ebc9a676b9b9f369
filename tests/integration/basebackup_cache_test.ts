/**
 * @module
 * The fake pageserver's basebackup cache against a real timeline (a base
 * image made by initdb): a second gzipped basebackup of the same LSN is served
 * from the cache, byte for byte the first; `latest` resolves to the commit LSN
 * and shares its entry; a plain tar is never cached; and the counters appear
 * in the pageserver's `/metrics`.
 */

import { locatePostgresOnce } from "../../harness/pg_locate.ts";
import assert from "node:assert/strict";
import pg from "pg";
import { to as copyTo } from "pg-copy-streams";
import { startPageserver } from "../../harness/pageserver.ts";
import { createTimelineStore, type TimelineStore } from "../../harness/timeline_store.ts";
import { formatLsn } from "../../src/api/lsn.ts";

const PGBIN = (await locatePostgresOnce()).pgbin;
const TENANT = "00112233445566778899aabbccddeeff";
const TIMELINE = "ffeeddccbbaa99887766554433221100";

async function storeWithTimeline(): Promise<TimelineStore> {
  const dir = await Deno.makeTempDir({ prefix: "basebackup-cache-test-" });
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

/** The raw COPY payload of `query`: the tar (gzipped or not) exactly as sent. */
async function copyOut(libpqUrl: string, query: string): Promise<Uint8Array> {
  const client = new pg.Client({ connectionString: libpqUrl });
  client.on("error", () => {});
  await client.connect();
  try {
    const chunks: Uint8Array[] = [];
    for await (const chunk of client.query(copyTo(query)) as AsyncIterable<Uint8Array>) {
      chunks.push(chunk);
    }
    return new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer());
  } finally {
    await client.end();
  }
}

Deno.test("basebackup cache: the same LSN is served again from the cache, byte-identical", async () => {
  await using store = await storeWithTimeline();
  await using pageserver = startPageserver({ id: 1, store });
  pageserver.attach(TENANT);
  const lsn = formatLsn(store.commitLsn(TENANT, TIMELINE));

  const first = await copyOut(
    pageserver.libpqUrl,
    `basebackup ${TENANT} ${TIMELINE} ${lsn} --gzip`,
  );
  assert.deepEqual({ ...pageserver.basebackupCacheReads }, { hit: 0, miss: 1 });
  const second = await copyOut(
    pageserver.libpqUrl,
    `basebackup ${TENANT} ${TIMELINE} ${lsn} --gzip`,
  );
  assert.deepEqual({ ...pageserver.basebackupCacheReads }, { hit: 1, miss: 1 });
  assert.equal(second.length, first.length);
  assert.ok(second.every((byte, i) => byte === first[i]), "the cached bytes differ");
  assert.deepEqual([first[0], first[1]], [0x1f, 0x8b], "a gzip stream");

  // `latest` is the commit LSN: the same entry.
  const latest = await copyOut(pageserver.libpqUrl, `basebackup ${TENANT} ${TIMELINE} --gzip`);
  assert.deepEqual({ ...pageserver.basebackupCacheReads }, { hit: 2, miss: 1 });
  assert.equal(latest.length, first.length);

  // A plain tar is composed every time and leaves the counters alone.
  const plain = await copyOut(pageserver.libpqUrl, `basebackup ${TENANT} ${TIMELINE} ${lsn}`);
  assert.ok(plain.length > first.length * 2, `plain ${plain.length} vs gzip ${first.length}`);
  assert.deepEqual({ ...pageserver.basebackupCacheReads }, { hit: 2, miss: 1 });

  const metrics = await (await fetch(`${pageserver.httpUrl}/metrics`)).text();
  assert.match(metrics, /^pageserver_basebackup_cache_read_total\{result="hit"\} 2$/m);
  assert.match(metrics, /^pageserver_basebackup_cache_read_total\{result="miss"\} 1$/m);
});
