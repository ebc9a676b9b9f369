/**
 * @module
 * A compute_ctl session whose connection failure is reported with a fixed
 * message (the reference's context text, e.g. `Failed to connect to the
 * database`) and the driver's error as its `cause`, so callers can tell a
 * failed connection from a failed statement.
 */

import pg from "pg";
import { clientConfig, type ClientOptions } from "./connect.ts";

/** Options for {@linkcode withSession}. */
export interface SessionOptions extends ClientOptions {
  /** Message of the error thrown when connecting fails. */
  connectError: string;
}

/**
 * Connects to `connstr` (with the session options of `clientConfig`), runs
 * `fn` and always ends the client. A connection failure throws
 * `Error(connectError, { cause })`; errors from `fn` pass through unchanged.
 */
export async function withSession<T>(
  connstr: string,
  { connectError, ...options }: SessionOptions,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client(clientConfig(connstr, options));
  // A server-side disconnect while idle is reported here; the next query fails anyway.
  client.on("error", () => {});
  try {
    try {
      await client.connect();
    } catch (error) {
      throw new Error(connectError, { cause: error });
    }
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Runs `sql` (simple protocol when `params` is empty); a failure throws
 * `Error("Failed to execute query: <sql>", { cause })`, as the reference words it.
 */
export async function queryOrExplain<Row extends pg.QueryResultRow = pg.QueryResultRow>(
  client: pg.Client,
  sql: string,
  params: unknown[] = [],
): Promise<pg.QueryResult<Row>> {
  try {
    return params.length === 0
      ? await client.query<Row>(sql)
      : await client.query<Row>(sql, params);
  } catch (error) {
    throw new Error(`Failed to execute query: ${sql}`, { cause: error });
  }
}
