/**
 * @module
 * The timelines the emulated storage cluster serves. A timeline is a *base image*:
 * a PostgreSQL data directory left in the "shut down in recovery" state
 * (reference neon-04 §E.2 step 1), so that a compute started from a copy of it
 * runs crash recovery and stays on timeline 1.
 *
 * `initdb` runs once per process: the result is cycled through a standby start
 * and stop, cached as a template in a private temporary directory (removed when
 * the process unloads) and copied for each new timeline. The fake pageserver turns
 * a base image into a tar with {@link TimelineStore.basebackupTar}.
 *
 * PostgreSQL refuses to run as root, so when this process is root the server
 * binaries run as the `postgres` OS user (`runuser -u postgres --`) and the
 * template is owned by it.
 */

import { Buffer } from "node:buffer";
import { basename, dirname, join } from "node:path";
import { type Pack, pack as tarPack } from "tar-stream";
import { formatLsn, type Lsn, parseLsn } from "../src/api/lsn.ts";

/** Files of a base image that a basebackup never contains (the compute writes its own). */
export const BASEBACKUP_EXCLUDED_FILES: ReadonlySet<string> = new Set([
  "postgresql.conf",
  "postmaster.pid",
  "postmaster.opts",
  "standby.signal",
  "recovery.signal",
]);

const ID_PATTERN = /^[0-9a-f]{32}$/;
const TEMPLATE_STATE = "shut down in recovery";

/** Options of {@link createTimelineStore}. */
export interface TimelineStoreOptions {
  /** Directory under which timelines are kept; created if missing. */
  dir: string;
  /** The `postgres` binary (or its directory); `initdb`, `pg_ctl`, … are found beside it. */
  pgbin: string;
}

/** Options of {@link TimelineStore.basebackupTar}. */
export interface BasebackupTarOptions {
  /** Compress the tar with gzip. */
  gzip?: boolean;
}

/** The timelines of the emulated storage, shared by pageservers and safekeepers. */
export interface TimelineStore extends AsyncDisposable {
  readonly dir: string;
  /** Creates a timeline from the (cached) template; rejects a duplicate. */
  createTimeline(tenantId: string, timelineId: string): Promise<void>;
  hasTimeline(tenantId: string, timelineId: string): boolean;
  /** The "Latest checkpoint location" of the timeline's base image. */
  lastLsn(tenantId: string, timelineId: string): Lsn;
  /** The timeline's base image (a data directory owned by `postgres`). */
  baseImageDir(tenantId: string, timelineId: string): string;
  /**
   * A tar of the base image as of `lsn` (`0n` = latest), without the files in
   * {@link BASEBACKUP_EXCLUDED_FILES}. Rejects before any byte is produced when the
   * timeline is unknown ({@link TimelineNotFoundError}) or `lsn` is beyond its end
   * ({@link LsnNotReachedError}).
   */
  basebackupTar(
    tenantId: string,
    timelineId: string,
    lsn: Lsn,
    options?: BasebackupTarOptions,
  ): Promise<ReadableStream<Uint8Array>>;
  /** Stops running tar streams and removes every timeline this store created. */
  close(): Promise<void>;
}

/** The timeline is not in the store. */
export class TimelineNotFoundError extends Error {
  constructor(tenantId: string, timelineId: string) {
    super(`Timeline ${tenantId}/${timelineId} was not found`);
    this.name = "TimelineNotFoundError";
  }
}

/** A basebackup was asked for at an LSN the timeline has not reached. */
export class LsnNotReachedError extends Error {
  constructor(lsn: Lsn, lastLsn: Lsn) {
    super(
      `requested LSN ${formatLsn(lsn)} is beyond the end of the timeline (last LSN ${
        formatLsn(lastLsn)
      })`,
    );
    this.name = "LsnNotReachedError";
  }
}

/** A helper program failed. */
export class CommandFailedError extends Error {
  constructor(command: string, code: number, output: string) {
    super(`${command} exited with code ${code}: ${output.trim()}`);
    this.name = "CommandFailedError";
  }
}

interface TimelineEntry {
  baseDir: string;
  lastLsn: Lsn;
}

/**
 * Returns a store keeping timelines under `dir`; nothing is created until the
 * first {@link TimelineStore.createTimeline}. Close it to remove what it created.
 */
