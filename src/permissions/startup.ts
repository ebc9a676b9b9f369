/**
 * @module
 * What the command line makes the manager use from the first moment, checked
 * before anything is touched: PGDATA, the `--config` file, `--pgbin` and
 * `pg_ctl` beside it, the install directories remote extensions go into, the
 * hosts of the URL flags and both listen addresses. A `--pgdata` outside the
 * grants would otherwise fail deep in start-up with Deno's generic "run again
 * with --allow-write". Optional things (pg_dump, the communicator socket) are
 * warnings: the compute runs without them.
 */

import type { CliOptions } from "../cli.ts";
import {
  COMMUNICATOR_SOCKET_NAME,
  MAX_DIRECT_SOCKET_PATH_BYTES,
} from "../postgres/communicator.ts";
import {
  type InstallDirs,
  installDirsFromLayout,
  InstallLayoutError,
} from "../postgres/install_layout.ts";
import { type ProgramStatus, programStatus, siblingBinary } from "../postgres/programs.ts";
import { denoPermissionQuery, type PermissionQuery, refusals } from "./refusals.ts";
import {
  listenRequirement,
  type Need,
  pathRequirement,
  postgresRequirement,
  programNeeds,
  type Requirement,
  socketRequirement,
  urlRequirement,
} from "./requirements.ts";

/** The flags whose targets are checked at start. */
export type StartupFlags = Pick<
  CliOptions,
  | "pgdata"
  | "pgbin"
  | "config"
  | "connstr"
  | "controlPlaneUri"
  | "remoteExtBaseUrl"
  | "externalHttpBind"
  | "externalHttpPort"
  | "internalHttpBind"
  | "internalHttpPort"
>;

/**
 * What the command line makes the manager use whatever the install: PGDATA
 * (read and write; the directory itself is removed and made again, its parent
 * is not touched), the `--config` file, `--pgbin` and `pg_ctl` beside it, the
 * hosts of `--connstr`, `--control-plane-uri` and `--remote-ext-base-url`,
 * and both HTTP listen addresses. Pure.
 */
export function startupRequirements(flags: StartupFlags): Requirement[] {
  const needs: Requirement[] = [
    pathRequirement(`--pgdata ${flags.pgdata}`, ["read", "write"], [flags.pgdata]),
    pgbinRequirement(flags.pgbin),
    postgresRequirement(flags.connstr),
    listenRequirement("--external-http-bind", flags.externalHttpBind, flags.externalHttpPort),
    listenRequirement("--internal-http-bind", flags.internalHttpBind, flags.internalHttpPort),
  ];
  if (flags.config !== undefined) {
    needs.push(pathRequirement(`--config ${flags.config}`, ["read"], [flags.config]));
  }
  if (flags.controlPlaneUri !== undefined) {
    needs.push(...urlRequirement("--control-plane-uri's", flags.controlPlaneUri));
  }
  if (flags.remoteExtBaseUrl !== undefined) {
    needs.push(...urlRequirement("--remote-ext-base-url's", flags.remoteExtBaseUrl));
  }
  return needs;
}

/**
 * `--pgbin` and `pg_ctl` beside it are run; the binary is also read, to find
 * `--sync-safekeepers` in it when its `--help` does not say (a bare name is
 * found through `PATH` and not read).
 */
function pgbinRequirement(pgbin: string): Requirement {
  const needs: Need[] = programNeeds([pgbin, siblingBinary(pgbin, "pg_ctl")]);
  if (pgbin.includes("/")) needs.push({ access: "read", target: pgbin, grant: pgbin });
  return { subject: `--pgbin ${pgbin} (with pg_ctl beside it)`, needs };
}

/** What the install of `--pgbin` adds to the start-up checks. */
export interface InstallCheck {
  /** Checked like {@linkcode startupRequirements}: a refusal stops the manager. */
  requirements: Requirement[];
  /** Logged: the compute runs, without what they name. */
  warnings: string[];
}

/** What {@linkcode installCheck} asks; replaceable for tests. */
export interface InstallCheckOptions {
  layout?: (pgbin: string) => Promise<InstallDirs>;
  programStatus?: (pgbin: string, name: string) => Promise<ProgramStatus>;
}

/**
 * Looks at the install of `--pgbin` (without running anything but asking
 * Deno): with `--remote-ext-base-url`, the directories extensions are
 * installed into must be readable and writable (found from the install's
 * layout: `pg_config`, which the first download asks when it is there, is
 * not run at start); and a missing or ungranted `pg_dump` is a warning
 * (`GET /database_schema` answers 500 without it).
 */
export async function installCheck(
  flags: Pick<StartupFlags, "pgbin" | "remoteExtBaseUrl">,
  options: InstallCheckOptions = {},
): Promise<InstallCheck> {
  const { layout = installDirsFromLayout, programStatus: status = programStatus } = options;
  const requirements: Requirement[] = [];
  const warnings: string[] = [];
  if (flags.remoteExtBaseUrl !== undefined) {
    try {
      const { sharedir, pkglibdir } = await layout(flags.pgbin);
      const extension = `${sharedir.replace(/\/+$/, "")}/extension`;
      requirements.push(pathRequirement(
        `--remote-ext-base-url installs extensions into ${extension} and ${pkglibdir}, which`,
        ["read", "write"],
        [extension, pkglibdir],
        true,
      ));
    } catch (error) {
      if (!(error instanceof InstallLayoutError)) throw error;
      warnings.push(
        `--remote-ext-base-url: ${error.message}; the first download asks pg_config, and ` +
          "whether it may write there is not checked at start",
      );
    }
  }
  const pgDump = siblingBinary(flags.pgbin, "pg_dump");
  switch (await status(flags.pgbin, "pg_dump")) {
    case "missing":
      warnings.push(
        `${pgDump} does not exist: pg_dump is not part of this PostgreSQL install, so ` +
          "GET /database_schema answers 500",
      );
      break;
    case "not_granted":
      warnings.push(
        `${pgDump} may not be run under the permissions this process was started with, so ` +
          `GET /database_schema answers 500: add ${JSON.stringify(pgDump)} to "run" in the ` +
          `"compute" permission set of deno.json, or run with --allow-run=${pgDump},` +
          `<the set's "run" list>`,
      );
      break;
  }
  return { requirements, warnings };
}

/**
 * A warning when `/autoscaling_metrics` cannot work under these permissions
 * (it is optional: vanilla Postgres has no communicator), else undefined. The
 * socket is granted only by its exact path (`unix:<path>` in `net`); a path
 * too long for a unix address is reached through a temporary link whose name
 * no grant can list in advance.
 */
export async function communicatorWarning(
  pgdata: string,
  query: PermissionQuery = denoPermissionQuery,
): Promise<string | undefined> {
  const path = `${pgdata.replace(/\/+$/, "")}/${COMMUNICATOR_SOCKET_NAME}`;
  const subject = `the communicator socket ${path} (GET /autoscaling_metrics)`;
  if (new TextEncoder().encode(path).length >= MAX_DIRECT_SOCKET_PATH_BYTES) {
    return `${subject}: the path is ${MAX_DIRECT_SOCKET_PATH_BYTES} bytes or longer, so it is ` +
      `reached through a temporary link in /tmp that no "net" grant can name: use a shorter --pgdata`;
  }
  const [refused] = await refusals([socketRequirement(subject, path)], query);
  return refused;
}
