/**
 * @module
 * The processes this run started, found as descendants of this process in the
 * process table (`ps`; reading `/proc` needs Deno's `--allow-all`): after each
 * benchmark, anything still there is a leak to end and report, and on
 * SIGINT/SIGTERM it is what to stop before exiting.
 */

import { signalQuietly, sleep } from "../../harness/_processes.ts";

/** Live descendants of `root` (default this process), parents before children. */
export async function descendantPids(root: number = Deno.pid): Promise<number[]> {
  const output = await new Deno.Command("ps", {
    args: ["-e", "-o", "pid=,ppid=,stat="],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  const children = new Map<number, number[]>();
  for (const line of new TextDecoder().decode(output.stdout).split("\n")) {
    const match = /^\s*(\d+)\s+(\d+)\s+(\S+)/.exec(line);
    if (!match || match[3].startsWith("Z")) continue;
    const [pid, ppid] = [Number(match[1]), Number(match[2])];
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const found: number[] = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    found.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  // The `ps` that listed them is gone by now, and a gone pid is no descendant.
  return await alivePids(found);
}

/**
 * Ends every descendant of `root` (default this process): SIGTERM, then
 * SIGKILL to whatever is still there after `graceMs`. Returns the pids it
 * found (none: nothing leaked).
 */
export async function stopDescendants(
  { root = Deno.pid, graceMs = 5_000 }: { root?: number; graceMs?: number } = {},
): Promise<number[]> {
  const pids = await descendantPids(root);
  for (const pid of pids) signalQuietly(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && (await alivePids(pids)).length > 0) await sleep(100);
  for (const pid of await alivePids(pids)) signalQuietly(pid, "SIGKILL");
  return pids;
}

/** Those of `pids` that exist and are not zombies. */
async function alivePids(pids: readonly number[]): Promise<number[]> {
  if (pids.length === 0) return [];
  const output = await new Deno.Command("ps", {
    args: ["-o", "pid=,stat=", "-p", pids.join(",")],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  const alive = new Set<number>();
  for (const line of new TextDecoder().decode(output.stdout).split("\n")) {
    const match = /^\s*(\d+)\s+(\S+)/.exec(line);
    if (match && !match[2].startsWith("Z")) alive.add(Number(match[1]));
  }
  return pids.filter((pid) => alive.has(pid));
}
