/**
 * @module
 * Where the compute's `ComputeConfig` comes from, at start-up and on every
 * refresh: the `--config` file, re-read each time, or the control plane's spec
 * endpoint (each attempt counted in `compute_ctl_cplane_requests_total`).
 */

import { type ComputeConfig, computeConfigSchema } from "../api/config.ts";
import { formatIssues } from "../api/spec.ts";
import { causeChain } from "../cause_chain.ts";
import { countCplaneRequest } from "../metrics.ts";
import { fetchComputeConfig } from "../storage/control_plane.ts";
import type { NodeSettings } from "./settings.ts";

/** The two mutually exclusive sources (with neither, fetching fails), and who asks. */
export type ConfigSource = Pick<
  NodeSettings,
  "configPath" | "controlPlaneUri" | "computeId" | "controlPlaneToken"
>;

/** The config could not be read or decoded. */
export class ConfigSourceError extends Error {
  override name = "ConfigSourceError";
}

/** Reads and validates a `ComputeConfig` JSON file. */
export async function readConfigFile(path: string): Promise<ComputeConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigSourceError(`could not read config file ${path}: ${error}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigSourceError(`config file ${path} is not JSON: ${error}`);
  }
  const parsed = computeConfigSchema.safeParse(json);
  if (!parsed.success) {
    throw new ConfigSourceError(`invalid config file ${path}: ${formatIssues(parsed.error)}`);
  }
  return parsed.data;
}

/**
 * Fetches the current config from whichever source is configured. A config
 * without `spec` means the control plane considers the compute empty. A
 * control-plane failure is a {@link ConfigSourceError} whose message carries
 * the whole cause chain (`Exhausted all attempts …: control plane responded
 * with 503 Service Unavailable`), so the one log line says why.
 */
export async function loadComputeConfig(source: ConfigSource): Promise<ComputeConfig> {
  if (source.configPath !== undefined) return await readConfigFile(source.configPath);
  if (source.controlPlaneUri !== undefined) {
    try {
      return await fetchComputeConfig({
        baseUri: source.controlPlaneUri,
        computeId: source.computeId,
        token: source.controlPlaneToken,
        onAttempt: countCplaneRequest,
      });
    } catch (error) {
      throw new ConfigSourceError(causeChain(error), { cause: error });
    }
  }
  throw new ConfigSourceError("config_path_test_only is not set");
}
