/**
 * @module
 * Failpoints: named places in the manager where tests make things go wrong on
 * purpose, configured with the action language of Rust's `fail` crate, which
 * Neon's compute_ctl uses (`FAILPOINTS=name=actions;…` at start, `POST
 * /failpoints` while running). An action list is `action->action->…`; each
 * action is `[P%][N*]task[(arg)]`, where the task is `off`, `return`,
 * `sleep(ms)`, `panic`, `print`, `pause`, `yield` or `delay(ms)`. The first
 * action whose probability and remaining count allow it runs.
 *
 * The failpoints the manager evaluates: `compute-migration` (`return(N)` fails
 * migration N), `compute-prewarm` and `compute-promotion` (any `return` fails
 * that operation).
 */

import { sleep } from "../_async.ts";
import { getLogger } from "../log.ts";

const log = getLogger("failpoints");

/** An action string that does not parse; the message is the `fail` crate's. */
export class FailpointConfigError extends Error {
  override name = "FailpointConfigError";
}

/** Raised where a failpoint's `panic` task runs. */
export class FailpointPanic extends Error {
  override name = "FailpointPanic";
}

/** One task of an action. */
export type FailpointTask =
  | { kind: "off" }
  | { kind: "return"; value?: string }
  | { kind: "sleep"; ms: number }
  | { kind: "panic"; message?: string }
  | { kind: "print"; message?: string }
  | { kind: "pause" }
  | { kind: "yield" }
  | { kind: "delay"; ms: number }
  /** Neon's `exit` (only through `POST /failpoints`): end the process with code 1. */
  | { kind: "exit" };

/** One action: a task, the probability it runs (0–1) and how many more times it may. */
export interface FailpointAction {
  task: FailpointTask;
  frequency: number;
  /** Undefined: unlimited. */
  remaining?: number;
}

/** A failpoint that fired `return`, with its argument if it had one. */
export interface FailpointReturn {
  value?: string;
}

/** Splits at the first `separator`, like the `fail` crate's `partition`. */
function partition(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

/** Rust's `str::parse::<u64>()`, with its error texts. */
function parseUnsigned(text: string): number {
  if (text === "") throw new Error("cannot parse integer from empty string");
  if (!/^\+?\d+$/.test(text)) throw new Error("invalid digit found in string");
  const value = Number(text.replace(/^\+/, ""));
  if (!Number.isSafeInteger(value)) throw new Error("number too large to fit in target type");
  return value;
}

/** Rust's `str::parse::<f32>()`, with its error texts. */
function parseFloat32(text: string): number {
  if (text === "") throw new Error("cannot parse float from empty string");
  if (/^[+-]?(inf|infinity|nan)$/i.test(text)) {
    return Number(text.replace(/inf(inity)?/i, "Infinity"));
  }
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) {
    throw new Error("invalid float literal");
  }
  return Number(text);
}

/** Parses one action (`[P%][N*]task[(arg)]`); throws {@link FailpointConfigError}. */
export function parseAction(text: string): FailpointAction {
  let remain = text.trim();
  let args: string | undefined;
  const [beforeArgs, afterParen] = partition(remain, "(");
  if (afterParen !== undefined) {
    remain = beforeArgs;
    if (!afterParen.endsWith(")")) throw new FailpointConfigError("parentheses do not match");
    args = afterParen.slice(0, -1);
  }
  let frequency = 1;
  const [percent, afterPercent] = partition(remain, "%");
  if (afterPercent !== undefined) {
    remain = afterPercent;
    try {
      frequency = parseFloat32(percent) / 100;
    } catch (error) {
      throw new FailpointConfigError(`failed to parse frequency: ${(error as Error).message}`);
    }
  }
  let remaining: number | undefined;
  const [count, afterCount] = partition(remain, "*");
  if (afterCount !== undefined) {
    remain = afterCount;
    try {
      remaining = parseUnsigned(count);
    } catch (error) {
      throw new FailpointConfigError(`failed to parse count: ${(error as Error).message}`);
    }
  }
  const timeout = (): number => {
    if (args === undefined) throw new FailpointConfigError("sleep require timeout");
    try {
      return parseUnsigned(args);
    } catch (error) {
      throw new FailpointConfigError(`failed to parse timeout: ${(error as Error).message}`);
    }
  };
  let task: FailpointTask;
  switch (remain) {
    case "off":
      task = { kind: "off" };
      break;
    case "return":
      task = { kind: "return", value: args };
      break;
    case "sleep":
      task = { kind: "sleep", ms: timeout() };
      break;
    case "panic":
      task = { kind: "panic", message: args };
      break;
    case "print":
      task = { kind: "print", message: args };
      break;
    case "pause":
      task = { kind: "pause" };
      break;
    case "yield":
      task = { kind: "yield" };
      break;
    case "delay":
      task = { kind: "delay", ms: timeout() };
      break;
    default:
      throw new FailpointConfigError(`unrecognized command ${JSON.stringify(remain)}`);
  }
  return { task, frequency, remaining };
}

/** Parses an action list (`a->b->c`); throws {@link FailpointConfigError} for the first bad one. */
export function parseActions(text: string): FailpointAction[] {
  return text.split("->").map(parseAction);
}

