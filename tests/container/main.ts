/**
 * @module
 * `deno task test-container [--pg N]` (default 17): builds the Containerfile
 * for PostgreSQL N with podman and runs a compute from the image against a
 * harness cluster on the host (`_scenario.ts`). Checks its tools first, makes
 * the Debian base image once (`_base_image.ts`), and removes the container,
 * the cluster and its own temporary directory whatever happens. Ends with one
 * `PASS` or `FAIL` line; exits 0 only on a pass, 2 on a bad command line.
 */

import { parseArgs } from "node:util";
import { locatePostgres, parsePgMajor, type PgMajor } from "../../harness/pg_locate.ts";
import { BASE_IMAGE, makeBaseImage } from "./_base_image.ts";
import { buildImage, checkTools, imageExists, imageTag } from "./_podman.ts";
import { report, step } from "./_report.ts";
import { checkPsql, runComputeScenario } from "./_scenario.ts";

const DEFAULT_MAJOR: PgMajor = 17;

/** Builds the image for `major` and runs the scenario against it; throws on any failure. */
async function testContainer(major: PgMajor): Promise<string> {
  checkTools();
  checkPsql();
  // The host's server of the same major makes the timeline's first image.
  const { pgbin } = await locatePostgres(major);
  const workDir = await Deno.makeTempDir({ prefix: "compute-ctl-test-container-" });
  try {
    await Deno.chmod(workDir, 0o755);
    if (await imageExists(BASE_IMAGE)) report(`${BASE_IMAGE} is there already`);
    else await step(`made ${BASE_IMAGE}`, makeBaseImage);
    const image = imageTag(major);
    const logPath = `${workDir}/build.log`;
    await step(
      `built ${image}`,
      () => buildImage({ tag: image, major, baseImage: BASE_IMAGE, logPath }),
    );
    await runComputeScenario({ image, pgbin, workDir });
    return image;
  } finally {
    await Deno.remove(workDir, { recursive: true });
  }
}

if (import.meta.main) {
  let major: PgMajor;
  try {
    const { values } = parseArgs({ args: Deno.args, options: { pg: { type: "string" } } });
    major = values.pg === undefined ? DEFAULT_MAJOR : parsePgMajor(values.pg);
  } catch (error) {
    console.error(`test-container: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(2);
  }
  const started = performance.now();
  try {
    const image = await testContainer(major);
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    console.log(
      `PASS: a compute from ${image} reached running, took /configure, a psql write and ` +
        `/terminate, and exited 0 (${seconds} s)`,
    );
    Deno.exit(0);
  } catch (error) {
    console.log(`FAIL: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
