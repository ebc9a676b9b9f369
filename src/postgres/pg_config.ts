/**
 * @module
 * What `pg_config` beside `--pgbin` says about where the install keeps
 * extensions (`--sharedir`: control and SQL files in its `extension/`;
 * `--pkglibdir`: libraries). A relocated install reports its own location.
 * `pg_config` is optional: Debian ships it, PostgreSQL from npm does not, and
 * a permission set may leave it out; then the answer is undefined and the
 * caller reads the install's layout instead.
 */

import { type InstallDirs, installDirsFromLayout } from "./install_layout.ts";
import { isMissingProgram, mayRun, siblingBinary } from "./programs.ts";

/** `pg_config` ran but failed or printed something unexpected. */
export class PgConfigError extends Error {
  override name = "PgConfigError";
}

/**
 * Runs `<dir of pgbin>/pg_config --sharedir --pkglibdir` and reads its two
 * lines. Undefined when there is no such program or this process may not run
 * it; throws {@linkcode PgConfigError} when it fails.
 */
export async function readPgConfigDirs(pgbin: string): Promise<InstallDirs | undefined> {
  const binary = siblingBinary(pgbin, "pg_config");
  if (!(await mayRun(binary))) return undefined;
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(binary, {
      args: ["--sharedir", "--pkglibdir"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (isMissingProgram(error)) return undefined;
    throw new PgConfigError(`could not run ${binary}: ${(error as Error).message}`);
  }
  const decoder = new TextDecoder();
  if (!output.success) {
    throw new PgConfigError(
      `${binary} exited with code ${output.code}: ${decoder.decode(output.stderr).trim()}`,
    );
  }
  const lines = decoder.decode(output.stdout).split("\n").map((line) => line.trim());
  const [sharedir, pkglibdir] = lines;
  if (!sharedir || !pkglibdir) {
    throw new PgConfigError(`unexpected output of ${binary}: ${JSON.stringify(lines)}`);
  }
  return { sharedir, pkglibdir };
}

/**
 * Where the install of `pgbin` keeps extensions: `pg_config`'s answer when it
 * is there and may run, else the install's layout (see
 * {@linkcode installDirsFromLayout}, whose error it throws when neither tells).
 */
export async function installDirs(pgbin: string): Promise<InstallDirs> {
  const fromPgConfig = await readPgConfigDirs(pgbin);
  if (fromPgConfig !== undefined) return fromPgConfig;
  const { sharedir, pkglibdir } = await installDirsFromLayout(pgbin);
  return { sharedir, pkglibdir };
}
