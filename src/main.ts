/**
 * @module
 * The manager's entry point: parse the command line, refuse to run as root,
 * check that the permissions it runs under grant what the flags name and that
 * `--pgbin` is PostgreSQL 14 to 17, obtain the config (file or control
 * plane), start the two HTTP servers, run the compute, shut the servers down,
 * and exit with the compute's code.
 *
 * ```sh
 * deno run -P=compute src/main.ts --pgdata … --connstr … --compute-id … --config …
 * ```
 */

import { settlesWithin } from "./_async.ts";
import type { ComputeConfig } from "./api/config.ts";
import { SpecError } from "./api/parsed_spec.ts";
import { CliError, type CliOptions, parseCli } from "./cli.ts";
import { loadComputeConfig } from "./compute/config_source.ts";
import { failpoints } from "./compute/failpoints.ts";
import { ComputeNode } from "./compute/node.ts";
import { type NodeSettings, nodeSettings } from "./compute/settings.ts";
import { installSignalHandlers } from "./compute/termination.ts";
import { jwtAuth } from "./http/auth.ts";
import { startExternalServer } from "./http/external.ts";
import { startInternalServer } from "./http/internal.ts";
import { BindError, type HttpServer } from "./http/server.ts";
import { errorMessage, exitAfterLogs, getLogger, registerSecret, setupLogging } from "./log.ts";
import { buildTag } from "./metrics.ts";
import { refusals } from "./permissions/refusals.ts";
import { specRequirements } from "./permissions/spec.ts";
import { communicatorWarning, installCheck, startupRequirements } from "./permissions/startup.ts";
import { postgresMajor } from "./postgres/pg_version.ts";
import { supportsSyncSafekeepers } from "./postgres/process.ts";

const log = getLogger("main");

/** How long the servers may take to finish the requests still open once the compute has ended. */
const SERVER_SHUTDOWN_TIMEOUT_MS = 1_000;

/** Reads a variable the `compute` permission set allows; undefined when unset. */
function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * Starts the external and the internal server for `node`. Throws `BindError`
 * when one cannot listen, after shutting down the one already started.
 */
async function startServers(
  node: ComputeNode,
  cli: CliOptions,
  config: ComputeConfig,
): Promise<HttpServer[]> {
  const servers: HttpServer[] = [];
  try {
    const auth = jwtAuth({
      jwks: config.compute_ctl_config.jwks,
      computeId: cli.computeId,
      instanceId: env("INSTANCE_ID"),
    });
    servers.push(startExternalServer(node, {
      port: cli.externalHttpPort,
      hostname: cli.externalHttpBind,
      auth,
    }));
    servers.push(startInternalServer(node, {
      port: cli.internalHttpPort,
      hostname: cli.internalHttpBind,
      failpoints: cli.enableFailpoints ? failpoints : undefined,
    }));
    return servers;
  } catch (error) {
    await shutdownServers(servers);
    throw error;
  }
}

/** Shuts the servers down, giving open requests a bounded time to finish. */
async function shutdownServers(servers: readonly HttpServer[]): Promise<void> {
  const closed = Promise.all(servers.map((server) => server.shutdown()));
  if (!(await settlesWithin(closed, SERVER_SHUTDOWN_TIMEOUT_MS))) {
    log.warn(`HTTP requests still open after ${SERVER_SHUTDOWN_TIMEOUT_MS} ms; exiting anyway`);
  }
}

/** Logs each permission refusal as an error line; true when there was any. */
function logRefusals(lines: readonly string[]): boolean {
  for (const line of lines) log.error(line);
  return lines.length > 0;
}

/** Runs the manager and returns the process exit code. */
export async function main(args: readonly string[]): Promise<number> {
  let cli: CliOptions;
  try {
    cli = parseCli(args, { POSTGRES_PATH: env("POSTGRES_PATH") });
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    if (error.exitCode === 0) console.log(error.message);
    else console.error(`error: ${error.message}`);
    return error.exitCode;
  }
  setupLogging();
  if (Deno.uid() === 0) {
    log.error(
      "refusing to run as root: Postgres cannot run as root; start compute_ctl as an " +
        "unprivileged user (e.g. runuser -u postgres -- …)",
    );
    return 1;
  }
  log.info("starting compute_ctl", { build_tag: buildTag() });
  const install = await installCheck(cli);
  if (logRefusals(await refusals([...startupRequirements(cli), ...install.requirements]))) return 1;
  for (const warning of install.warnings) log.warn(warning);
  // Both ask the binary (a process each, and a read of it for the second):
  // started now, they run while the config is read and the servers start.
  const major = postgresMajor(cli.pgbin);
  major.catch(() => {}); // awaited below
  void supportsSyncSafekeepers(cli.pgbin); // cached for the start-up; never rejects
  const communicator = await communicatorWarning(cli.pgdata);
  if (communicator !== undefined) log.warn(communicator);
  try {
    log.info("found PostgreSQL", { major: await major, pgbin: cli.pgbin });
  } catch (error) {
    log.error(errorMessage(error));
    return 1;
  }

  let settings: NodeSettings;
  try {
    settings = nodeSettings(cli, {
      NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES: env("NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES"),
      FAILPOINTS: env("FAILPOINTS"),
      NEON_CONTROL_PLANE_TOKEN: env("NEON_CONTROL_PLANE_TOKEN"),
    });
    failpoints.configureFromEnv(settings.failpoints);
    registerSecret(settings.controlPlaneToken);
  } catch (error) {
    log.error(errorMessage(error));
    return 1;
  }

  let node: ComputeNode;
  let config: ComputeConfig;
  try {
    config = await loadComputeConfig(settings);
    node = new ComputeNode(settings, config);
  } catch (error) {
    if (error instanceof SpecError) {
      log.error(`invalid spec: ${error.message}`);
    } else {
      log.error(
        "neither spec nor confirmation that compute is in the Empty state was received",
        { error: errorMessage(error) },
      );
    }
    return 1;
  }

  if (node.parsedSpec && logRefusals(await refusals(specRequirements(node.parsedSpec)))) return 1;

  const removeSignalHandlers = installSignalHandlers(() => node.forwardTerminationSignal());
  let servers: HttpServer[];
  try {
    servers = await startServers(node, cli, config);
  } catch (error) {
    removeSignalHandlers();
    if (!(error instanceof BindError)) throw error;
    log.error(error.message);
    return 1;
  }
  try {
    return await node.run();
  } finally {
    removeSignalHandlers();
    await shutdownServers(servers);
  }
}

if (import.meta.main) {
  await exitAfterLogs(await main(Deno.args));
}
