/**
 * The communicator client behind `/autoscaling_metrics` (`src/postgres/communicator.ts`),
 * against fake communicators listening on a unix socket: status, content type
 * and body are relayed (chunked and fixed-length), the HTTP client is closed
 * with the body (Deno's resource sanitizer fails a test that leaks it),
 * failures carry the whole cause chain in hyper's words, and a long socket path
 * is reached through a temporary symlink.
 */

import assert from "node:assert/strict";
import {
  COMMUNICATOR_SOCKET_NAME,
  CommunicatorError,
  fetchAutoscalingMetrics,
  MAX_DIRECT_SOCKET_PATH_BYTES,
} from "../../src/postgres/communicator.ts";
import { within } from "./_helpers.ts";

interface Seen {
  method: string;
  path: string;
  host: string | null;
}

/** A fake communicator in a temp dir (or `dir`); disposing stops it and removes the dir. */
async function fakeCommunicator(
  handler: (request: Request) => Response,
  dir?: string,
): Promise<{ pgdata: string; seen: Seen[] } & AsyncDisposable> {
  const pgdata = dir ?? await Deno.makeTempDir({ prefix: "communicator_" });
  if (dir) await Deno.mkdir(dir, { recursive: true });
  const seen: Seen[] = [];
  const server = Deno.serve(
    { path: `${pgdata}/${COMMUNICATOR_SOCKET_NAME}`, onListen: () => {} },
    (request) => {
      seen.push({
        method: request.method,
        path: new URL(request.url).pathname,
        host: request.headers.get("host"),
      });
      return handler(request);
    },
  );
  return {
    pgdata,
    seen,
    [Symbol.asyncDispose]: async () => {
      await server.shutdown();
      await Deno.remove(pgdata, { recursive: true });
    },
  };
}

Deno.test("relays status, content type and a chunked body", async () => {
  const parts = ["# TYPE lfc_hits counter\n", "lfc_hits 42\n", "lfc_misses 7\n"];
  await using fake = await fakeCommunicator(() => {
    const body = ReadableStream.from(parts.map((part) => new TextEncoder().encode(part)));
    return new Response(body, { headers: { "content-type": "application/text" } });
  });
  const response = await fetchAutoscalingMetrics(fake.pgdata);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/text");
  assert.equal(response.headers.get("transfer-encoding"), "chunked");
  assert.equal(await new Response(response.body).text(), parts.join(""));
  assert.deepEqual(fake.seen, [{ method: "GET", path: "/autoscaling_metrics", host: "localhost" }]);
});

Deno.test("relays a non-200 status and a fixed-length body", async () => {
  await using fake = await fakeCommunicator(() =>
    new Response("not yet", { status: 503, headers: { "content-type": "text/plain" } })
  );
  const response = await fetchAutoscalingMetrics(fake.pgdata);
  assert.equal(response.status, 503);
  assert.equal(response.headers.get("content-length"), "7");
  assert.equal(await new Response(response.body).text(), "not yet");
});

/**
 * A raw communicator that answers one request with `response` and then
 * resolves `hungUp` once the client closes the connection. Keep-alive is on, so
 * only closing the HTTP client closes it.
 */
async function rawCommunicator(response: string) {
  const pgdata = await Deno.makeTempDir({ prefix: "communicator_" });
  const listener = Deno.listen({
    transport: "unix",
    path: `${pgdata}/${COMMUNICATOR_SOCKET_NAME}`,
  });
  const hungUp = (async () => {
    const conn = await listener.accept();
    try {
      await conn.read(new Uint8Array(4096));
      await conn.write(new TextEncoder().encode(response));
      while (await conn.read(new Uint8Array(4096)) !== null) { /* until the client hangs up */ }
    } finally {
      conn.close();
    }
  })();
  return {
    pgdata,
    /** Resolves when the client closed the connection; rejects after a generous guard. */
    hungUp: () => within(hungUp, 10_000, "the HTTP client kept the connection open"),
    [Symbol.asyncDispose]: async () => {
      listener.close();
      await Deno.remove(pgdata, { recursive: true });
    },
  };
}

Deno.test("the HTTP client is closed once the body has been read", async () => {
  await using fake = await rawCommunicator("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  const response = await fetchAutoscalingMetrics(fake.pgdata);
  assert.equal(await new Response(response.body).text(), "ok");
  await fake.hungUp();
});

Deno.test("cancelling the body hangs up", async () => {
  await using fake = await rawCommunicator(
    "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nlfc_hits 1\n",
  );
  const response = await fetchAutoscalingMetrics(fake.pgdata);
  const reader = response.body.getReader();
  assert.equal(new TextDecoder().decode((await reader.read()).value), "lfc_hits 1\n");
  await reader.cancel();
  await fake.hungUp();
});

Deno.test("no socket: the whole cause chain", async () => {
  const pgdata = await Deno.makeTempDir({ prefix: "communicator_" });
  try {
    await assert.rejects(
      () => fetchAutoscalingMetrics(pgdata),
      (error) =>
        error instanceof CommunicatorError &&
        error.message ===
          "connecting to communicator control socket: No such file or directory (os error 2)",
    );
  } finally {
    await Deno.remove(pgdata, { recursive: true });
  }
});

Deno.test("a peer that hangs up before answering: fetching … failed", async () => {
  const pgdata = await Deno.makeTempDir({ prefix: "communicator_" });
  const listener = Deno.listen({
    transport: "unix",
    path: `${pgdata}/${COMMUNICATOR_SOCKET_NAME}`,
  });
  const served = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(1024));
    await conn.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-le"));
    conn.close();
  })();
  try {
    await assert.rejects(
      () => fetchAutoscalingMetrics(pgdata),
      (error) =>
        error instanceof CommunicatorError &&
        error.message === "fetching metrics from Postgres metrics service: " +
            "connection closed before message completed",
    );
  } finally {
    await served;
    listener.close();
    await Deno.remove(pgdata, { recursive: true });
  }
});

Deno.test("a socket path of 100 bytes or more is reached through a temporary symlink", async () => {
  const base = await Deno.makeTempDir({ prefix: "communicator_" });
  const suffix = `/${COMMUNICATOR_SOCKET_NAME}`;
  const padding = MAX_DIRECT_SOCKET_PATH_BYTES + 2 - base.length - 1 - suffix.length;
  const pgdata = `${base}/${"p".repeat(padding)}`;
  assert.ok(`${pgdata}${suffix}`.length >= MAX_DIRECT_SOCKET_PATH_BYTES);
  assert.ok(`${pgdata}${suffix}`.length < 108, "still short enough for the fake to listen on");
  const links = async () => {
    const names: string[] = [];
    for await (const entry of Deno.readDir("/tmp")) {
      if (entry.name.startsWith(`compute_ctl.short-socket.${Deno.pid}.`)) names.push(entry.name);
    }
    return names;
  };
  try {
    await using fake = await fakeCommunicator(() => new Response("ok"), pgdata);
    const response = await fetchAutoscalingMetrics(fake.pgdata);
    assert.equal(await new Response(response.body).text(), "ok");
    assert.deepEqual(await links(), [], "the symlink is removed after connecting");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
