/**
 * @module
 * `GET /autoscaling_metrics` (no auth): relays `GET /autoscaling_metrics`
 * from the communicator's unix socket in PGDATA, passing its status,
 * `Content-Type` and body through. 500 with the whole cause chain when the
 * socket cannot be reached, which is the normal answer on vanilla Postgres.
 */

import { z } from "zod";
import { errorBodySchema } from "../../api/responses.ts";
import { autoscalingMetrics } from "../../compute/probes.ts";
import type { ComputeNode } from "../../compute/node.ts";
import type { Route } from "../server.ts";

/** Not in Neon's OpenAPI document; the operation id is ours. */
export function autoscalingMetricsRoute(node: ComputeNode): Route {
  return {
    method: "GET",
    path: "/autoscaling_metrics",
    auth: false,
    handler: async (c) => {
      const relayed = await autoscalingMetrics(node);
      const headers: HeadersInit = relayed.contentType === null
        ? {}
        : { "content-type": relayed.contentType };
      // HEAD drops the body unread; cancelling it closes the socket.
      if (c.req.method === "HEAD") await relayed.body.cancel();
      const body = c.req.method === "HEAD" ? null : relayed.body;
      return new Response(body, { status: relayed.status, headers });
    },
    doc: {
      operationId: "getAutoscalingMetrics",
      summary: "LFC metrics from the communicator, in Prometheus text format (relayed)",
      tags: ["Info"],
      responses: {
        200: {
          description: "The communicator's answer (any status it sends is passed through)",
          schema: z.string(),
          contentType: "application/text",
        },
        500: {
          description: "The communicator socket could not be reached; the full cause chain",
          schema: errorBodySchema,
        },
      },
    },
  };
}
