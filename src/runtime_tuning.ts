/**
 * @module
 * How the manager's own process is started, for memory: the V8 flags and the
 * allocator settings `deno task start` passes (and the harness, which starts
 * managers itself, passes the same; the container image sets the same
 * environment), and the collection after the basebackup. Without them the
 * manager works the same and keeps more memory.
 *
 * - `--expose-gc`: lets {@linkcode releaseMemory} collect once the basebackup's
 *   decompressed chunks (~50 MiB for a fresh database) are garbage.
 * - `MALLOC_MMAP_THRESHOLD_`: a fixed threshold keeps glibc from raising it
 *   after the first large buffer is freed, so large buffers stay mapped on
 *   their own and go back to the system when freed, instead of fragmenting
 *   the heap, which glibc does not return.
 * - `MALLOC_ARENA_MAX`: the threads that write PGDATA would each get an arena
 *   that keeps what they freed.
 *
 * `--optimize-for-size` would keep the heap smaller under load (after
 * 64-connection load ~115 against ~180 MiB) but cost a third of `/status`'s
 * throughput, so it is not used.
 */

/** The V8 flags of the manager's process. */
export const MANAGER_V8_FLAGS: readonly string[] = ["--expose-gc"];

/** The allocator environment of the manager's process (glibc reads it at start). */
export const MANAGER_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: "2",
  MALLOC_MMAP_THRESHOLD_: "131072",
};

/** The `deno run` argument carrying {@linkcode MANAGER_V8_FLAGS}. */
export function v8FlagsArgument(): string {
  return `--v8-flags=${MANAGER_V8_FLAGS.join(",")}`;
}

/**
 * Schedules one full collection (when the process has `gc`, see
 * `--expose-gc`) for after the current work: called once the basebackup is
 * extracted, it runs while Postgres starts, off the start-up's path.
 */
export function releaseMemory(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return;
  setTimeout(gc, 0);
}