export function createTimelineStore(options: TimelineStoreOptions): TimelineStore {
  const { dir } = options;
  const timelines = new Map<string, TimelineEntry>();
  const creating = new Set<string>();
  const activePacks = new Set<Pack>();
  let ownsDir: boolean | undefined;
  let closed = false;

  const entryFor = (tenantId: string, timelineId: string) => {
    const entry = timelines.get(timelineKey(tenantId, timelineId));
    if (!entry) throw new TimelineNotFoundError(tenantId, timelineId);
    return entry;
  };
  const baseImageDir = (tenantId: string, timelineId: string) => {
    validateIds(tenantId, timelineId);
    return join(dir, "tenants", tenantId, "timelines", timelineId, "base");
  };

  const createTimeline = async (tenantId: string, timelineId: string) => {
    if (closed) throw new Error("timeline store is closed");
    const key = timelineKey(tenantId, timelineId);
    const baseDir = baseImageDir(tenantId, timelineId);
    if (timelines.has(key) || creating.has(key)) {
      throw new Error(`timeline ${key} already exists`);
    }
    creating.add(key);
    try {
      ownsDir ??= !(await exists(dir));
      const template = await templateFor(binDirOf(options.pgbin));
      await Deno.mkdir(dirname(baseDir), { recursive: true });
      await runChecked("cp", ["-a", template, baseDir]);
      const lastLsn = await checkpointLsn(binDirOf(options.pgbin), baseDir);
      timelines.set(key, { baseDir, lastLsn });
    } finally {
      creating.delete(key);
    }
  };

  const openTar = (
    tenantId: string,
    timelineId: string,
    lsn: Lsn,
    tarOptions: BasebackupTarOptions,
  ): ReadableStream<Uint8Array> => {
    const entry = entryFor(tenantId, timelineId);
    if (lsn > entry.lastLsn) throw new LsnNotReachedError(lsn, entry.lastLsn);
    const pack = tarPack();
    activePacks.add(pack);
    pack.on("close", () => activePacks.delete(pack));
    packImage(pack, entry.baseDir).catch((error) => pack.destroy(error));
    const tar = ReadableStream.from(tarChunks(pack));
    return tarOptions.gzip ? tar.pipeThrough(new CompressionStream("gzip")) : tar;
  };

  const close = async () => {
    if (closed) return;
    closed = true;
    for (const pack of activePacks) pack.destroy(new Error("timeline store closed"));
    timelines.clear();
    const target = ownsDir ? dir : join(dir, "tenants");
    await Deno.remove(target, { recursive: true }).catch(() => {});
  };

  return {
    dir,
    createTimeline,
    basebackupTar: (tenantId, timelineId, lsn, tarOptions = {}) =>
      new Promise((resolve) => resolve(openTar(tenantId, timelineId, lsn, tarOptions))),
    hasTimeline: (tenantId, timelineId) => timelines.has(timelineKey(tenantId, timelineId)),
    lastLsn: (tenantId, timelineId) => entryFor(tenantId, timelineId).lastLsn,
    baseImageDir,
    close,
    [Symbol.asyncDispose]: close,
  };
}

function timelineKey(tenantId: string, timelineId: string): string {
  return `${tenantId}/${timelineId}`;
}

function validateIds(tenantId: string, timelineId: string): void {
  for (const id of [tenantId, timelineId]) {
    if (!ID_PATTERN.test(id)) throw new Error(`invalid id ${JSON.stringify(id)}: need 32 hex`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

// ---------------------------------------------------------------------------
// Tar production

async function packImage(pack: Pack, root: string): Promise<void> {
  for await (const item of walkImage(root, "")) {
    const mode = (item.info.mode ?? 0o600) & 0o7777;
    const mtime = item.info.mtime ?? new Date();
    if (item.info.isDirectory) {
      await addEntry(pack, { name: item.name, type: "directory", mode, mtime });
    } else {
      const data = await Deno.readFile(join(root, item.name));
      const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      await addEntry(
        pack,
        { name: item.name, type: "file", mode, mtime, size: data.length },
        buffer,
      );
    }
  }
  pack.finalize();
}

/** The pack's output; Node Buffers are views of plain (never shared) ArrayBuffers. */
async function* tarChunks(pack: Pack): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  for await (const chunk of pack as AsyncIterable<Buffer>) yield chunk as Uint8Array<ArrayBuffer>;
}

interface WalkItem {
  name: string;
  info: Deno.FileInfo;
}

async function* walkImage(root: string, relative: string): AsyncGenerator<WalkItem> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(join(root, relative))) names.push(entry.name);
  names.sort();
  for (const name of names) {
    if (relative === "" && BASEBACKUP_EXCLUDED_FILES.has(name)) continue;
    const path = relative === "" ? name : `${relative}/${name}`;
    const info = await Deno.lstat(join(root, path));
    if (!info.isFile && !info.isDirectory) {
      throw new Error(`base image entry ${path} is neither a file nor a directory`);
    }
    yield { name: path, info };
    if (info.isDirectory) yield* walkImage(root, path);
  }
}

function addEntry(
  pack: Pack,
  header: Parameters<Pack["entry"]>[0],
  data?: Uint8Array,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error | null) => error ? reject(error) : resolve();
    if (data) pack.entry(header, data, done);
    else pack.entry(header, done);
  });
}

// ---------------------------------------------------------------------------
// Template (initdb once per process)

const templates = new Map<string, Promise<string>>();
const templateRoots = new Set<string>();
let unloadHookInstalled = false;

function binDirOf(pgbin: string): string {
  try {
    if (Deno.statSync(pgbin).isDirectory) return pgbin;
  } catch {
    // Fall through: treat it as the path of the postgres binary.
  }
  return dirname(pgbin);
}