/**
 * Splits a `FAILPOINTS` value (`name=actions;name=actions`, blanks ignored)
 * into pairs. Throws {@link FailpointConfigError} for an entry without `=`.
 */
export function parseFailpointsEnv(text: string): [name: string, actions: string][] {
  const pairs: [string, string][] = [];
  for (const raw of text.trim().split(";")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const [name, actions] = partition(entry, "=");
    if (actions === undefined) {
      throw new FailpointConfigError(`invalid failpoint: ${JSON.stringify(entry)}`);
    }
    pairs.push([name, actions]);
  }
  return pairs;
}

/** Options of {@link FailpointRegistry}; tests replace the side effects. */
export interface FailpointRegistryOptions {
  /** Ends the process for `exit`; default `Deno.exit`. */
  exit?: (code: number) => void;
  /** Uniform random number in [0, 1) for probabilities. */
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

interface Failpoint {
  actions: FailpointAction[];
  /** Resolved (and replaced) whenever the failpoint is reconfigured: ends `pause`. */
  changed: PromiseWithResolvers<void>;
}

/** The configured failpoints of a process. */
export class FailpointRegistry {
  #points = new Map<string, Failpoint>();
  #exit: (code: number) => void;
  #random: () => number;
  #sleep: (ms: number) => Promise<void>;

  constructor(options: FailpointRegistryOptions = {}) {
    this.#exit = options.exit ?? ((code) => Deno.exit(code));
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? sleep;
  }

  #set(name: string, actions: FailpointAction[]): void {
    const previous = this.#points.get(name);
    this.#points.set(name, { actions, changed: Promise.withResolvers() });
    previous?.changed.resolve();
  }

  /** Sets `name` to the action list `actions`; throws {@link FailpointConfigError}. */
  configure(name: string, actions: string): void {
    this.#set(name, parseActions(actions));
  }

  /**
   * Applies `POST /failpoints` entries in order: `exit` ends the process when
   * the failpoint is reached, anything else is an action list. Throws
   * {@link FailpointConfigError} at the first invalid entry (later ones are not applied).
   */
  configureAll(entries: readonly { name: string; actions: string }[]): void {
    for (const { name, actions } of entries) {
      log.info(`cfg failpoint: ${name} ${actions}`);
      if (actions === "exit") this.#set(name, [{ task: { kind: "exit" }, frequency: 1 }]);
      else this.configure(name, actions);
    }
  }

  /**
   * Configures every failpoint of a `FAILPOINTS` value (undefined or empty: none).
   * Throws {@link FailpointConfigError} naming the failpoint that does not parse.
   */
  configureFromEnv(text: string | undefined): void {
    for (const [name, actions] of parseFailpointsEnv(text ?? "")) {
      try {
        this.configure(name, actions);
      } catch (error) {
        throw new FailpointConfigError(
          `unable to configure failpoint "${name}": ${(error as Error).message}`,
        );
      }
    }
  }

  /** Removes `name` (a paused evaluation goes on). */
  remove(name: string): void {
    const previous = this.#points.get(name);
    this.#points.delete(name);
    previous?.changed.resolve();
  }

  /** The configured failpoint names. */
  names(): string[] {
    return [...this.#points.keys()];
  }

  /** Picks the first action allowed to run now, using up one of its count. */
  #pick(point: Failpoint): FailpointTask | undefined {
    for (const action of point.actions) {
      if (action.remaining === 0) continue;
      if (action.frequency < 1 && !(this.#random() < action.frequency)) continue;
      if (action.remaining !== undefined) action.remaining--;
      return action.task;
    }
    return undefined;
  }

  /**
   * Reaches the failpoint `name`: runs its task and resolves with
   * {@link FailpointReturn} when the task is `return`, else undefined.
   * `sleep`/`delay` wait, `pause` waits until the failpoint is reconfigured,
   * `panic` rejects with {@link FailpointPanic}, `exit` ends the process.
   */
  async evaluate(name: string): Promise<FailpointReturn | undefined> {
    const point = this.#points.get(name);
    if (point === undefined) return undefined;
    const task = this.#pick(point);
    switch (task?.kind) {
      case undefined:
      case "off":
        return undefined;
      case "return":
        log.info(`failpoint ${name} returned`, { value: task.value ?? null });
        return task.value === undefined ? {} : { value: task.value };
      case "sleep":
      case "delay":
        await this.#sleep(task.ms);
        return undefined;
      case "yield":
        await Promise.resolve();
        return undefined;
      case "pause":
        log.info(`failpoint ${name} paused`);
        await point.changed.promise;
        return undefined;
      case "print":
        log.info(task.message ?? `failpoint ${name} executed.`);
        return undefined;
      case "panic":
        throw new FailpointPanic(task.message ?? `failpoint ${name} panic`);
      case "exit":
        log.info("Exit requested by failpoint");
        this.#exit(1);
        return undefined;
    }
  }
}

/** The manager's failpoints: `main` loads `FAILPOINTS`, `POST /failpoints` changes them. */
export const failpoints: FailpointRegistry = new FailpointRegistry();
