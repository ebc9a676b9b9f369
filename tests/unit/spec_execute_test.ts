import assert from "node:assert/strict";
import {
  executePlan,
  type InDatabase,
  LANES_PER_EXTRA_SESSION,
  MAX_LANE_SESSIONS,
  SpecApplyError,
  type StatementSession,
} from "../../src/postgres/spec_execute.ts";
import type { PlanStep } from "../../src/postgres/spec_plan/mod.ts";

/**
 * Sessions that record which statement each sends, in order, and let the test
 * hold a statement until it releases it (with or without an error).
 */
class FakeServer {
  readonly sent: { session: string; sql: string }[] = [];
  readonly opened: string[] = [];
  readonly debug: string[] = [];
  readonly refused = new Set<string>();
  #held = new Map<string, PromiseWithResolvers<void>>();
  #started = new Map<string, PromiseWithResolvers<void>>();
  #failing = new Map<string, Error>();

  hold(...sqls: string[]): void {
    for (const sql of sqls) this.#held.set(sql, Promise.withResolvers());
  }

  release(sql: string, error?: Error): void {
    if (error) this.#failing.set(sql, error);
    this.#held.get(sql)?.resolve();
  }

  fail(sql: string, error: Error): void {
    this.#failing.set(sql, error);
  }

  /** Resolves once `sql` was sent. */
  started(sql: string): Promise<void> {
    return this.#startedOf(sql).promise;
  }

  session(name: string): StatementSession {
    return {
      query: async (sql: string) => {
        this.sent.push({ session: name, sql });
        this.#startedOf(sql).resolve();
        await this.#held.get(sql)?.promise;
        const error = this.#failing.get(sql);
        if (error) throw error;
      },
    };
  }

  inDatabase: InDatabase<StatementSession> = async (database, fn) => {
    await Promise.resolve();
    if (this.refused.has(database)) throw new Error(`too many connections for ${database}`);
    const name = `${database}#${this.opened.length}`;
    this.opened.push(name);
    return await fn(this.session(name));
  };

  sessionOf(sql: string): string | undefined {
    return this.sent.find((entry) => entry.sql === sql)?.session;
  }

  sqls(): string[] {
    return this.sent.map((entry) => entry.sql);
  }

  #startedOf(sql: string): PromiseWithResolvers<void> {
    let started = this.#started.get(sql);
    if (!started) {
      started = Promise.withResolvers();
      this.#started.set(sql, started);
    }
    return started;
  }
}

/**
 * Lets every promise callback already due run (a macrotask turn comes after
 * them all): with the other statements held, what a failure sets off is done.
 */
