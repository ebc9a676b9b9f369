/**
 * The emulated Neon extension's probe loop on loopback sockets: a fake
 * Postgres that answers `SHOW`, the harness's pageservers, and a fake
 * manager counting `/refresh_configuration`.
 */

import assert from "node:assert/strict";
import { startNeonExtension } from "../../harness/neon_extension.ts";
import { type Pageserver, startPageserver } from "../../harness/pageserver.ts";
import { PgError, startPgServer } from "../../harness/pgwire.ts";
import type { TimelineStore } from "../../harness/timeline_store.ts";

const TENANT = "0123456789abcdef0123456789abcdef";
const TIMELINE = "fedcba9876543210fedcba9876543210";

/** Polls `check` every 10 ms; throws after 10 s. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A fake compute Postgres: `SHOW neon.pageserver_connstring` answers `state.connstring`. */
function fakePostgres(state: { connstring: string | null; shows: number }) {
  return startPgServer({
    handleConnection: (conn) => async (query) => {
      state.shows += 1;
      if (!/^SHOW neon\.pageserver_connstring$/i.test(query.trim())) {
        throw new PgError(`unexpected query ${query}`);
      }
      if (state.connstring === null) throw new PgError("the database system is starting up");
      conn.sendRowDescription(["neon.pageserver_connstring"]);
      conn.sendDataRow([state.connstring]);
      conn.sendCommandComplete("SHOW");
      await conn.flush();
    },
  });
}

/** A fake manager internal server counting `POST /refresh_configuration`. */
function fakeManager() {
  const seen = { refreshes: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const path = new URL(request.url).pathname;
    if (request.method === "POST" && path === "/refresh_configuration") {
      seen.refreshes += 1;
      return new Response(null, { status: 200 });
    }
    return new Response("not found", { status: 404 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** The harness pageserver over a store that knows every timeline (pagestream needs no more). */
function fakePageserver(id: number): Pageserver {
  const store = { hasTimeline: () => true } as unknown as TimelineStore;
  return startPageserver({ id, store });
}

Deno.test("the probe refreshes while the tenant is not attached, and stops once it is", async () => {
  await using first = fakePageserver(1);
  await using second = fakePageserver(2);
  await using manager = fakeManager();
  const postgresState = { connstring: first.libpqUrl as string | null, shows: 0 };
  await using postgres = fakePostgres(postgresState);
  first.attach(TENANT);
  second.attach(TENANT);
  await using extension = startNeonExtension({
    postgresUrl: `postgresql://cloud_admin@127.0.0.1:${postgres.port}/postgres`,
    internalHttp: manager.url,
    tenantId: TENANT,
    timelineId: TIMELINE,
    intervalMs: 10,
    backoffMs: 10,
  });

  await until(() => extension.probes >= 3, "three probes");
  assert.equal(manager.seen.refreshes, 0, "an attached tenant needs no refresh");
  assert.equal(first.misroutedRequests, 0);

  first.setSecondary(TENANT);
  await until(() => manager.seen.refreshes >= 2, "refreshes while misrouted");
  assert.ok(first.misroutedRequests >= 2, "the pageserver counted the misrouted requests");
  assert.equal(extension.refreshes, manager.seen.refreshes);

  // The compute follows the new configuration: the probe sees the tenant again.
  postgresState.connstring = `${second.libpqUrl},postgresql://no_user@127.0.0.1:1`;
  const switched = extension.probes;
  await until(() => extension.probes >= switched + 2, "probes after the switch");
  const settled = { probes: extension.probes, refreshes: manager.seen.refreshes };
  await until(() => extension.probes >= settled.probes + 3, "more probes");
  assert.equal(manager.seen.refreshes, settled.refreshes, "no refresh once attached");
  assert.equal(second.misroutedRequests, 0);
});

Deno.test("the probe refreshes when the tenant is gone or the pageserver refuses", async () => {
  await using pageserver = fakePageserver(1);
  await using manager = fakeManager();
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const refusedPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  const postgresState = { connstring: pageserver.libpqUrl as string | null, shows: 0 };
  await using postgres = fakePostgres(postgresState);
  await using extension = startNeonExtension({
    postgresUrl: `postgresql://cloud_admin@127.0.0.1:${postgres.port}/postgres`,
    internalHttp: manager.url,
    tenantId: TENANT,
    timelineId: TIMELINE,
    intervalMs: 10,
    backoffMs: 10,
  });

  // Never attached here: `not found`.
  await until(() => manager.seen.refreshes >= 1, "a refresh for an absent tenant");
  assert.ok(pageserver.misroutedRequests >= 1);

  postgresState.connstring = `postgresql://no_user@127.0.0.1:${refusedPort}`;
  const before = manager.seen.refreshes;
  await until(() => manager.seen.refreshes >= before + 1, "a refresh for a refused connection");
  assert.ok(extension.refreshes >= 2);
});

Deno.test("the probe skips silently while Postgres cannot answer SHOW", async () => {
  await using pageserver = fakePageserver(1);
  await using manager = fakeManager();
  const postgresState = { connstring: null as string | null, shows: 0 };
  await using postgres = fakePostgres(postgresState);
  pageserver.detach(TENANT);
  await using extension = startNeonExtension({
    postgresUrl: `postgresql://cloud_admin@127.0.0.1:${postgres.port}/postgres`,
    internalHttp: manager.url,
    tenantId: TENANT,
    timelineId: TIMELINE,
    intervalMs: 10,
    backoffMs: 10,
  });
  await until(() => postgresState.shows >= 3, "three SHOW attempts");
  assert.equal(extension.probes, 0);
  assert.equal(manager.seen.refreshes, 0);
  assert.equal(pageserver.misroutedRequests, 0);
});

Deno.test("stop() ends a probe waiting for its answer and leaves nothing open", async () => {
  let sawRequest!: () => void;
  const requested = new Promise<void>((resolve) => sawRequest = resolve);
  // A pageserver that opens the stream, reads the request and never answers.
  await using silent = startPgServer({
    handleConnection: (conn) => async () => {
      conn.sendCopyBothResponse();
      await conn.flush();
      while (await conn.readMessage() !== null) sawRequest();
    },
  });
  await using manager = fakeManager();
  await using postgres = fakePostgres({
    connstring: `postgresql://no_user@127.0.0.1:${silent.port}`,
    shows: 0,
  });
  const extension = startNeonExtension({
    postgresUrl: `postgresql://cloud_admin@127.0.0.1:${postgres.port}/postgres`,
    internalHttp: manager.url,
    tenantId: TENANT,
    timelineId: TIMELINE,
  });
  await requested;
  await extension.stop();
  await extension.stop();
  assert.equal(extension.probes, 0, "the interrupted probe does not count");
  assert.equal(manager.seen.refreshes, 0, "stopping is no failure");
});
