/**
 * `redactSecrets` in `src/log.ts`, which every line the manager writes (its
 * own and Postgres's `PG:` lines) passes through: role passwords in SQL,
 * verifiers, JWTs, bearer tokens, URL and libpq passwords, and registered
 * values are hidden; ordinary text, ids and LSNs are left alone.
 */

import assert from "node:assert/strict";
import {
  formatLogRecord,
  MIN_SECRET_LENGTH,
  redactSecrets,
  registerSecret,
} from "../../src/log.ts";

const MD5 = "md5" + "0123456789abcdef".repeat(2);
const SCRAM = "SCRAM-SHA-256$4096:hBT22QjqpydQWqEulorfXA==$miBogcoj68JWYdsNB5PW1X6PjSLBEcNuct" +
  "uhtGkb4PY=:hxk2gxkwxGo6P7GCtfpMlhA9zwHvPMsCz+NQf2HfvWk=";
const JWT = "eyJhbGciOiJFZERTQSJ9.eyJjb21wdXRlX2lkIjoiYyJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ";

Deno.test("role passwords in logged SQL are redacted, the statement kept", () => {
  assert.equal(
    redactSecrets(`PG:2026-01-01 LOG:  statement: ALTER ROLE "bob" WITH LOGIN PASSWORD '${MD5}'`),
    `PG:2026-01-01 LOG:  statement: ALTER ROLE "bob" WITH LOGIN PASSWORD '[redacted]'`,
  );
  assert.equal(
    redactSecrets(`CREATE ROLE "o'k" ENCRYPTED password E'it''s' INHERIT`),
    `CREATE ROLE "o'k" ENCRYPTED password '[redacted]' INHERIT`,
  );
  assert.equal(redactSecrets(`ALTER ROLE x PASSWORD NULL`), `ALTER ROLE x PASSWORD NULL`);
});

Deno.test("verifiers, JWTs and bearer tokens are redacted wherever they appear", () => {
  assert.equal(redactSecrets(`stored ${MD5}.`), "stored md5[redacted].");
  assert.equal(redactSecrets(`verifier=${SCRAM} end`), "verifier=SCRAM-SHA-256$[redacted] end");
  assert.equal(redactSecrets(`token ${JWT} refused`), "token [redacted JWT] refused");
  assert.equal(
    redactSecrets(`authorization: Bearer opaque-token-123"`),
    `authorization: Bearer [redacted]"`,
  );
});

Deno.test("URL and libpq passwords are redacted, the rest of the address kept", () => {
  assert.equal(
    redactSecrets("basebackup from postgresql://no_user:s3cr3t@ps-1:6400/db failed"),
    "basebackup from postgresql://no_user:[redacted]@ps-1:6400/db failed",
  );
  assert.equal(
    redactSecrets("primary_conninfo='host=sk1 port=5454 password=tok3n user=x'"),
    "primary_conninfo='host=sk1 port=5454 password=[redacted] user=x'",
  );
  assert.equal(
    redactSecrets("conninfo password='a b\\'c' host=h"),
    "conninfo password=[redacted] host=h",
  );
});

Deno.test("ordinary log text is left as it is", () => {
  const lines = [
    "2026-01-01T00:00:00.000Z    INFO compute_ctl::startup: starting compute " +
    "tenant_id=b0554b632bd4d547a63b86c3630317e8 timeline_id=2414a61ffc94e428f14b5758fe308e13",
    'PG:2026-01-01 FATAL:  password authentication failed for user "bob"',
    "request server=external method=GET path=/status status=200 latency_ms=1",
    "connecting to postgresql://no_user@127.0.0.1:6400 at 0/16B3748",
    "http://127.0.0.1:8080/path@x",
  ];
  for (const line of lines) assert.equal(redactSecrets(line), line);
});

Deno.test("a registered value is redacted everywhere; short values are not taken", () => {
  const token = `cp-${crypto.randomUUID()}`;
  assert.equal(redactSecrets(`sent ${token}`), `sent ${token}`);
  registerSecret(token);
  assert.equal(redactSecrets(`sent ${token} and ${token}x`), "sent [redacted] and [redacted]x");
  const short = "x".repeat(MIN_SECRET_LENGTH - 1);
  registerSecret(short);
  assert.equal(redactSecrets(`say ${short}`), `say ${short}`);
});

Deno.test("a line break in a logged value cannot start a second record", () => {
  const line = formatLogRecord({
    category: ["compute_ctl", "config"],
    level: "error",
    message: ["could not read the config"],
    rawMessage: "could not read the config",
    timestamp: Date.UTC(2026, 0, 1),
    properties: { error: "bad\n2026-01-01T00:00:00.000Z    INFO forged: yes\r", "k\ney": 1 },
  });
  assert.equal(line.trimEnd().split("\n").length, 1, line);
  assert.match(line, /error=bad\\n2026-01-01T00:00:00.000Z {4}INFO forged: yes\\r k\\ney=1/);
});

Deno.test("the quick check before the patterns lets every casing of every pattern through", () => {
  const hex = "0123456789ABCDEF".repeat(2);
  for (
    const [text, expected] of [
      [`alter role x PaSsWoRd 'pw'`, `alter role x PaSsWoRd '[redacted]'`],
      [`MD5${hex.toLowerCase()}`, "md5[redacted]"],
      [`Md5${hex}`, "md5[redacted]"],
      [`BEARER abc.def`, "BEARER [redacted]"],
      [`HTTPS://user:pw@host/`, "HTTPS://user:[redacted]@host/"],
      [`PASSWORD = "x"`, `PASSWORD = [redacted]`],
      [`${JWT}`, "[redacted JWT]"],
      [`${SCRAM}`, "SCRAM-SHA-256$[redacted]"],
    ]
  ) {
    assert.equal(redactSecrets(text), expected, text);
  }
});