function drainCallbacks(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function run(server: FakeServer, steps: PlanStep[], concurrency: number): Promise<number> {
  return executePlan(steps, {
    client: server.session("main"),
    systemDatabase: "postgres",
    inDatabase: server.inDatabase,
    concurrency,
    log: {
      debug: (message: string) => server.debug.push(message),
      info() {},
      warn() {},
      error() {},
    },
  });
}

/** `CREATE DATABASE dN` and its grant, in lane `dN`, for N < count. */
function databaseLanes(count: number): PlanStep[] {
  return Array.from({ length: count }, (_, i) => [
    {
      stage: "global" as const,
      phase: "CreateAndAlterDatabases" as const,
      purpose: `create database d${i}`,
      sql: `CREATE DATABASE d${i}`,
      lane: `d${i}`,
    },
    {
      stage: "global" as const,
      phase: "CreateAndAlterDatabases" as const,
      purpose: `grant database d${i}`,
      sql: `GRANT ON d${i}`,
      lane: `d${i}`,
    },
  ]).flat();
}

/** Enough lanes for every extra session. */
const MANY = LANES_PER_EXTRA_SESSION * (MAX_LANE_SESSIONS - 1);

const SCHEMA_STEP: PlanStep = {
  stage: "global",
  phase: "CreateSchemaNeon",
  purpose: "create schema neon",
  sql: "CREATE SCHEMA neon",
};

function perDatabase(database: string, sql: string): PlanStep {
  return { stage: "per-database", phase: "ChangeSchemaPerms", database, purpose: sql, sql };
}

Deno.test("lanes run on up to MAX_LANE_SESSIONS sessions, each lane in order, before the next step", async () => {
  const server = new FakeServer();
  server.hold("CREATE DATABASE d0");
  const steps = [...databaseLanes(MANY), SCHEMA_STEP, perDatabase("d0", "ALTER SCHEMA public")];
  const done = run(server, steps, 10);

  await server.started(`GRANT ON d${MANY - 1}`);
  assert.ok(!server.sqls().includes("CREATE SCHEMA neon"));
  server.release("CREATE DATABASE d0");
  assert.equal(await done, 2 * MANY + 2);

  assert.deepEqual(server.opened, [
    ...Array.from({ length: MAX_LANE_SESSIONS - 1 }, (_, i) => `postgres#${i}`),
    `d0#${MAX_LANE_SESSIONS - 1}`,
  ]);
  for (let i = 0; i < MANY; i++) {
    const sqls = server.sqls();
    assert.ok(sqls.indexOf(`CREATE DATABASE d${i}`) < sqls.indexOf(`GRANT ON d${i}`));
    assert.equal(server.sessionOf(`GRANT ON d${i}`), server.sessionOf(`CREATE DATABASE d${i}`));
  }
  assert.deepEqual(server.sqls().slice(-2), ["CREATE SCHEMA neon", "ALTER SCHEMA public"]);
  assert.equal(server.sessionOf("CREATE SCHEMA neon"), "main");
});

Deno.test("lanes: the earliest failure in plan order is thrown and nothing starts after a failure", async () => {
  const server = new FakeServer();
  server.hold("CREATE DATABASE d0", "CREATE DATABASE d1", "CREATE DATABASE d2");
  const done = run(server, [...databaseLanes(MANY), SCHEMA_STEP], 3);
  await Promise.all([0, 1, 2].map((i) => server.started(`CREATE DATABASE d${i}`)));

  server.release("CREATE DATABASE d2", new Error("d2 is broken"));
  await drainCallbacks();
  server.release("CREATE DATABASE d1", new Error("d1 is broken"));
  server.release("CREATE DATABASE d0");
  await assert.rejects(done, (error: unknown) => {
    assert.ok(error instanceof SpecApplyError);
    assert.equal(
      error.message,
      "CreateAndAlterDatabases failed to create database d1: d1 is broken",
    );
    return true;
  });
  assert.deepEqual(server.sqls().sort(), [
    "CREATE DATABASE d0",
    "CREATE DATABASE d1",
    "CREATE DATABASE d2",
  ]);
});

Deno.test("lanes: a session that cannot be opened leaves its lanes to the others", async () => {
  const server = new FakeServer();
  server.refused.add("postgres");
  assert.equal(await run(server, [...databaseLanes(MANY), SCHEMA_STEP], 10), 2 * MANY + 1);
  assert.ok(server.sent.every((entry) => entry.session === "main"));
  assert.equal(server.debug.length, MAX_LANE_SESSIONS - 1);
  assert.match(server.debug[0], /too many connections for postgres/);
});

Deno.test("lanes: concurrency 1, or few lanes, run on the main session in plan order", async () => {
  for (const [lanes, concurrency] of [[MANY, 1], [LANES_PER_EXTRA_SESSION - 1, 10]]) {
    const server = new FakeServer();
    const steps = databaseLanes(lanes);
    assert.equal(await run(server, steps, concurrency), 2 * lanes);
    assert.deepEqual(server.opened, []);
    assert.deepEqual(server.sqls(), steps.map((step) => step.sql));
  }
});

Deno.test("per-database: after a failure no statement starts in any database", async () => {
  const server = new FakeServer();
  server.hold("a1");
  server.fail("b1", new Error("b is broken"));
  const steps = [
    perDatabase("a", "a1"),
    perDatabase("a", "a2"),
    perDatabase("b", "b1"),
    perDatabase("b", "b2"),
    perDatabase("c", "c1"),
  ];
  const done = run(server, steps, 2);
  await server.started("b1");
  await drainCallbacks();
  server.release("a1");
  await assert.rejects(done, /ChangeSchemaPerms in database "b" failed to b1: b is broken/);
  assert.deepEqual(server.sqls().sort(), ["a1", "b1"]);
});
