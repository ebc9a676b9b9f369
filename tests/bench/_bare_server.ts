/**
 * @module
 * The HTTP baseline: a bare `Deno.serve` that answers fixed responses, the
 * same bytes the manager answered once for the same paths. Run as a child
 * process (`deno run --no-config --allow-net=127.0.0.1 --allow-read=FILE
 * _bare_server.ts FILE`); it reads the responses as JSON from FILE, listens on
 * a free loopback port and prints `listening <port>` when ready. No routing
 * library, no auth.
 */

/** One canned answer. */
export interface CannedResponse {
  status: number;
  headers: [string, string][];
  body: string;
}

/** Canned answers by path. */
export type CannedResponses = Record<string, CannedResponse>;

if (import.meta.main) {
  const responses: CannedResponses = JSON.parse(await Deno.readTextFile(Deno.args[0]));
  const bodies = new Map(
    Object.entries(responses).map((
      [path, { status, headers, body }],
    ) => [path, { status, headers, body: new TextEncoder().encode(body) }]),
  );
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(`listening ${port}`),
  }, (request) => {
    const canned = bodies.get(new URL(request.url).pathname);
    if (!canned) return new Response("not found\n", { status: 404 });
    return new Response(canned.body, { status: canned.status, headers: canned.headers });
  });
}
