/**
 * @module
 * fast_import's logging: the manager's line format on stderr (`src/log.ts`),
 * under the category `fast_import` instead of `compute_ctl`, so its lines and
 * the relayed output of its children read `fast_import::pg_dump: …`.
 */

import { configureSync, getLogger as getLogtapeLogger } from "@logtape/logtape";
import { type Log, stderrSink } from "../log.ts";

export type { Log };

const ROOT = "fast_import";

/** Configures LogTape for the process: records of `info` and above go to stderr. */
export function setupFastImportLogging(): void {
  configureSync({
    reset: true,
    sinks: { main: stderrSink },
    loggers: [
      { category: ROOT, sinks: ["main"], lowestLevel: "info" },
      { category: ["logtape", "meta"], sinks: ["main"], lowestLevel: "warning" },
    ],
  });
}

/** The logger of one part, e.g. `getLogger("pg_dump")` → `fast_import::pg_dump`. */
export function getLogger(part: string): Log {
  const logger = getLogtapeLogger([ROOT, part]);
  const escape = (message: string) => message.replaceAll("{", "{{").replaceAll("}", "}}");
  return {
    debug: (message, fields = {}) => logger.debug(escape(message), fields),
    info: (message, fields = {}) => logger.info(escape(message), fields),
    warn: (message, fields = {}) => logger.warn(escape(message), fields),
    error: (message, fields = {}) => logger.error(escape(message), fields),
  };
}
