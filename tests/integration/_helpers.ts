/**
 * @module
 * Small helpers shared by the integration scenarios: SQL against a compute's
 * Postgres with the `pg` client, Prometheus sample lookup (from
 * `tests/_support/prometheus.ts`), counting the DDL statements Postgres logged
 * (`log_statement`) in `compute.log`, and waiting for evidence instead of time.
 */

import pg from "pg";
import { sleep } from "../../src/_async.ts";

export { metricValue } from "../_support/prometheus.ts";

/** Runs `sql` on `url` in a fresh connection and returns the rows. */
export async function query<Row extends Record<string, unknown> = Record<string, unknown>>(
  target: string | pg.ClientConfig,
  sql: string,
  params: unknown[] = [],
): Promise<Row[]> {
  const config = typeof target === "string" ? { connectionString: target } : target;
  const client = new pg.Client({ application_name: "integration-test", ...config });
  client.on("error", () => {});
  await client.connect();
  try {
    return (await client.query<Row>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** The single value of `SHOW name`. */
export async function show(url: string, name: string): Promise<string> {
  const rows = await query<Record<string, string>>(url, `SHOW ${name}`);
  return Object.values(rows[0])[0];
}

const DDL = /^(CREATE|ALTER|DROP|GRANT|REVOKE|DO|COMMENT|REASSIGN|SECURITY LABEL)\b/i;

/**
 * The statements Postgres logged (with `log_statement`, forwarded as `PG:`
 * lines into `compute.log`) that change the catalog: CREATE/ALTER/DROP/GRANT/
 * REVOKE/DO/COMMENT/REASSIGN, as simple-protocol `statement:` or extended
 * `execute …:` records.
 */
export function loggedDdl(log: string): string[] {
  const statements: string[] = [];
  for (const line of log.split("\n")) {
    const match = /LOG:\s+(?:statement|execute [^:]*):\s+(.*)$/.exec(line);
    if (match && DDL.test(match[1].trim())) statements.push(match[1].trim());
  }
  return statements;
}

/**
 * Makes the compute's Postgres log a unique marker (a statement that fails,
 * naming a function that does not exist) and waits until the marker is in
 * `compute.log`. Postgres writes its log through one pipe that the manager and
 * the harness copy in order, so everything Postgres logged before the marker
 * is in the returned log text too.
 */
export async function logThroughMarker(
  compute: { postgresUrl: string; readLog(): Promise<string> },
): Promise<string> {
  const marker = `log_marker_${crypto.randomUUID().replaceAll("-", "")}`;
  await query(compute.postgresUrl, `SELECT ${marker}()`).then(
    () => Promise.reject(new Error(`${marker}() exists`)),
    () => undefined,
  );
  let log = "";
  await eventually(
    async () => (log = await compute.readLog()).includes(marker),
    `${marker} in the log`,
  );
  return log;
}

/** Polls `check` every `intervalMs` (100) until it returns true; throws `message` after `timeoutMs`. */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  message: string,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() >= deadline) throw new Error(`timed out: ${message}`);
    await sleep(intervalMs);
  }
}

/** Resolves with the promise's value, or throws `message` after `timeoutMs`. */
export async function within<T>(
  promise: Promise<T>,
  timeoutMs: number,
  message: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms: ${message}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
