/**
 * @module
 * What `pg_config` (beside `--pgbin`) says about the Postgres install: its
 * version and where extensions go (`--sharedir`/extension for control and SQL
 * files, `--pkglibdir` for libraries). A relocated install reports its own
 * location, so the paths follow wherever the binaries were copied.
 */

import { siblingBinary } from "./process.ts";

/** The parts of `pg_config` the extension downloader needs. */
export interface PgInstallInfo {
  /** `pg_config --version`, e.g. `PostgreSQL 15.4 (Debian 15.4-1)`. */
  version: string;
  /** `pg_config --sharedir`. */
  sharedir: string;
  /** `pg_config --pkglibdir`. */
  pkglibdir: string;
}

/** `pg_config` failed or printed something unexpected. */
export class PgConfigError extends Error {
  override name = "PgConfigError";
}

/** Runs `<dir of pgbin>/pg_config --version --sharedir --pkglibdir` and reads its three lines. */
export async function readPgConfig(pgbin: string): Promise<PgInstallInfo> {
  const binary = siblingBinary(pgbin, "pg_config");
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(binary, {
      args: ["--version", "--sharedir", "--pkglibdir"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    throw new PgConfigError(`could not run ${binary}: ${(error as Error).message}`);
  }
  const decoder = new TextDecoder();
  if (!output.success) {
    throw new PgConfigError(
      `${binary} exited with code ${output.code}: ${decoder.decode(output.stderr).trim()}`,
    );
  }
  const lines = decoder.decode(output.stdout).split("\n").map((line) => line.trim());
  const [version, sharedir, pkglibdir] = lines;
  if (!version || !sharedir || !pkglibdir) {
    throw new PgConfigError(`unexpected output of ${binary}: ${JSON.stringify(lines)}`);
  }
  return { version, sharedir, pkglibdir };
}
