/**
 * @module
 * Podman as `deno task test-container` uses it: every call reads
 * `containers.conf` beside this file (runc, no default ulimits), builds use
 * the host network, and a container started here is removed by its owner
 * even when the scenario fails.
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { pump } from "../../harness/_compute_http.ts";

/** The repository root: the build context, where `Containerfile` lives. */
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");

/** The image repository the Containerfile's header, docs/deploy.md and this test build. */
export const IMAGE_REPOSITORY = "compute-ctl-deno";

/** The tag of the image for PostgreSQL `major`: `localhost/compute-ctl-deno:pg17`. */
export function imageTag(major: number): string {
  return `localhost/${IMAGE_REPOSITORY}:pg${major}`;
}

const CONTAINERS_CONF = join(dirname(fileURLToPath(import.meta.url)), "containers.conf");

/** The programs the test needs on the host; each is also the name of its Debian package. */
const REQUIRED_TOOLS = ["podman", "runc", "debootstrap"] as const;

/** A podman call that exited non-zero. */
export class PodmanError extends Error {
  constructor(args: readonly string[], code: number, stderr: string) {
    super(`podman ${args.join(" ")} exited with code ${code}: ${stderr.trim()}`);
    this.name = "PodmanError";
  }
}

/** `podman args…` with this test's containers.conf, for callers that spawn it themselves. */
export function podmanCommand(
  args: readonly string[],
  options: Omit<Deno.CommandOptions, "args" | "env"> = {},
): Deno.Command {
  return new Deno.Command("podman", {
    ...options,
    args: [...args],
    env: { CONTAINERS_CONF },
  });
}

/** Runs `podman args…` to the end; returns its stdout, throws {@linkcode PodmanError} on failure. */
export async function podman(args: readonly string[]): Promise<string> {
  const output = await podmanCommand(args, { stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const decoder = new TextDecoder();
  if (!output.success) throw new PodmanError(args, output.code, decoder.decode(output.stderr));
  return decoder.decode(output.stdout);
}

/** Whether `podman image exists name` says yes. */
export async function imageExists(name: string): Promise<boolean> {
  const { code } = await podmanCommand(["image", "exists", name], {
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  return code === 0;
}

/** The full path of `program` on `PATH`, or undefined. */
function findOnPath(program: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      const info = Deno.statSync(join(dir, program));
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return join(dir, program);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Throws naming every missing tool and the command that installs them. */
export function checkTools(): void {
  const missing = REQUIRED_TOOLS.filter((tool) => findOnPath(tool) === undefined);
  if (missing.length > 0) {
    throw new Error(
      `missing on PATH: ${missing.join(", ")} ` +
        `(apt-get install -y ${REQUIRED_TOOLS.join(" ")})`,
    );
  }
}

/** What {@linkcode buildImage} builds. */
export interface BuildOptions {
  tag: string;
  major: number;
  baseImage: string;
  /** The build's output goes here as it comes. */
  logPath: string;
}

/**
 * Builds the repository's Containerfile as `tag`. The proxy CA named by
 * `NODE_EXTRA_CA_CERTS`, when set, goes in as the `extra-ca` build secret:
 * the steps that download mount it, the image never holds it.
 */
export async function buildImage({ tag, major, baseImage, logPath }: BuildOptions): Promise<void> {
  const ca = Deno.env.get("NODE_EXTRA_CA_CERTS");
  const args = [
    "build",
    "--network",
    "host",
    "--build-arg",
    `BASE_IMAGE=${baseImage}`,
    "--build-arg",
    `PG_MAJOR=${major}`,
    ...(ca ? ["--secret", `id=extra-ca,src=${ca}`] : []),
    "--tag",
    tag,
    "--file",
    join(REPO_ROOT, "Containerfile"),
    REPO_ROOT,
  ];
  const previous = await imageId(tag);
  using log = await Deno.open(logPath, { create: true, write: true, truncate: true });
  const child = podmanCommand(args, { stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
  await Promise.all([pump(child.stdout, log), pump(child.stderr, log)]);
  const { code } = await child.status;
  if (code !== 0) {
    const tail = (await Deno.readTextFile(logPath)).split("\n").slice(-30).join("\n");
    throw new PodmanError(args, code, `see ${logPath}:\n${tail}`);
  }
  // The image this build replaced under `tag` would otherwise pile up, one per change of src/.
  if (previous !== undefined && previous !== await imageId(tag)) {
    await podman(["rmi", previous]).catch(() => {
      // still used by a container someone else runs: leave it to them
    });
  }
}

/** The id of image `name`, or undefined when podman has no such image. */
async function imageId(name: string): Promise<string | undefined> {
  if (!(await imageExists(name))) return undefined;
  return (await podman(["image", "inspect", "--format", "{{.Id}}", name])).trim();
}

/** What {@linkcode startContainer} runs. */
export interface ContainerOptions {
  image: string;
  /** Arguments after the image: what the ENTRYPOINT gets. */
  args: readonly string[];
  /** `host:container[:options]` mounts. */
  volumes?: readonly string[];
  /** `container[:options]` tmpfs mounts. */
  tmpfs?: readonly string[];
  /** The container's output goes here as it comes. */
  logPath: string;
}

/** A container running in the foreground of a `podman run`; disposing removes it. */
export interface RunningContainer extends AsyncDisposable {
  readonly name: string;
  /** Resolves with the container's exit code. */
  readonly exited: Promise<number>;
  /** The exit code once it has exited, else undefined. */
  exitCode(): number | undefined;
  /** The last `lines` lines of its output. */
  logTail(lines?: number): Promise<string>;
}

/**
 * Starts `image` on the host network, with every capability dropped and no
 * privilege escalation (as docs/deploy.md's pod runs it), and `--rm`. Its
 * owner disposes it: `podman rm --force` (a no-op once it has gone).
 */
export async function startContainer(
  { image, args, volumes = [], tmpfs = [], logPath }: ContainerOptions,
): Promise<RunningContainer> {
  const name = `compute-ctl-test-${crypto.randomUUID().slice(0, 8)}`;
  const log = await Deno.open(logPath, { create: true, write: true, truncate: true });
  let child: Deno.ChildProcess;
  try {
    child = podmanCommand([
      "run",
      "--rm",
      "--name",
      name,
      "--network",
      "host",
      "--cap-drop",
      "all",
      "--security-opt",
      "no-new-privileges",
      ...volumes.flatMap((volume) => ["--volume", volume]),
      ...tmpfs.flatMap((mount) => ["--tmpfs", mount]),
      image,
      ...args,
    ], { stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
  } catch (error) {
    log.close();
    throw error;
  }
  const pumped = Promise.all([pump(child.stdout, log), pump(child.stderr, log)])
    .finally(() => log.close());
  let code: number | undefined;
  const exited = child.status.then((status) => code = status.code);
  const remove = async () => {
    if (code === undefined) await podman(["rm", "--force", "--ignore", "--time", "5", name]);
    await exited;
    await pumped;
  };
  return {
    name,
    exited,
    exitCode: () => code,
    logTail: async (lines = 40) =>
      (await Deno.readTextFile(logPath).catch(() => "")).split("\n").slice(-lines).join("\n"),
    [Symbol.asyncDispose]: remove,
  };
}
