import assert from "node:assert/strict";
import { collectLogs, LINE_JOINER, LogCollector } from "../../src/postgres/log_collector.ts";

const TS = "2024-05-01 10:00:00.123 UTC [42]";

function streamOf(...chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return ReadableStream.from(chunks.map((chunk) => encoder.encode(chunk)));
}

Deno.test("continuation lines join the record they follow with U+200B", async () => {
  const records: string[] = [];
  await collectLogs(
    streamOf(`${TS} LOG:  first\n\tdetail one\n`, `\tdetail two\n${TS} LOG:  second\n`),
    (record) => records.push(record),
  );
  assert.deepEqual(records, [
    `${TS} LOG:  first${LINE_JOINER}\tdetail one${LINE_JOINER}\tdetail two`,
    `${TS} LOG:  second`,
  ]);
});

Deno.test("lines split across chunks, CRLF and a final line without newline", async () => {
  const records: string[] = [];
  await collectLogs(
    streamOf(`${TS} LOG:  a`, `bc\r\n2024-05-01 10:00:01`, ` UTC LOG:  last`),
    (record) => records.push(record),
  );
  assert.deepEqual(records, [`${TS} LOG:  abc`, "2024-05-01 10:00:01 UTC LOG:  last"]);
});

Deno.test("lines before any timestamp form a record of their own", async () => {
  const records: string[] = [];
  await collectLogs(
    streamOf("no timestamp\nnor here\n", `${TS} LOG:  x\n`),
    (r) => records.push(r),
  );
  assert.deepEqual(records, [`no timestamp${LINE_JOINER}nor here`, `${TS} LOG:  x`]);
});

Deno.test("100 ms of silence flushes a partial record", async () => {
  const records: string[] = [];
  const collector = new LogCollector((record) => records.push(record), 100);
  collector.push(`${TS} LOG:  waiting`);
  collector.push("\tmore");
  assert.deepEqual(records, []);
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.deepEqual(records, [`${TS} LOG:  waiting${LINE_JOINER}\tmore`]);
  collector.push("\tlate continuation");
  collector.close();
  assert.deepEqual(records.slice(1), ["\tlate continuation"]);
});

Deno.test("an empty stream emits nothing", async () => {
  const records: string[] = [];
  await collectLogs(streamOf(), (record) => records.push(record));
  assert.deepEqual(records, []);
});
