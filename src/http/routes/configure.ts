/**
 * @module
 * `POST /configure`: deliver a spec and wait until the compute runs it.
 * Body errors 400/413/415/422, invalid spec 400 (its shape or its content), wrong status 412,
 * configuration failure 500, success 200 with the status body.
 */

import { z } from "zod";
import { computeCtlConfigSchema } from "../../api/config.ts";
import { parseComputeSpecJson } from "../../api/parsed_spec.ts";
import type { ComputeNode } from "../../compute/node.ts";
import { readJsonBody } from "../json_body.ts";
import type { Route } from "../server.ts";

/**
 * The envelope: both keys required. The spec itself is checked separately so
 * that an invalid spec is a 400 with the spec's own message, not a 422.
 */
const envelopeSchema = z.object({ spec: z.unknown(), compute_ctl_config: computeCtlConfigSchema })
  .refine((body) => body.spec !== undefined, { message: "missing field `spec`", path: ["spec"] });

/** Blocks until the compute is `running` or `failed`. */
export function configureRoute(node: ComputeNode): Route {
  return {
    method: "POST",
    path: "/configure",
    auth: true,
    handler: async (c) => {
      const { spec } = await readJsonBody(c, envelopeSchema);
      return c.json(await node.configure(parseComputeSpecJson(spec)));
    },
  };
}
