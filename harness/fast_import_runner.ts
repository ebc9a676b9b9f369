/**
 * @module
 * fast_import run the way production runs it: as the compute user (`deno run
 * -P=fast_import src/fast_import/main.ts …`, through `runuser -u postgres --
 * env …` when the harness is root) from the directory the compute managers
 * are launched from, with a clean environment. {@linkcode importDatabase} runs
 * `pgdata` against a source database and turns what it published into a new
 * timeline of a cluster: the demo's `--import`.
 *
 * ```ts
 * const { code, output } = await runFastImport({ args: ["--working-directory", dir, …] });
 * ```
 */

import { basename, dirname, join } from "node:path";
import { binDirOf } from "./base_image.ts";
import { type Cluster, type ImportedTimeline, managerRootFor } from "./cluster.ts";
import { randomHexId } from "./_compute_spec.ts";
import { ownedDir } from "./_fs.ts";
import { computeUserCommand, DEFAULT_PATH, freePort, giveToComputeUser } from "./_processes.ts";

/** How a run of fast_import ended. */
export interface FastImportResult {
  code: number;
  /** Everything it printed (stdout, then stderr interleaved as it came). */
  output: string;
}

/** Options of {@linkcode runFastImport}. */
export interface RunFastImportOptions {
  /** fast_import's arguments (global flags, subcommand, its flags). */
  args: readonly string[];
  /** Its whole environment besides `PATH`, `DENO_DIR`, `HOME` and `NO_COLOR`. */
  env?: Record<string, string>;
  /** Extra `deno run` flags, e.g. `--allow-run=…` for a `--pg-bin-dir` elsewhere. */
  denoFlags?: readonly string[];
  /** Called with each line it prints. */
  onLine?: (line: string) => void;
}

let denoDir: Promise<string> | undefined;

/** A DENO_DIR the compute user may write, made once per process and removed at exit. */
function sharedDenoDir(): Promise<string> {
  denoDir ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "fast-import-deno-" });
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // already gone
      }
    });
    await giveToComputeUser(dir);
    return dir;
  })();
  return denoDir;
}

/** Runs fast_import to completion as the compute user; never throws for a non-zero exit. */
export async function runFastImport(options: RunFastImportOptions): Promise<FastImportResult> {
  const root = await managerRootFor();
  const home = await sharedDenoDir();
  const child = computeUserCommand(
    Deno.execPath(),
    [
      "run",
      "-P=fast_import",
      ...(options.denoFlags ?? []),
      join(root, "src", "fast_import", "main.ts"),
      ...options.args,
    ],
    {
      cwd: root,
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? DEFAULT_PATH,
        HOME: home,
        DENO_DIR: home,
        NO_COLOR: "1",
        ...options.env,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    },
  ).spawn();
  const lines: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    let buffered = "";
    const take = (line: string) => {
      lines.push(line);
      options.onLine?.(line);
    };
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        take(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
      }
    }
    if (buffered !== "") take(buffered);
  };
  const [status] = await Promise.all([child.status, collect(child.stdout), collect(child.stderr)]);
  return { code: status.code, output: lines.join("\n") };
}

/**
 * The deno flags that grant the `fast_import` set's `run` list in `binDir`
 * (nothing when the set already names `binDir`'s programs).
 */
export function fastImportRunFlags(managerRoot: string, binDir: string): string[] {
  const config = JSON.parse(Deno.readTextFileSync(join(managerRoot, "deno.json")));
  const run: string[] = config.permissions.fast_import.run;
  if (run.some((entry) => dirname(entry) === binDir)) return [];
  return [`--allow-run=${run.map((entry) => join(binDir, basename(entry))).join(",")}`];
}

/** Options of {@linkcode importDatabase}. */
export interface ImportDatabaseOptions {
  /** The source database: a libpq URL or key=value string. */
  source: string;
  /** Default: a new random tenant. */
  tenantId?: string;
  /** Default: a new random timeline. */
  timelineId?: string;
  /** Called with each line fast_import prints. */
  onLine?: (line: string) => void;
}

/**
 * Runs `fast_import pgdata` from `source` into a private directory of the
 * cluster and creates a timeline from what it published; removes the
 * directory afterwards. Throws with fast_import's error when it fails (and
 * then nothing is in the store).
 */
export async function importDatabase(
  cluster: Pick<Cluster, "root" | "pgbin" | "importTimeline">,
  { source, tenantId = randomHexId(), timelineId = randomHexId(), onLine }: ImportDatabaseOptions,
): Promise<ImportedTimeline> {
  const binDir = binDirOf(cluster.pgbin);
  await Deno.mkdir(join(cluster.root, "imports"), { recursive: true, mode: 0o711 });
  const dir = await ownedDir(join(cluster.root, "imports", timelineId));
  try {
    const published = await ownedDir(join(dir, "published"));
    const { code, output } = await runFastImport({
      args: [
        "--working-directory",
        join(dir, "work"),
        "--pg-bin-dir",
        binDir,
        "--pg-lib-dir",
        join(dirname(binDir), "lib"),
        "--destination-dir",
        published,
        "pgdata",
        "--source-connection-string",
        source,
        "--pg-port",
        String(freePort()),
      ],
      denoFlags: fastImportRunFlags(await managerRootFor(), binDir),
      onLine,
    });
    if (code !== 0) {
      const failure = output.split("\n").reverse().find((line) => / ERROR /.test(line))
        ?.replace(/^\S+\s+ERROR\s+fast_import::\w+:\s*/, "");
      throw new Error(`fast_import exited with code ${code}${failure ? `: ${failure}` : ""}`);
    }
    return await cluster.importTimeline(tenantId, timelineId, published);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
