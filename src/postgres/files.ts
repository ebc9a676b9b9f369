/**
 * @module
 * The small files the manager writes into PGDATA around a basebackup: the
 * `pg_hba.conf` lines it needs, the `pg_dynshmem` symlink, `standby.signal`,
 * the temporary GUC override, the wipe-and-recreate of the directory itself, and
 * the one way configuration files are replaced ({@link replaceFile}).
 */

import { isIPv4, isIPv6 } from "node:net";

/** The line compute_ctl guarantees in `pg_hba.conf`: md5 for every host. */
export const MD5_HBA_LINE = "host\tall\t\tall\t\tall\t\tmd5";

/** The file `postgresql.conf` includes last (`include_if_exists`). */
export const TEMP_OVERRIDE_FILE = "compute_ctl_temp_override.conf";

/** Where `pg_dynshmem` points, so `dynamic_shared_memory_type = mmap` lives in tmpfs. */
export const DYNSHMEM_TARGET = "/dev/shm/";

/**
 * Replaces the file at `path` with `data` through a temporary file beside it
 * and a rename: Postgres reads the old file or the new one, never half of
 * one, and a write that fails (a full disk) leaves the old file whole. The new
 * file gets `mode`, else the old file's mode, else 0600.
 */
export async function replaceFile(
  path: string,
  data: string | Uint8Array,
  mode?: number,
): Promise<void> {
  const temporary = `${path}.new`;
  const fileMode = mode ??
    await Deno.stat(path).then((info) => (info.mode ?? 0o600) & 0o7777, () => 0o600);
  try {
    if (typeof data === "string") await Deno.writeTextFile(temporary, data, { mode: fileMode });
    else await Deno.writeFile(temporary, data, { mode: fileMode });
    // The mode given at creation is reduced by the umask.
    await Deno.chmod(temporary, fileMode);
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

/**
 * Ensures `line` is a line of the file at `path`, creating the file if needed.
 * Returns `false` if an identical line already exists (nothing written), `true`
 * if the line was appended: preceded by one `\n` when the file already had at
 * least one line, and never followed by a newline.
 */
export async function lineInFile(path: string, line: string): Promise<boolean> {
  let content = "";
  try {
    content = await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const lines = splitLines(content);
  if (lines.includes(line)) return false;
  const prefix = lines.length > 0 ? "\n" : "";
  await Deno.writeTextFile(path, prefix + line, { append: true, create: true });
  return true;
}

/** Lines as a buffered line reader yields them: `\n` or `\r\n` ends a line. */
function splitLines(content: string): string[] {
  if (content === "") return [];
  const lines = content.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines.map((line) => line.endsWith("\r") ? line.slice(0, -1) : line);
}

/**
 * Writes `text` into `<pgdata>/compute_ctl_temp_override.conf`, runs `fn`, then
 * truncates the file to zero bytes whether or not `fn` succeeded, and returns
 * what `fn` returned. Callers reload Postgres around it.
 */
export async function withTempOverride<T>(
  pgdata: string,
  text: string,
  fn: () => Promise<T>,
): Promise<T> {
  const path = `${pgdata}/${TEMP_OVERRIDE_FILE}`;
  await Deno.writeTextFile(path, text);
  try {
    return await fn();
  } finally {
    await Deno.truncate(path, 0);
  }
}

/** Appends the md5 `host all all all` line to `<pgdata>/pg_hba.conf` unless present. */
export async function ensureMd5HbaLine(pgdata: string): Promise<boolean> {
  return await lineInFile(`${pgdata}/pg_hba.conf`, MD5_HBA_LINE);
}

/**
 * The `pg_hba.conf` address field(s) admitting `host` (a safekeeper's host as
 * in `safekeeper_connstrings`): `<ipv4>/32`, `<ipv6>/128` (brackets
 * stripped), both loopback addresses for `localhost`, else the bare hostname.
 */
export function hbaAddresses(host: string): string[] {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (isIPv4(bare)) return [`${bare}/32`];
  if (isIPv6(bare)) return [`${bare}/128`];
  if (bare.toLowerCase() === "localhost") return ["127.0.0.1/32", "::1/128"];
  return [bare];
}

/**
 * The lines letting `user` open physical replication connections, without a
 * password, from each of `hosts` (one line per distinct address, in order):
 * `host\treplication\t<user>\t<address>\ttrust`.
 */
export function replicationHbaLines(hosts: readonly string[], user: string): string[] {
  const addresses = new Set(hosts.flatMap(hbaAddresses));
  return [...addresses].map((address) => `host\treplication\t${hbaToken(user)}\t${address}\ttrust`);
}

/**
 * Vanilla storage mode: appends to `<pgdata>/pg_hba.conf` the
 * {@link replicationHbaLines} not already there, so the safekeepers can stream
 * WAL from the compute as replication clients.
 */
export async function ensureReplicationHbaLines(
  pgdata: string,
  hosts: readonly string[],
  user: string,
): Promise<void> {
  for (const line of replicationHbaLines(hosts, user)) {
    await lineInFile(`${pgdata}/pg_hba.conf`, line);
  }
}

/** A user name as a `pg_hba.conf` token: double-quoted unless plain (and not the keyword `all`). */
function hbaToken(name: string): string {
  return /^[A-Za-z0-9_]+$/.test(name) && name !== "all" ? name : `"${name.replaceAll('"', '""')}"`;
}

/** The `ln` used when Deno may not create symlinks itself (see {@link linkDynshmem}). */
export const LN_BINARY = "/usr/bin/ln";

/**
 * Replaces `<pgdata>/pg_dynshmem` (a directory in the basebackup) with a
 * symlink to `/dev/shm/`. `Deno.symlink` needs unscoped read and write
 * permissions, which the `compute` permission set does not grant; then the
 * link is made by `/usr/bin/ln -s`, which only needs to be runnable.
 */
export async function linkDynshmem(pgdata: string): Promise<void> {
  const path = `${pgdata}/pg_dynshmem`;
  await removeIfExists(path, { recursive: true });
  try {
    await Deno.symlink(DYNSHMEM_TARGET, path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) throw error;
    const ln = await new Deno.Command(LN_BINARY, {
      args: ["-s", "--", DYNSHMEM_TARGET, path],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!ln.success) {
      const stderr = new TextDecoder().decode(ln.stderr).trim();
      throw new Error(`could not link ${path} to ${DYNSHMEM_TARGET}: ${stderr}`);
    }
  }
}

/** Creates an empty `<pgdata>/standby.signal` if it does not exist yet. */
export async function writeStandbySignal(pgdata: string): Promise<void> {
  await Deno.writeFile(`${pgdata}/standby.signal`, new Uint8Array(), {
    create: true,
    append: true,
  });
}

/**
 * Deletes `pgdata` and everything in it (a missing directory is fine), then
 * creates it afresh with mode 0700, as Postgres requires of a data directory.
 */
export async function recreatePgdata(pgdata: string): Promise<void> {
  await removeIfExists(pgdata, { recursive: true });
  await Deno.mkdir(pgdata, { recursive: true, mode: 0o700 });
  await Deno.chmod(pgdata, 0o700);
}

async function removeIfExists(path: string, options: Deno.RemoveOptions): Promise<void> {
  try {
    await Deno.remove(path, options);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
