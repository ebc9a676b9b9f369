/**
 * @module
 * `POST /extension_server/{filename}[?is_library=true|false]` (internal): the
 * Neon extension asks for a control file or library Postgres is missing; the
 * compute downloads and installs the archive that has it. 200 with an empty
 * body once installed; 412 no remote extension storage configured, or no spec
 * yet (the reference panics there); 409 the spec has no `remote_extensions`;
 * 404 unknown library or extension; 500 the download failed; 400 for an
 * `is_library` that is not `true` or `false`.
 */

import { z } from "zod";
import { errorBodySchema } from "../../api/responses.ts";
import {
  type ExtensionServer,
  ExtensionServerError,
  type ExtensionServerErrorKind,
} from "../../compute/extension_server.ts";
import { emptyResponse, HttpError } from "../errors.ts";
import { optionalQueryParam } from "../query.ts";
import { queryRejection } from "../rejections.ts";
import type { Route } from "../server.ts";

const STATUS: Record<ExtensionServerErrorKind, number> = {
  not_configured: 412,
  no_spec: 412,
  no_remote_extensions: 409,
  not_found: 404,
  download_failed: 500,
};

const querySchema = z.object({
  is_library: z.enum(["true", "false"]).default("false").describe(
    "`true` when `filename` is a library (`postgis-3.so`), looked up in `library_index`",
  ),
});

/** `is_library` as serde reads a `bool` from a query string (absent: false). */
export function parseIsLibrary(url: string): boolean {
  const value = optionalQueryParam(url, "is_library", "json");
  if (value === undefined || value === "false") return false;
  if (value === "true") return true;
  throw queryRejection("provided string was not `true` or `false`", "json");
}

/** Blocks until the archive is installed (or was already). */
export function extensionServerRoute(server: ExtensionServer): Route {
  return {
    method: "POST",
    path: "/extension_server/:filename{.+}",
    auth: false,
    handler: async (c) => {
      const isLibrary = parseIsLibrary(c.req.url);
      try {
        await server.download(c.req.param("filename") ?? "", isLibrary);
      } catch (error) {
        if (error instanceof ExtensionServerError) {
          throw new HttpError(STATUS[error.kind], error.message);
        }
        throw error;
      }
      return emptyResponse(200);
    },
    doc: {
      operationId: "downloadExtension",
      summary: "Download a remote extension's archive and install its files.",
      description: "`filename` may contain `/`. Concurrent requests for one archive share one " +
        "download; an installed archive is not fetched again.",
      tags: ["Extension"],
      params: z.object({ filename: z.string() }),
      query: querySchema,
      responses: {
        200: { description: "Installed (or already was); empty body" },
        400: { description: "`is_library` is not `true` or `false`", schema: errorBodySchema },
        404: {
          description: "`library <name> is not found`, `extension <name> is not found` or " +
            "`real_ext_name <name> is not found`",
          schema: errorBodySchema,
        },
        409: {
          description: "`information about remote extensions is unavailable` (no " +
            "`remote_extensions` in the spec)",
          schema: errorBodySchema,
        },
        412: {
          description: "`remote storage is not configured` (no `--remote-ext-base-url`), or " +
            "no spec yet",
          schema: errorBodySchema,
        },
        500: {
          description: "`Failed to download a remote file: <why>`",
          schema: errorBodySchema,
        },
      },
    },
  };
}
