/**
 * @module
 * The maintenance session: one session on the system database that the
 * compute keeps open for the work every `/configure` does there (the check of
 * the spec, the catalog snapshot, the plan and the apply's global statements)
 * instead of connecting anew each time; connecting costs more than that work.
 *
 * Uses run one at a time, in call order. The session is opened by the first
 * use. Each later use first puts the session back to how it started
 * ({@linkcode RESET_SESSION_SQL}), which also proves it is alive: when that
 * fails (the backend was terminated, Postgres restarted, the socket broke)
 * the use connects again, once, and runs on the new session. A use that
 * throws, or leaves a transaction open or the connection broken, ends the
 * session, so the next one starts afresh; its error is passed on unchanged.
 * The owner {@linkcode MaintenanceSession.reset}s it when Postgres restarts
 * and {@linkcode MaintenanceSession.close}s it when Postgres stops for good.
 */

import type pg from "pg";
import pLimit from "p-limit";
import { openClient, type SessionOptions } from "./connect.ts";

/** Runs `fn` on a session of the system database and resolves with what `fn` returned. */
export type SystemSession = <T>(fn: (client: pg.Client) => Promise<T>) => Promise<T>;

/**
 * Run before each reuse: back to the settings the session started with (its
 * startup options, the role included) and `neon.forward_ddl` off again.
 */
export const RESET_SESSION_SQL = "RESET ALL; RESET ROLE; SET neon.forward_ddl = false";

/** Thrown by a use of a {@linkcode MaintenanceSession} after it was closed. */
export class MaintenanceSessionClosedError extends Error {
  constructor() {
    super("the maintenance session is closed: postgres has stopped");
    this.name = "MaintenanceSessionClosedError";
  }
}

/** A kept session to the system database, see the module documentation. */
export interface MaintenanceSession extends AsyncDisposable {
  /** Runs `fn` on the session once the uses before it are done (see the module documentation). */
  readonly use: SystemSession;
  /**
   * Ends the open connection, if any (a use running on it fails); the next
   * use connects again. For a Postgres that is being restarted.
   */
  reset(): Promise<void>;
  /** Ends the open connection for good: later uses throw {@linkcode MaintenanceSessionClosedError}. */
  close(): Promise<void>;
}

/** A connected client and whether the driver still believes in its socket. */
interface Connection {
  readonly client: pg.Client;
  alive: boolean;
}

/**
 * Returns the maintenance session of the Postgres at `connstr`; nothing is
 * opened until the first use. `options` name the session (`applicationName`)
 * and its connection error, as for `withClient`; DDL forwarding is always off.
 */
export function maintenanceSession(
  connstr: string,
  options: Omit<SessionOptions, "database" | "forwardDdl">,
): MaintenanceSession {
  const oneAtATime = pLimit(1);
  let open: Connection | null = null;
  let closed = false;

  const connect = async (): Promise<Connection> => {
    const client = await openClient(connstr, { ...options, forwardDdl: false });
    const connection: Connection = { client, alive: true };
    const lost = () => {
      connection.alive = false;
    };
    client.on("error", lost);
    client.on("end", lost);
    return connection;
  };

  const drop = async (connection: Connection): Promise<void> => {
    if (open === connection) open = null;
    connection.alive = false;
    await connection.client.end().catch(() => {});
  };

  /** The open session, reset; or a new one when there is none or the reset fails. */
  const ready = async (): Promise<Connection> => {
    if (open !== null) {
      const kept = open;
      const reset = kept.alive &&
        await kept.client.query(RESET_SESSION_SQL).then(() => true, () => false);
      if (reset && kept.alive) return kept;
      await drop(kept);
    }
    const fresh = await connect();
    if (closed) {
      await drop(fresh);
      throw new MaintenanceSessionClosedError();
    }
    open = fresh;
    return fresh;
  };

  const use: SystemSession = (fn) =>
    oneAtATime(async () => {
      if (closed) throw new MaintenanceSessionClosedError();
      const connection = await ready();
      let keep = false;
      try {
        const result = await fn(connection.client);
        keep = connection.alive && connection.client.getTransactionStatus() === "I";
        return result;
      } finally {
        if (!keep) await drop(connection);
      }
    });

  const reset = async (): Promise<void> => {
    if (open !== null) await drop(open);
  };

  const close = async (): Promise<void> => {
    closed = true;
    await reset();
  };

  return { use, reset, close, [Symbol.asyncDispose]: close };
}
