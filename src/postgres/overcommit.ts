/**
 * @module
 * Reads the kernel's memory overcommit mode, which decides whether
 * `postgresql.conf` needs `dynamic_shared_memory_type = mmap` (mode 2 refuses
 * the large POSIX shared memory segments Postgres would otherwise create).
 */

/** Where Linux exposes `vm.overcommit_memory`. */
export const OVERCOMMIT_MEMORY_PATH = "/proc/sys/vm/overcommit_memory";

/**
 * Returns the overcommit mode (0, 1 or 2), or `undefined` when the file cannot
 * be read or does not hold a number (not Linux, no permission).
 */
export async function readOvercommitMemory(
  path: string = OVERCOMMIT_MEMORY_PATH,
): Promise<number | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : undefined;
}
