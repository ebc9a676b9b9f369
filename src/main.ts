/**
 * @module
 * The manager's entry point: parse the command line, refuse to run as root,
 * obtain the config (file or control plane), start the two HTTP servers, run
 * the compute, and exit with its code.
 *
 * ```sh
 * deno run -P=compute src/main.ts --pgdata … --connstr … --compute-id … --config …
 * ```
 */

import type { ComputeConfig } from "./api/config.ts";
import { SpecError } from "./api/parsed_spec.ts";
import { CliError, type CliOptions, parseCli } from "./cli.ts";
import { loadComputeConfig } from "./compute/config_source.ts";
import { createExtensionServer } from "./compute/extension_server.ts";
import { failpoints } from "./compute/failpoints.ts";
import { ComputeNode, type NodeSettings } from "./compute/node.ts";
import { DEFAULT_BASEBACKUP_RETRIES } from "./compute/startup.ts";
import { installSignalHandlers } from "./compute/termination.ts";
import { jwtAuth } from "./http/auth.ts";
import { startExternalServer } from "./http/external.ts";
import { startInternalServer } from "./http/internal.ts";
import { BindError } from "./http/server.ts";
import { errorMessage, getLogger, setupLogging } from "./log.ts";
import { buildTag } from "./metrics.ts";

const log = getLogger("main");

/** Reads a variable the `compute` permission set allows; undefined when unset. */
function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

function basebackupRetries(): number {
  const text = env("NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES");
  if (text === undefined) return DEFAULT_BASEBACKUP_RETRIES;
  if (!/^\d+$/.test(text)) {
    throw new Error(`NEON_COMPUTE_TESTING_BASEBACKUP_RETRIES must be a number, got ${text}`);
  }
  return Number(text);
}

function nodeSettings(cli: CliOptions): NodeSettings {
  return {
    pgbin: cli.pgbin,
    pgdata: cli.pgdata,
    connstr: cli.connstr.href,
    privilegedRoleName: cli.privilegedRoleName,
    internalHttpPort: cli.internalHttpPort,
    exitDelayMs: cli.exitDelayMs,
    basebackupRetries: basebackupRetries(),
    failpoints: env("FAILPOINTS"),
    configPath: cli.config,
    controlPlaneUri: cli.controlPlaneUri,
    computeId: cli.computeId,
    controlPlaneToken: env("NEON_CONTROL_PLANE_TOKEN"),
    installedExtensionsCollectionIntervalSeconds: cli.installedExtensionsCollectionIntervalSeconds,
  };
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

  let settings: NodeSettings;
  try {
    settings = nodeSettings(cli);
    failpoints.configureFromEnv(settings.failpoints);
  } catch (error) {
    log.error(errorMessage(error));
    return 1;
  }

  let node: ComputeNode;
  let config: ComputeConfig;
  try {
    config = await loadComputeConfig(settings);
    settings.tlsConfigured = config.compute_ctl_config.tls != null;
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

  installSignalHandlers(() => node.forwardTerminationSignal());
  try {
    const auth = jwtAuth({
      jwks: config.compute_ctl_config.jwks,
      computeId: cli.computeId,
      instanceId: env("INSTANCE_ID"),
    });
    startExternalServer(node, {
      port: cli.externalHttpPort,
      hostname: cli.externalHttpBind,
      auth,
    });
    startInternalServer(node, {
      port: cli.internalHttpPort,
      hostname: cli.internalHttpBind,
      extensionServer: createExtensionServer(node, cli.remoteExtBaseUrl),
      failpoints: cli.enableFailpoints ? failpoints : undefined,
    });
  } catch (error) {
    if (!(error instanceof BindError)) throw error;
    log.error(error.message);
    return 1;
  }
  return await node.run();
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
