/**
 * @module
 * `POST /configure`: deliver a spec and wait until the compute runs it.
 * Body errors 400/413/415/422 (a spec of the wrong shape, or with a name or
 * setting PostgreSQL would refuse, is a 422), a spec that fails validation or
 * cannot apply to the running Postgres 400, wrong status 412, configuration
 * failure 500, success 200 with the status body.
 */

import { configurationRequestSchema } from "../../api/config.ts";
import { computeStatusResponseSchema, errorBodySchema } from "../../api/responses.ts";
import type { ComputeNode } from "../../compute/node.ts";
import { readJsonBody } from "../json_body.ts";
import type { Route } from "../server.ts";

/** Blocks until the compute is `running` or `failed`. */
export function configureRoute(node: ComputeNode): Route {
  return {
    method: "POST",
    path: "/configure",
    auth: true,
    handler: async (c) => {
      const { spec } = await readJsonBody(c, configurationRequestSchema);
      return c.json(await node.configure(spec));
    },
    doc: {
      operationId: "configureCompute",
      summary: "Perform compute node configuration.",
      description: "Validates the spec, requires `empty`, `running` or `failed` after a failed " +
        "reconfiguration, checks the spec against the running Postgres, and blocks until the " +
        "compute is `running` again (or `failed`: Postgres then keeps its previous " +
        "configuration). `compute_ctl_config` is required and ignored.",
      tags: ["Configure"],
      body: configurationRequestSchema,
      responses: {
        200: {
          description: "The compute runs the new spec",
          schema: computeStatusResponseSchema,
        },
        400: {
          description: "The spec parsed but is invalid (e.g. `tenant id should be provided`, " +
            "`duplicate entry in safekeeper_connstrings: <x>!`), or the running Postgres " +
            'could not apply it (e.g. `databases[0].owner: role "x" is neither in the ' +
            "spec nor in the catalog`); the status is unchanged",
          schema: errorBodySchema,
        },
        412: {
          description: "Not in `empty`, `running`, or `failed` after a failed " +
            "reconfiguration (Neon: `empty` or `running` only): " +
            "`invalid compute status: <status>`",
          schema: errorBodySchema,
        },
        500: {
          description: 'Configuration failed: `compute configuration failed: "<error>"`; ' +
            "Postgres runs its previous configuration and the compute is `failed`",
          schema: errorBodySchema,
        },
      },
    },
  };
}
