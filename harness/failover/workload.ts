/**
 * @module
 * The workloads a failover run keeps going while it breaks things: an insert
 * stream (one row per commit) and bank transfers between accounts whose total
 * must never change. Each remembers only what the database acknowledged (the
 * commit returned), so a verification can tell "lost" from "never committed".
 * Both follow the primary: `retarget(url)` points them at a new one, and a
 * failed commit is retried on a fresh connection.
 */

import pg from "pg";

/** How the workloads reach the primary and how hard they push. */
export interface WorkloadOptions {
  /** The primary's `postgres` URL (from `cluster.json`). */
  url: string;
  /** Accounts in the bank; default 10, each starting with 1000. */
  accounts?: number;
  /** Pause between two commits of one workload; default 5 ms. */
  pauseMs?: number;
}

/** A running pair of workloads. */
export interface Workloads extends AsyncDisposable {
  /** Rows whose INSERT committed. */
  readonly acknowledgedRows: ReadonlySet<number>;
  /** Transfers whose COMMIT returned. */
  readonly acknowledgedTransfers: number;
  /** The bank's total: what `SELECT sum(balance)` must always say. */
  readonly bankTotal: number;
  /** Resolves at the next commit of either workload after this call. */
  nextCommit(signal?: AbortSignal): Promise<number>;
  /** Points both workloads at another primary. */
  retarget(url: string): void;
  /** Stops both and waits for them. */
  stop(): Promise<void>;
}

/** Creates the tables (on `url`) and starts both workloads. */
export async function startWorkloads(options: WorkloadOptions): Promise<Workloads> {
  const accounts = options.accounts ?? 10;
  const pauseMs = options.pauseMs ?? 5;
  await withClient(options.url, async (client) => {
    await client.query(
      "CREATE TABLE IF NOT EXISTS failover_rows (id bigint PRIMARY KEY, at timestamptz DEFAULT now())",
    );
    await client.query(
      "CREATE TABLE IF NOT EXISTS failover_bank (id int PRIMARY KEY, balance bigint)",
    );
    await client.query(
      "INSERT INTO failover_bank SELECT g, 1000 FROM generate_series(1, $1) g ON CONFLICT DO NOTHING",
      [accounts],
    );
  });
  let url = options.url;
  const acknowledgedRows = new Set<number>();
  let transfers = 0;
  let waiters: ((at: number) => void)[] = [];
  const committed = () => {
    const at = performance.now();
    const woken = waiters;
    waiters = [];
    for (const wake of woken) wake(at);
  };
  const controller = new AbortController();

  let nextId = 1;
  const insert = loop(() => url, controller.signal, pauseMs, async (client) => {
    const id = nextId++;
    await client.query("INSERT INTO failover_rows (id) VALUES ($1)", [id]);
    acknowledgedRows.add(id);
    committed();
  });
  const bank = loop(() => url, controller.signal, pauseMs, async (client) => {
    const from = 1 + Math.floor(Math.random() * accounts);
    const to = 1 + ((from + Math.floor(Math.random() * (accounts - 1))) % accounts);
    const amount = 1 + Math.floor(Math.random() * 50);
    await client.query("BEGIN");
    try {
      await client.query("UPDATE failover_bank SET balance = balance - $1 WHERE id = $2", [
        amount,
        from,
      ]);
      await client.query("UPDATE failover_bank SET balance = balance + $1 WHERE id = $2", [
        amount,
        to,
      ]);
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    }
    transfers += 1;
    committed();
  });

  const stop = async () => {
    controller.abort();
    await Promise.all([insert, bank]);
  };
  return {
    acknowledgedRows,
    get acknowledgedTransfers() {
      return transfers;
    },
    bankTotal: accounts * 1000,
    nextCommit: (signal) =>
      new Promise((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        waiters.push(resolve);
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      }),
    retarget: (next) => url = next,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * Runs `work` on one connection until `signal` aborts; on any error drops the
 * connection and tries again (a commit in doubt is simply not acknowledged).
 */
async function loop(
  url: () => string,
  signal: AbortSignal,
  pauseMs: number,
  work: (client: pg.Client) => Promise<void>,
): Promise<void> {
  let client: pg.Client | null = null;
  let current = "";
  while (!signal.aborted) {
    try {
      if (client === null || current !== url()) {
        await client?.end().catch(() => {});
        current = url();
        client = new pg.Client({
          connectionString: current,
          application_name: "failover-workload",
          connectionTimeoutMillis: 2_000,
        });
        client.on("error", () => {});
        await client.connect();
      }
      await work(client);
    } catch {
      await client?.end().catch(() => {});
      client = null;
    }
    await pause(pauseMs, signal);
  }
  await client?.end().catch(() => {});
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Opens one connection to `url`, runs `fn`, closes it. */
export async function withClient<T>(
  url: string,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: "failover-check" });
  client.on("error", () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** What a verification found on the primary. */
export interface Verification {
  missingRows: number[];
  bankSum: number;
  ok: boolean;
}

/** Every acknowledged row present and the bank total intact, read from `url`. */
export async function verify(url: string, workloads: Workloads): Promise<Verification> {
  const acknowledged = [...workloads.acknowledgedRows];
  return await withClient(url, async (client) => {
    const { rows } = await client.query<{ id: string }>(
      "SELECT a.id FROM unnest($1::bigint[]) AS a(id) LEFT JOIN failover_rows r USING (id) WHERE r.id IS NULL",
      [acknowledged],
    );
    const [{ sum }] = (await client.query<{ sum: string }>(
      "SELECT coalesce(sum(balance), 0)::text AS sum FROM failover_bank",
    )).rows;
    const missingRows = rows.map((row) => Number(row.id));
    const bankSum = Number(sum);
    return {
      missingRows,
      bankSum,
      ok: missingRows.length === 0 && bankSum === workloads.bankTotal,
    };
  });
}
