/**
 * @module
 * The `START_WAL_PULL` announcement on a real loopback socket, against a
 * minimal libpq server: the exact query text and startup parameters a
 * safekeeper receives, and an ErrorResponse surfacing as the error.
 */

import assert from "node:assert/strict";
import { PgError, startPgServer, type StartupParameters } from "../../harness/pgwire.ts";
import { parseLsn } from "../../src/api/lsn.ts";
import { safekeeperStandbyName } from "../../src/api/safekeeper_names.ts";
import { SafekeeperTimeoutError } from "../../src/storage/safekeepers.ts";
import {
  announceWalSource,
  announceWalSourceToQuorum,
  walHistoryId,
  type WalSourceOptions,
  WalSourceQuorumError,
} from "../../src/storage/wal_source.ts";

const TENANT = "0123456789abcdef0123456789abcdef";
const TIMELINE = "fedcba9876543210fedcba9876543210";

const OPTIONS: WalSourceOptions = {
  tenantId: TENANT,
  timelineId: TIMELINE,
  postgres: { host: "127.0.0.1", port: 55432, user: "cloud_admin" },
  startLsn: parseLsn("0/169AD58"),
};

interface Received {
  startup: StartupParameters;
  query: string;
}

/** A fake safekeeper that records what it was sent and accepts every `START_WAL_PULL`. */
function acceptingSafekeeper(received: Received[]) {
  return startPgServer<undefined>({
    handleConnection: (conn) => (query) => {
      received.push({ startup: conn.startup, query });
      conn.sendCommandComplete("START_WAL_PULL");
      return Promise.resolve();
    },
  });
}

Deno.test("announceWalSource: the exact query and startup parameters", async () => {
  const received: Received[] = [];
  await using server = acceptingSafekeeper(received);
  const address = `127.0.0.1:${server.port}`;
  await announceWalSource(address, OPTIONS);

  assert.equal(received.length, 1);
  const [{ startup, query }] = received;
  assert.equal(
    query,
    "START_WAL_PULL (host '127.0.0.1', port '55432', user 'cloud_admin', " +
      `application_name '${safekeeperStandbyName(address)}', start_lsn '0/169AD58', ` +
      `instance_id '${walHistoryId(0x169AD58n)}')`,
  );
  assert.equal(safekeeperStandbyName(address), `safekeeper_127_0_0_1_${server.port}`);
  assert.equal(startup.user, "no_user");
  assert.equal(startup.database, "no_user");
  assert.equal(startup.options, `-c timeline_id=${TIMELINE} tenant_id=${TENANT}`);
});

Deno.test("announceWalSource: the storage token is the password", async () => {
  const passwords: string[] = [];
  await using server = startPgServer<string>({
    authenticate: (password) => {
      passwords.push(password);
      return Promise.resolve(password);
    },
    handleConnection: (conn) => () => {
      conn.sendCommandComplete("START_WAL_PULL");
      return Promise.resolve();
    },
  });
  await announceWalSource(`127.0.0.1:${server.port}`, { ...OPTIONS, authToken: "jwt.token.x" });
  assert.deepEqual(passwords, ["jwt.token.x"]);
});

Deno.test("announceWalSource: an ErrorResponse rejects with its message", async () => {
  await using server = startPgServer<undefined>({
    handleConnection: () => () => Promise.reject(new PgError("boom")),
  });
  await assert.rejects(announceWalSource(`127.0.0.1:${server.port}`, OPTIONS), {
    message: "boom",
    code: "XX000",
  });
});

Deno.test("announceWalSource: a silent safekeeper times out after timeoutMs", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const acceptor = (async () => {
    try {
      for await (const conn of listener) accepted.push(conn);
    } catch {
      // closed
    }
  })();
  try {
    const address = `127.0.0.1:${listener.addr.port}`;
    await assert.rejects(
      announceWalSource(address, { ...OPTIONS, timeoutMs: 100 }),
      (error: unknown) =>
        error instanceof SafekeeperTimeoutError &&
        error.message === `safekeeper ${address} did not answer START_WAL_PULL within 100 ms`,
    );
  } finally {
    listener.close();
    await acceptor;
    for (const conn of accepted) conn.close();
  }
});

Deno.test("announceWalSourceToQuorum: two accept, one errs; then one accepts, two err", async () => {
  const received: Received[] = [];
  await using good1 = acceptingSafekeeper(received);
  await using good2 = acceptingSafekeeper(received);
  await using bad1 = startPgServer<undefined>({
    handleConnection: () => () => Promise.reject(new PgError("boom")),
  });
  await using bad2 = startPgServer<undefined>({
    handleConnection: () => () => Promise.reject(new PgError("no such timeline")),
  });
  const at = (server: { port: number }) => `127.0.0.1:${server.port}`;

  const outcome = await announceWalSourceToQuorum([at(good1), at(bad1), at(good2)], {
    ...OPTIONS,
    deadlineMs: 5_000,
  });
  assert.deepEqual(outcome.accepted, [at(good1), at(good2)]);
  assert.equal(received.length, 2);

  await assert.rejects(
    announceWalSourceToQuorum([at(good1), at(bad1), at(bad2)], {
      ...OPTIONS,
      deadlineMs: 300,
    }),
    (error: unknown) => {
      assert.ok(error instanceof WalSourceQuorumError);
      assert.match(error.message, /accepted by 1 of 3 safekeepers, a quorum needs 2/);
      assert.ok(error.message.includes(`${at(bad1)}: boom`), error.message);
      assert.ok(error.message.includes(`${at(bad2)}: no such timeline`), error.message);
      return true;
    },
  );
});
