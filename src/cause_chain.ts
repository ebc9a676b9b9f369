/**
 * @module
 * Rendering an error together with its causes, the way Rust's `anyhow` does
 * with `{:#}`: every message in the `cause` chain, outermost first, joined by
 * `": "`.
 */

import { errorMessage } from "./log.ts";

/** The messages of `error` and of each of its causes, joined by `": "`. */
export function causeChain(error: unknown): string {
  const messages: string[] = [];
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current);
    messages.push(errorMessage(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return messages.join(": ");
}
