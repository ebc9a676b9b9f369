/**
 * @module
 * How the harness launches a compute manager: the production command line
 * (`deno run -P=compute src/main.ts …`) as the compute user (through `runuser
 * -u postgres -- env …` when the harness is root), run from the repository
 * root (where `deno.json` defines `-P=compute`) with a clean environment.
 */

import type { ControlPlane } from "./control_plane.ts";
import type { ComputeOptions } from "./_compute.ts";
import { computeUserCommand, DEFAULT_PATH } from "./_processes.ts";
import { join } from "node:path";
import { COMMUNICATOR_SOCKET_NAME } from "../src/postgres/communicator.ts";
import { relocatedRunFlags } from "./pg_install.ts";

/** Where one compute lives and listens. */
export interface ManagerPaths {
  dir: string;
  pgdata: string;
  configPath: string;
  pgPort: number;
  externalPort: number;
  internalPort: number;
}

/** What the command line depends on besides the paths. */
export interface ManagerLaunch {
  options: ComputeOptions;
  controlPlane: ControlPlane;
  pgbin: string;
  exitDelayMs: number;
  denoDir: string;
  managerRoot: string;
  /** False: `INSTANCE_ID` is set, which switches the manager's JWT check off. */
  auth: boolean;
}

/**
 * `--allow-net` with the `compute` set's `net` list plus this compute's
 * communicator socket (`unix:<pgdata>/neon-communicator.socket`), which the set
 * grants for the production PGDATA only: Deno grants a unix socket by its exact
 * path, and with `-P` the flag replaces the set's list, so it repeats all of it.
 */
export function communicatorNetFlag(managerRoot: string, pgdata: string): string {
  const config = JSON.parse(Deno.readTextFileSync(join(managerRoot, "deno.json")));
  const net: string[] = config.permissions.compute.net;
  return `--allow-net=${[...net, `unix:${join(pgdata, COMMUNICATOR_SOCKET_NAME)}`].join(",")}`;
}

/** The manager's command: compute_ctl's flags, as `neon_local` passes them. */
export function managerCommand(context: ManagerLaunch, paths: ManagerPaths): Deno.Command {
  const { options, controlPlane } = context;
  const source = options.source ?? "config";
  const managerArgs = [
    "--external-http-port",
    String(paths.externalPort),
    "--internal-http-port",
    String(paths.internalPort),
    "--pgdata",
    paths.pgdata,
    "--connstr",
    `postgresql://cloud_admin@127.0.0.1:${paths.pgPort}/postgres`,
    ...(source === "config"
      ? ["--config", paths.configPath]
      : ["--control-plane-uri", controlPlane.url]),
    "--pgbin",
    context.pgbin,
    "--compute-id",
    options.id,
    "--exit-delay-ms",
    String(options.exitDelayMs ?? context.exitDelayMs),
    "--external-http-bind",
    "127.0.0.1",
    ...(options.extraArgs ?? []),
  ];
  const env = {
    PATH: Deno.env.get("PATH") ?? DEFAULT_PATH,
    HOME: paths.dir,
    DENO_DIR: context.denoDir,
    NO_COLOR: "1",
    ...(context.auth ? {} : { INSTANCE_ID: "" }),
    ...options.env,
  };
  return computeUserCommand(
    Deno.execPath(),
    [
      "run",
      "-P=compute",
      ...relocatedRunFlags(context.managerRoot, context.pgbin),
      communicatorNetFlag(context.managerRoot, paths.pgdata),
      `${context.managerRoot}/src/main.ts`,
      ...managerArgs,
    ],
    {
      cwd: context.managerRoot,
      clearEnv: true,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    },
  );
}
