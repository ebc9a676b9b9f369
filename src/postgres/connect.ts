/**
 * @module
 * How compute_ctl connects to its own Postgres: the `--connstr` URL turned into
 * a `pg` client configuration whose startup options neutralise per-database
 * `ALTER DATABASE … SET` traps (role, read-only, search_path, statement_timeout,
 * pgaudit), {@linkcode openClient}, which opens such a session, marks it so
 * the Neon extension does not forward its DDL (unless asked not to) and
 * reports a failed connection with a fixed message when given one,
 * {@linkcode withClient}, which also always closes it, and
 * {@linkcode queryOrExplain}, which names the statement that failed.
 */

import pg from "pg";

/**
 * Startup options every compute_ctl session sends before any options from the
 * URL (which come later and therefore win). `pgaudit.log` is accepted by vanilla
 * PostgreSQL 15 even without pgaudit loaded: a dotted name is a placeholder GUC.
 */
export const SESSION_OPTIONS =
  "-c role=cloud_admin -c default_transaction_read_only=off -c search_path='' " +
  "-c statement_timeout=0 -c pgaudit.log=none";

/** Thrown when `--connstr` is not a `postgres://` / `postgresql://` URL. */
export class ConnstrError extends Error {
  constructor(connstr: string, reason: string) {
    super(`invalid connection string ${JSON.stringify(redact(connstr))}: ${reason}`);
    this.name = "ConnstrError";
  }
}

/** Options for {@linkcode clientConfig}. */
export interface ClientOptions {
  /** `application_name` reported in `pg_stat_activity`, e.g. `compute_ctl:apply_config`. */
  applicationName: string;
  /** Database to connect to instead of the one in the URL. */
  database?: string;
}

/** Options for {@linkcode withClient}. */
export interface SessionOptions extends ClientOptions {
  /**
   * Message of the error thrown when connecting fails (the driver's error
   * becomes its `cause`), e.g. the reference's `Failed to connect to the
   * database`; without it the driver's error is thrown as it is.
   */
  connectError?: string;
  /**
   * Leave `neon.forward_ddl` as the server has it instead of turning it off
   * (Neon's `/grants` and `/extensions` sessions send no `SET`).
   */
  forwardDdl?: boolean;
}

/**
 * Turns the `--connstr` URL into a `pg.ClientConfig`: host (or `?host=` socket
 * directory), port, user, password, database (or `options.database`), the
 * session options of {@linkcode SESSION_OPTIONS} followed by the URL's own
 * `options`, and `applicationName`.
 */
export function clientConfig(connstr: string, options: ClientOptions): pg.ClientConfig {
  const url = parseConnstr(connstr);
  const params = url.searchParams;
  const urlOptions = params.get("options")?.trim();
  const config: pg.ClientConfig = {
    host: params.get("host") ?? (decodeURIComponent(unbracket(url.hostname)) || "localhost"),
    port: url.port ? Number(url.port) : Number(params.get("port") ?? 5432),
    user: decodeURIComponent(url.username) || params.get("user") || undefined,
    password: url.password ? decodeURIComponent(url.password) : params.get("password") ?? undefined,
    database: options.database ?? systemDatabase(connstr),
    options: urlOptions ? `${SESSION_OPTIONS} ${urlOptions}` : SESSION_OPTIONS,
    application_name: options.applicationName,
  };
  const connectTimeout = params.get("connect_timeout");
  if (connectTimeout) config.connectionTimeoutMillis = Number(connectTimeout) * 1000;
  const sslmode = params.get("sslmode");
  if (sslmode === "require" || sslmode === "prefer") config.ssl = { rejectUnauthorized: false };
  else if (sslmode === "verify-ca" || sslmode === "verify-full") config.ssl = true;
  return config;
}

/**
 * The database named in the URL path (the "system database", normally
 * `postgres`); like libpq, defaults to the user name, then to `postgres`.
 */
export function systemDatabase(connstr: string): string {
  const url = parseConnstr(connstr);
  const path = decodeURIComponent(url.pathname.replace(/^\//, ""));
  return path || url.searchParams.get("dbname") || decodeURIComponent(url.username) || "postgres";
}

/**
 * Opens a session (see {@linkcode clientConfig}) and, unless `forwardDdl`,
 * runs `SET neon.forward_ddl = false` (a placeholder GUC on vanilla Postgres,
 * read by the Neon extension so compute_ctl's own DDL is not sent back to the
 * control plane). Returns the connected client, which the caller must end; a
 * driver error on the idle connection is swallowed (the next query fails
 * anyway). A failed connection throws `Error(connectError, { cause })` when
 * `connectError` is given, else the driver's error; nothing is left open.
 */
export async function openClient(
  connstr: string,
  { connectError, forwardDdl = false, ...options }: SessionOptions,
): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(connstr, options));
  client.on("error", () => {});
  try {
    try {
      await client.connect();
    } catch (error) {
      if (connectError === undefined) throw error;
      throw new Error(connectError, { cause: error });
    }
    if (!forwardDdl) await client.query("SET neon.forward_ddl = false");
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  }
  return client;
}

/**
 * Opens a session with {@linkcode openClient}, calls `fn`, and always ends
 * the client, whether `fn` resolved or threw. Errors from `fn` pass through
 * unchanged.
 */
export async function withClient<T>(
  connstr: string,
  options: SessionOptions,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = await openClient(connstr, options);
  try {
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

function parseConnstr(connstr: string): URL {
  let url: URL;
  try {
    url = new URL(connstr);
  } catch {
    throw new ConnstrError(connstr, "not a URL");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new ConnstrError(connstr, `unsupported scheme ${url.protocol}`);
  }
  return url;
}

function unbracket(hostname: string): string {
  return hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
}

function redact(connstr: string): string {
  return connstr.replace(/(\/\/[^:/@]*:)[^@/]*@/, "$1***@");
}
