/**
 * @module
 * Small async helpers shared across the manager.
 */

/**
 * Resolves after `ms` milliseconds, or rejects with the signal's reason as soon
 * as `signal` aborts (at once if it already has), leaving no timer behind.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Resolves true once `work` has settled (either way), or false when `ms`
 * pass first. The timer is cleared either way, so nothing outlives the call;
 * for an owner that waits for its tasks but must not hang on a stuck one.
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([work.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Work was offered to a {@link TaskGroup} that its owner has closed. */
export class TaskGroupClosedError extends Error {
  override name = "TaskGroupClosedError";
}

/**
 * The work a service started in the background and its owner must see end:
 * {@link TaskGroup.run} starts and tracks a task, {@link TaskGroup.idle}
 * waits until none runs, {@link TaskGroup.close} refuses new tasks and waits.
 */
export class TaskGroup {
  readonly #name: string;
  readonly #running = new Set<Promise<unknown>>();
  #closed = false;

  /** `name` says whose tasks these are, in the refusal after {@link close}. */
  constructor(name: string) {
    this.#name = name;
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** How many tasks are running. */
  get size(): number {
    return this.#running.size;
  }

  /**
   * Starts `task` and tracks it until it settles; returns its promise. Throws
   * {@link TaskGroupClosedError} without starting it once the group is closed.
   */
  run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      throw new TaskGroupClosedError(`${this.#name}: the compute is shutting down`);
    }
    const started = task();
    this.#running.add(started);
    const forget = () => this.#running.delete(started);
    started.then(forget, forget);
    return started;
  }

  /** Resolves when no task runs, including tasks started while it waits; never rejects. */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled(this.#running);
  }

  /** Refuses new tasks from now on and resolves when the running ones have settled. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.idle();
  }
}
