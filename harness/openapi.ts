/**
 * @module
 * Renders the OpenAPI document of both HTTP servers into `docs/openapi.json`,
 * from the same route tables and zod schemas the servers use. A unit test fails
 * when the committed copy is stale.
 *
 * ```sh
 * deno task openapi
 * ```
 */

import { ComputeNode } from "../src/compute/node.ts";
import { externalRoutes } from "../src/http/external.ts";
import { internalRoutes } from "../src/http/internal.ts";
import {
  buildOpenApiDocument,
  type OpenApiDocument,
  renderOpenApiDocument,
  type ServerRoutes,
} from "../src/http/openapi.ts";
import { REPO_ROOT } from "./_compute.ts";

/** Where the rendered document is committed. */
export const OPENAPI_PATH = `${REPO_ROOT}/docs/openapi.json`;

/** Both route tables, bound to an idle compute that is never run. */
export function serverRoutes(): ServerRoutes {
  const node = new ComputeNode({
    pgbin: "/usr/lib/postgresql/15/bin/postgres",
    pgdata: "/nonexistent/pgdata",
    connstr: "postgresql://cloud_admin@127.0.0.1:5432/postgres",
    privilegedRoleName: "neon_superuser",
    internalHttpPort: 3081,
    exitDelayMs: 0,
    basebackupRetries: 0,
    computeId: "openapi",
  }, { spec: null, compute_ctl_config: { jwks: { keys: [] } } });
  return { external: externalRoutes(node), internal: internalRoutes(node) };
}

/** The document as the current code generates it. */
export function currentOpenApiDocument(): OpenApiDocument {
  return buildOpenApiDocument(serverRoutes());
}

if (import.meta.main) {
  await Deno.writeTextFile(OPENAPI_PATH, renderOpenApiDocument(currentOpenApiDocument()));
  console.log(`wrote ${OPENAPI_PATH}`);
}
