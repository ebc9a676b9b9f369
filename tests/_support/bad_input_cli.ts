/**
 * @module
 * Runs the command-line cases of the bad-input corpus: the manager started
 * as production starts it (`deno run -P=compute src/main.ts …` as the
 * compute user, clean environment, from the repository root), with the
 * case's arguments and `--config` file, each in its own directory of a
 * sandbox the compute user owns. A run that outlives its time limit is
 * killed and reported, so an input the manager wrongly accepts cannot hang
 * the test.
 */

import { locatePostgresOnce } from "../../harness/pg_locate.ts";
import { join } from "node:path";
import { REPO_ROOT } from "../../harness/cluster.ts";
import {
  computeUserCommand,
  DEFAULT_PATH,
  giveToComputeUser,
  programPid,
  signalQuietly,
} from "../../harness/_processes.ts";
import { cliHelp } from "../../src/cli.ts";
import type { CliRequestSpec } from "./bad_input.ts";
import { mutatedJson } from "./bad_input_body.ts";
import type { CliOutcome } from "./bad_input_expect.ts";

/** The valid `ComputeConfig` that `configure` edits of a CLI case start from. */
export const CLI_BASE_CONFIG = {
  spec: {
    format_version: 1.0,
    cluster: { roles: [], databases: [] },
    tenant_id: "b0554b632bd4d547a63b86c3630317e8",
    timeline_id: "2414a61ffc94e428f14b5758fe308e13",
    pageserver_connstring: "postgresql://no_user@127.0.0.1:1",
    safekeeper_connstrings: ["127.0.0.1:1"],
    suspend_timeout_seconds: -1,
  },
  compute_ctl_config: { jwks: { keys: [] } },
};

/** How long one run may take before it is killed as hung. */
const RUN_TIMEOUT_MS = 30_000;

/** A directory tree the compute user owns, one sub-directory per run; disposing removes it. */
export interface CliSandbox extends AsyncDisposable {
  /** Runs one case; resolves with what the manager did and the placeholder values of the run. */
  run(request: CliRequestSpec): Promise<{ outcome: CliOutcome; vars: Record<string, string> }>;
}

/** Creates the sandbox under `/tmp` (which the `compute` permission set may read). */
export async function createCliSandbox(): Promise<CliSandbox> {
  const root = await Deno.makeTempDir({ dir: "/tmp", prefix: "bad-input-cli-" });
  await giveToComputeUser(root);
  const denoDir = join(root, "deno");
  await Deno.mkdir(denoDir);
  await giveToComputeUser(denoDir);
  let runs = 0;
  return {
    run: async (request) => {
      const dir = join(root, `run-${++runs}`);
      await Deno.mkdir(dir);
      await giveToComputeUser(dir);
      const vars = {
        CONFIG_PATH: join(dir, "config.json"),
        PGDATA: join(dir, "pgdata"),
        PGBIN: (await locatePostgresOnce()).pgbin,
        CLI_HELP: cliHelp() + "\n",
      };
      if (request.config !== undefined) {
        await Deno.writeFile(vars.CONFIG_PATH, configBytes(request.config), { mode: 0o644 });
      }
      const args = request.args.map((arg) =>
        arg.replaceAll("{{CONFIG_PATH}}", vars.CONFIG_PATH).replaceAll("{{PGDATA}}", vars.PGDATA)
          .replaceAll("{{PGBIN}}", vars.PGBIN)
      );
      return { outcome: await runManager(args, { home: dir, denoDir }), vars };
    },
    [Symbol.asyncDispose]: () => Deno.remove(root, { recursive: true }),
  };
}

function configBytes(config: NonNullable<CliRequestSpec["config"]>): Uint8Array {
  const encoder = new TextEncoder();
  if ("json" in config) return encoder.encode(JSON.stringify(config.json));
  if ("text" in config) return encoder.encode(config.text);
  if ("base64" in config) {
    return Uint8Array.from(atob(config.base64), (char) => char.charCodeAt(0));
  }
  return encoder.encode(mutatedJson(CLI_BASE_CONFIG, config.configure));
}

async function runManager(
  args: readonly string[],
  { home, denoDir }: { home: string; denoDir: string },
): Promise<CliOutcome> {
  const child = computeUserCommand(
    Deno.execPath(),
    ["run", "-P=compute", `${REPO_ROOT}/src/main.ts`, ...args],
    {
      cwd: REPO_ROOT,
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? DEFAULT_PATH,
        HOME: home,
        DENO_DIR: denoDir,
        NO_COLOR: "1",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    },
  ).spawn();
  let killed = false;
  const timer = setTimeout(async () => {
    killed = true;
    const manager = await programPid(child);
    if (manager !== undefined) signalQuietly(manager, "SIGKILL");
    signalQuietly(child.pid, "SIGKILL");
  }, RUN_TIMEOUT_MS);
  try {
    const output = await child.output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr) +
        (killed ? `\n[killed after ${RUN_TIMEOUT_MS} ms: the manager did not exit]` : ""),
    };
  } finally {
    clearTimeout(timer);
  }
}
