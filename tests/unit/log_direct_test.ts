import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { formatLogRecord, getDirectLogger, getLogger, setupLogging } from "../../src/log.ts";

Deno.test("a direct logger hands the configured sink the same record, at the configured level", () => {
  const records: LogRecord[] = [];
  setupLogging({ level: "info", sink: (record) => records.push(record) });
  const direct = getDirectLogger("direct_test");
  direct.debug("not at info");
  direct.info("request {with} braces", { status: 200, path: "/status" });
  direct.warn("slow");
  getLogger("direct_test").info("request {with} braces", { status: 200, path: "/status" });

  assert.deepEqual(records.map((record) => record.level), ["info", "warning", "info"]);
  const [viaDirect, , viaLogTape] = records;
  assert.deepEqual(viaDirect.category, ["compute_ctl", "direct_test"]);
  assert.deepEqual(viaDirect.properties, { status: 200, path: "/status" });
  const line = (record: LogRecord) => formatLogRecord(record).replace(/^\S+ /, "");
  assert.equal(line(viaDirect), line(viaLogTape));
  assert.match(
    line(viaDirect),
    /INFO compute_ctl::direct_test: request \{with\} braces status=200/,
  );
});

Deno.test("a direct logger follows the level of the last setup", () => {
  const records: LogRecord[] = [];
  setupLogging({ level: "debug", sink: (record) => records.push(record) });
  getDirectLogger("direct_test").debug("now shown");
  setupLogging({ level: "error", sink: (record) => records.push(record) });
  getDirectLogger("direct_test").warn("now hidden");
  assert.deepEqual(records.map((record) => record.message.join("")), ["now shown"]);
});

Deno.test("a sink that throws loses the record, not the caller", () => {
  setupLogging({
    level: "info",
    sink: () => {
      throw new Error("sink broke");
    },
  });
  getDirectLogger("direct_test").info("lost");
  setupLogging({ level: "info", sink: () => {} });
});
