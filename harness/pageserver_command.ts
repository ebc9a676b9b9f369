/**
 * @module
 * The queries a pageserver understands, parsed by Neon's rules (reference
 * neon-04 §A.2): `basebackup`, `fullbackup`, `pagestream_v2|v3`, `lease lsn`
 * and `set`, with Neon's error texts for anything else.
 */

import { type Lsn, parseLsn } from "../src/api/lsn.ts";
import { isHexId } from "../src/api/ids.ts";

/** A parsed pageserver query (reference §A.2). */
export type PageserverCommand =
  | {
    kind: "basebackup";
    tenantId: string;
    timelineId: string;
    lsn: Lsn | null;
    gzip: boolean;
    replica: boolean;
  }
  | { kind: "fullbackup"; tenantId: string; timelineId: string; lsn: Lsn | null }
  | {
    kind: "lease_lsn";
    tenantId: string;
    shard: { number: number; count: number } | null;
    timelineId: string;
    lsn: Lsn;
  }
  | { kind: "pagestream"; version: 2 | 3; tenantId: string; timelineId: string }
  | { kind: "set" };

/** A query the pageserver cannot parse; the message is what the client gets. */
export class CommandParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CommandParseError";
  }
}

/**
 * Parses a pageserver query by Neon's rules: the first word is case-insensitive,
 * arguments are split on whitespace, a query without a space is "cannot parse
 * query". Throws {@link CommandParseError} with Neon's messages.
 */
export function parsePageserverCommand(query: string): PageserverCommand {
  const text = query.trim();
  const space = text.indexOf(" ");
  if (space === -1) throw new CommandParseError(`cannot parse query: ${text}`);
  const command = text.slice(0, space);
  const rest = text.slice(space + 1);
  switch (command.toLowerCase()) {
    case "basebackup":
      return parseBasebackup(rest);
    case "fullbackup":
      return parseFullbackup(rest);
    case "pagestream_v2":
    case "pagestream_v3":
      return parsePagestream(command.toLowerCase().endsWith("2") ? 2 : 3, rest);
    case "lease":
      return parseLease(command, rest);
    case "set":
      return { kind: "set" };
    default:
      throw new CommandParseError(`unsupported command ${command} in ${text}`);
  }
}

function parseBasebackup(rest: string): PageserverCommand {
  const params = rest.split(/\s+/).filter((word) => word !== "");
  if (params.length < 2) {
    throw new CommandParseError(`invalid number of parameters for basebackup command: ${rest}`);
  }
  const tenantId = parseId("tenant", params[0]);
  const timelineId = parseId("timeline", params[1]);
  let lsn: Lsn | null = null;
  let flagsFrom = 2;
  const third = params[2];
  if (third === "latest") {
    flagsFrom = 3;
  } else if (third !== undefined && !third.startsWith("--")) {
    lsn = parseLsnParam(third);
    flagsFrom = 3;
  }
  const flags = { gzip: false, replica: false };
  for (const param of params.slice(flagsFrom)) {
    const flag = param === "--gzip" ? "gzip" : param === "--replica" ? "replica" : null;
    if (flag === null) {
      throw new CommandParseError(`invalid parameter for basebackup command: ${param}`);
    }
    if (flags[flag]) {
      throw new CommandParseError(`duplicate parameter for basebackup command: ${param}`);
    }
    flags[flag] = true;
  }
  return { kind: "basebackup", tenantId, timelineId, lsn, ...flags };
}

function parseFullbackup(rest: string): PageserverCommand {
  const params = rest.split(/\s+/).filter((word) => word !== "");
  if (params.length < 2 || params.length > 4) {
    throw new CommandParseError(`invalid number of parameters for fullbackup command: ${rest}`);
  }
  const tenantId = parseId("tenant", params[0]);
  const timelineId = parseId("timeline", params[1]);
  const lsn = params[2] === undefined ? null : parseLsnParam(params[2]);
  if (params[3] !== undefined) parseLsnParam(params[3]);
  return { kind: "fullbackup", tenantId, timelineId, lsn };
}

function parsePagestream(version: 2 | 3, rest: string): PageserverCommand {
  const params = rest.split(/\s+/).filter((word) => word !== "");
  if (params.length !== 2) {
    throw new CommandParseError(`invalid number of parameters for pagestream command: ${rest}`);
  }
  return {
    kind: "pagestream",
    version,
    tenantId: parseId("tenant", params[0]),
    timelineId: parseId("timeline", params[1]),
  };
}

function parseLease(command: string, rest: string): PageserverCommand {
  const space = rest.indexOf(" ");
  if (space === -1 || rest.slice(0, space).toLowerCase() !== "lsn") {
    throw new CommandParseError(`invalid lease command: ${command}`);
  }
  const other = rest.slice(space + 1);
  const params = other.split(/\s+/).filter((word) => word !== "");
  if (params.length !== 3) {
    throw new CommandParseError(`invalid number of parameters for lease lsn command: ${other}`);
  }
  const [tenantPart, shardPart] = params[0].split("-", 2);
  const tenantId = parseId("tenant", tenantPart);
  const shard = shardPart === undefined ? null : parseShardSuffix(params[0], shardPart);
  return {
    kind: "lease_lsn",
    tenantId,
    shard,
    timelineId: parseId("timeline", params[1]),
    lsn: parseLsnParam(params[2]),
  };
}

function parseShardSuffix(whole: string, suffix: string): { number: number; count: number } {
  if (!/^[0-9a-f]{4}$/i.test(suffix)) {
    throw new CommandParseError(`Failed to parse tenant id from ${whole}: invalid shard suffix`);
  }
  return { number: parseInt(suffix.slice(0, 2), 16), count: parseInt(suffix.slice(2), 16) };
}

function parseId(kind: "tenant" | "timeline", text: string): string {
  if (!isHexId(text)) {
    throw new CommandParseError(`Failed to parse ${kind} id from ${text}: not a 32-digit hex id`);
  }
  return text.toLowerCase();
}

function parseLsnParam(text: string): Lsn {
  try {
    return parseLsn(text);
  } catch {
    throw new CommandParseError(`Failed to parse lsn from ${text}`);
  }
}
