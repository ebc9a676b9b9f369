/**
 * Query strings (`src/http/query.ts`) and the routes that read one:
 * `/database_schema` (JSON refusals), `/extension_server` (JSON),
 * `/lfc/prewarm` and `/terminate` (plain text, as axum's own extractor).
 */

import assert from "node:assert/strict";
import { HttpError } from "../../src/http/errors.ts";
import { hasQueryString, optionalQueryParam, requiredQueryParam } from "../../src/http/query.ts";
import type { RejectionStyle } from "../../src/http/rejections.ts";
import { parseDatabaseQuery } from "../../src/http/routes/database_schema.ts";
import { parseIsLibrary } from "../../src/http/routes/extension_server.ts";
import { parseFromEndpoint } from "../../src/http/routes/lfc_prewarm.ts";
import { parseTerminateMode } from "../../src/http/routes/terminate.ts";

Deno.test("query parameters: absent, once, or a duplicate-field 400 in the route's style", () => {
  assert.equal(hasQueryString("http://c/x"), false);
  assert.equal(hasQueryString("http://c/x?"), true);
  assert.equal(optionalQueryParam("http://c/x?a=1%202&b=3", "a", "json"), "1 2");
  assert.equal(optionalQueryParam("http://c/x?b=3", "a", "json"), undefined);
  assert.equal(requiredQueryParam("http://c/x?a=", "a", "plain"), "");
  const refusal = (style: RejectionStyle, message: string) => (error: unknown) =>
    error instanceof HttpError && error.status === 400 && error.message === message &&
    error.plainText === (style === "plain");
  assert.throws(
    () => optionalQueryParam("http://c/x?a=1&a=2", "a", "plain"),
    refusal("plain", "Failed to deserialize query string: duplicate field `a`"),
  );
  assert.throws(
    () => requiredQueryParam("http://c/x?a=1&a=2", "a", "json"),
    refusal("json", "failed to deserialize query string: duplicate field `a`"),
  );
  assert.throws(
    () => requiredQueryParam("http://c/x", "a", "json"),
    refusal("json", "failed to deserialize query string: missing field `a`"),
  );
});

Deno.test("parseDatabaseQuery: exactly one database parameter, decoded, that can name a database", () => {
  assert.equal(parseDatabaseQuery("http://c/database_schema?database=a%3Db+c"), "a=b c");
  const longest = "é".repeat(31) + "x"; // 63 bytes
  assert.equal(
    parseDatabaseQuery(`http://c/database_schema?database=${encodeURIComponent(longest)}`),
    longest,
  );
  for (
    const [url, message] of [
      ["http://c/database_schema?database=", "database: is empty"],
      ["http://c/database_schema?database=a%00b", "database: contains a NUL byte"],
      [
        `http://c/database_schema?database=${"é".repeat(32)}`,
        "database: is longer than 63 bytes (PostgreSQL's limit for names)",
      ],
      ["http://c/database_schema", "failed to deserialize query string: missing field `database`"],
      [
        "http://c/database_schema?db=x",
        "failed to deserialize query string: missing field `database`",
      ],
      [
        "http://c/database_schema?database=a&database=b",
        "failed to deserialize query string: duplicate field `database`",
      ],
    ]
  ) {
    assert.throws(
      () => parseDatabaseQuery(url),
      (error) =>
        error instanceof HttpError && error.status === 400 && error.message === message &&
        !error.plainText,
    );
  }
});

Deno.test("query parsing of /extension_server and /lfc/prewarm", () => {
  assert.equal(parseIsLibrary("http://h/extension_server/a"), false);
  assert.equal(parseIsLibrary("http://h/extension_server/a?is_library=true"), true);
  assert.equal(parseIsLibrary("http://h/extension_server/a?other=1"), false);
  assert.throws(
    () => parseIsLibrary("http://h/extension_server/a?is_library=yes"),
    (error) => error instanceof HttpError && error.status === 400 && !error.plainText,
  );
  assert.equal(parseFromEndpoint("http://h/lfc/prewarm"), undefined);
  assert.equal(parseFromEndpoint("http://h/lfc/prewarm?from_endpoint=ep-2"), "ep-2");
  assert.throws(
    () => parseFromEndpoint("http://h/lfc/prewarm?"),
    (error) =>
      error instanceof HttpError && error.plainText &&
      error.message === "Failed to deserialize query string: missing field `from_endpoint`",
  );
});

Deno.test("terminate's mode: fast by default, strict once a query string exists", () => {
  assert.equal(parseTerminateMode("http://c/terminate"), "fast");
  assert.equal(parseTerminateMode("http://c/terminate?mode=immediate"), "immediate");
  assert.equal(parseTerminateMode("http://c/terminate?mode=fast&x=1"), "fast");
  for (const url of ["http://c/terminate?", "http://c/terminate?x=1"]) {
    assert.throws(() => parseTerminateMode(url), (error: unknown) => {
      assert.ok(error instanceof HttpError);
      assert.equal(error.status, 400);
      assert.equal(error.plainText, true);
      assert.equal(error.message, "Failed to deserialize query string: missing field `mode`");
      return true;
    });
  }
  assert.throws(() => parseTerminateMode("http://c/terminate?mode=bogus"), /unknown variant/);
  assert.throws(
    () => parseTerminateMode("http://c/terminate?mode=fast&mode=fast"),
    /^HttpError: Failed to deserialize query string: duplicate field `mode`$/,
  );
});