function templateFor(binDir: string): Promise<string> {
  let template = templates.get(binDir);
  if (!template) {
    template = buildTemplate(binDir);
    templates.set(binDir, template);
    template.catch(() => templates.delete(binDir));
  }
  return template;
}

async function buildTemplate(binDir: string): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "timeline-template-" });
  rememberTemplateRoot(root);
  const owner = await postgresOwner();
  if (owner) await Deno.chown(root, owner.uid, owner.gid);
  const pgdata = join(root, "pgdata");
  await runChecked(...asPostgres(join(binDir, "initdb"), [
    "-U",
    "cloud_admin",
    "--auth=trust",
    "--no-sync",
    "--no-instructions",
    "--encoding=UTF8",
    "--locale=C",
    "-D",
    pgdata,
  ]));
  await cycleAsStandby(binDir, root, pgdata, owner);
  const state = (await controlData(binDir, pgdata)).get("Database cluster state");
  if (state !== TEMPLATE_STATE) {
    throw new Error(
      `template ${pgdata} is in state ${JSON.stringify(state)}, not ${TEMPLATE_STATE}`,
    );
  }
  return pgdata;
}

/** Starts the fresh cluster once as a standby and stops it: "shut down in recovery". */
async function cycleAsStandby(
  binDir: string,
  root: string,
  pgdata: string,
  owner: Owner | null,
): Promise<void> {
  const socketDir = join(root, "socket");
  const logFile = join(root, "standby.log");
  const signal = join(pgdata, "standby.signal");
  await Deno.mkdir(socketDir, { mode: 0o700 });
  await Deno.writeTextFile(signal, "");
  if (owner) {
    await Deno.chown(socketDir, owner.uid, owner.gid);
    await Deno.chown(signal, owner.uid, owner.gid);
  }
  const pgCtl = join(binDir, "pg_ctl");
  const serverOptions =
    `-c listen_addresses= -c unix_socket_directories=${socketDir} -c port=5432 -c fsync=off`;
  try {
    await runChecked(...asPostgres(pgCtl, [
      "start",
      "-w",
      "-t",
      "120",
      "-D",
      pgdata,
      "-l",
      logFile,
      "-o",
      serverOptions,
    ]));
  } catch (error) {
    const log = await Deno.readTextFile(logFile).catch(() => "");
    throw new Error(`${(error as Error).message}\n${log}`);
  } finally {
    await run(...asPostgres(pgCtl, ["stop", "-w", "-t", "120", "-m", "fast", "-D", pgdata]));
  }
  await Deno.remove(signal);
  await Deno.remove(logFile).catch(() => {});
  await Deno.remove(socketDir, { recursive: true }).catch(() => {});
}

function rememberTemplateRoot(root: string): void {
  templateRoots.add(root);
  if (unloadHookInstalled) return;
  unloadHookInstalled = true;
  globalThis.addEventListener("unload", () => {
    for (const dir of templateRoots) {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // Best effort at exit.
      }
    }
  });
}

async function checkpointLsn(binDir: string, pgdata: string): Promise<Lsn> {
  const location = (await controlData(binDir, pgdata)).get("Latest checkpoint location");
  if (location === undefined) throw new Error(`pg_controldata ${pgdata}: no checkpoint location`);
  return parseLsn(location);
}

async function controlData(binDir: string, pgdata: string): Promise<Map<string, string>> {
  const output = await runChecked(join(binDir, "pg_controldata"), ["-D", pgdata]);
  const fields = new Map<string, string>();
  for (const line of output.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return fields;
}

// ---------------------------------------------------------------------------
// Running helper programs

interface Owner {
  uid: number;
  gid: number;
}

let ownerLookup: Promise<Owner | null> | undefined;

/** The `postgres` user's ids when this process is root (files must be chowned), else null. */
function postgresOwner(): Promise<Owner | null> {
  ownerLookup ??= (async () => {
    if (Deno.uid() !== 0) return null;
    const passwd = await Deno.readTextFile("/etc/passwd");
    const line = passwd.split("\n").find((entry) => entry.startsWith("postgres:"));
    if (!line) throw new Error("running as root but there is no postgres user");
    const [, , uid, gid] = line.split(":");
    return { uid: Number(uid), gid: Number(gid) };
  })();
  return ownerLookup;
}

function asPostgres(command: string, args: string[]): [string, string[]] {
  if (Deno.uid() !== 0) return [command, args];
  return ["runuser", ["-u", "postgres", "--", command, ...args]];
}

async function run(
  command: string,
  args: string[],
): Promise<{ code: number; output: string }> {
  const result = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { LC_ALL: "C" },
  }).output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    output: decoder.decode(result.stdout) + decoder.decode(result.stderr),
  };
}

async function runChecked(command: string, args: string[]): Promise<string> {
  const { code, output } = await run(command, args);
  const name = command === "runuser" ? basename(args[3] ?? command) : basename(command);
  if (code !== 0) throw new CommandFailedError(name, code, output);
  return output;
}
