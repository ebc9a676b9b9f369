/**
 * @module
 * Comparing what a bad-input case got with what it expects: an HTTP answer
 * (status, then the `{"error"}` body, plain text, empty body or JSON), or a
 * command line's exit code, stderr lines (timestamps removed) and stdout.
 * `{{NAME}}` placeholders stand for values of the run (the compute's id, a
 * temporary path). Pure.
 */

import { isDeepStrictEqual } from "node:util";
import type { CliExpect, HttpExpect } from "./bad_input.ts";
import type { RawAnswer } from "./bad_input_http.ts";

/** Fills `{{NAME}}` placeholders from `vars`; throws on one it does not know. */
export function substitute(text: string, vars: Record<string, string>): string {
  return text.replace(/\{\{([A-Z_]+)\}\}/g, (whole, name: string) => {
    const value = vars[name];
    if (value === undefined) throw new Error(`unknown placeholder ${whole}`);
    return value;
  });
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function isJsonContentType(answer: RawAnswer): boolean {
  return answer.headers.get("content-type") === "application/json";
}

function includes(whole: unknown, part: Record<string, unknown>): boolean {
  if (typeof whole !== "object" || whole === null || Array.isArray(whole)) return false;
  return Object.entries(part).every(([key, value]) =>
    isDeepStrictEqual((whole as Record<string, unknown>)[key], value)
  );
}

/**
 * Why `answer` is not what `expect` says, or undefined when it is; `answer`
 * is undefined when the server closed the connection without one.
 */
export function httpMismatch(
  expect: HttpExpect,
  answer: RawAnswer | undefined,
  vars: Record<string, string>,
): string | undefined {
  if (answer === undefined) {
    return expect.closed ? undefined : "expected an answer, the connection closed without one";
  }
  if (expect.closed) return `expected the connection to close, got ${answer.status}`;
  const got = `${answer.status} ${answer.headers.get("content-type") ?? "(no type)"} ` +
    JSON.stringify(answer.text.length > 600 ? `${answer.text.slice(0, 600)}…` : answer.text);
  const wrong = (what: string) => `expected ${what}, got ${got}`;
  if (answer.status !== expect.status) return wrong(`status ${expect.status}`);
  const body = parseJson(answer.text);
  if (expect.error !== undefined || expect.errorPattern !== undefined) {
    const error = body.ok && typeof body.value === "object" && body.value !== null &&
        Object.keys(body.value).length === 1
      ? (body.value as { error?: unknown }).error
      : undefined;
    if (!isJsonContentType(answer) || typeof error !== "string") return wrong('{"error": …}');
    if (expect.error !== undefined && error !== substitute(expect.error, vars)) {
      return wrong(`error ${JSON.stringify(substitute(expect.error, vars))}`);
    }
    if (expect.errorPattern !== undefined && !new RegExp(expect.errorPattern).test(error)) {
      return wrong(`an error matching /${expect.errorPattern}/`);
    }
    return undefined;
  }
  if (expect.text !== undefined) {
    const text = substitute(expect.text, vars);
    return answer.text === text ? undefined : wrong(`text ${JSON.stringify(text)}`);
  }
  if (expect.empty) return answer.body.length === 0 ? undefined : wrong("an empty body");
  if (expect.jsonIncludes !== undefined) {
    return body.ok && includes(body.value, expect.jsonIncludes)
      ? undefined
      : wrong(`JSON including ${JSON.stringify(expect.jsonIncludes)}`);
  }
  if ("json" in expect) {
    return body.ok && isDeepStrictEqual(body.value, expect.json)
      ? undefined
      : wrong(`JSON ${JSON.stringify(expect.json)}`);
  }
  return "the case expects no answer body at all";
}

/** Deno's warning that `-P` reads permissions from `deno.json`: not the manager's output. */
const DENO_WARNING = /^Warning Permissions in the config file is an experimental feature/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z +/;
/** Log records below ERROR: progress and advice, not the outcome a case is about. */
const MINOR_RECORD = /^(?:TRACE|DEBUG|INFO|WARNING) \S+: /;

/**
 * Stderr as {@link CliExpect} compares it: its error lines (usage errors,
 * ERROR records, anything that is not a log record) without timestamps;
 * records below ERROR and Deno's own warning are left out.
 */
export function normaliseStderr(stderr: string): string[] {
  return stderr.split("\n")
    .filter((line) => line !== "" && !DENO_WARNING.test(line))
    .map((line) => line.replace(TIMESTAMP, ""))
    .filter((line) => !MINOR_RECORD.test(line));
}

/** What a command line did. */
export interface CliOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Why `outcome` is not what `expect` says, or undefined when it is. */
export function cliMismatch(
  expect: CliExpect,
  outcome: CliOutcome,
  vars: Record<string, string>,
): string | undefined {
  const lines = normaliseStderr(outcome.stderr);
  const wanted = expect.stderr.map((line) => substitute(line, vars));
  const got = `exit ${outcome.code}, stderr ${JSON.stringify(lines)}, stdout ` +
    JSON.stringify(outcome.stdout.slice(0, 300));
  if (outcome.code !== expect.exitCode) return `expected exit ${expect.exitCode}, got ${got}`;
  if (!isDeepStrictEqual(lines, wanted)) {
    return `expected stderr ${JSON.stringify(wanted)}, got ${got}`;
  }
  const stdout = substitute(expect.stdout ?? "", vars);
  if (outcome.stdout !== stdout) return `expected stdout ${JSON.stringify(stdout)}, got ${got}`;
  return undefined;
}
