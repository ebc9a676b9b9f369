/**
 * @module
 * Request bodies (and `--config` files) of the bad-input corpus, built from
 * their description: JSON, verbatim text or base64 bytes, a valid body with
 * edits (`set`, `delete`, `append`, a repeated string, deep nesting or raw
 * JSON text in place), deep nesting, or an oversize object. Pure.
 */

import type { BodySpec, Mutation, Repeat } from "./bad_input.ts";

/** The valid bodies that `configure` and `promote` edits start from. */
export interface BodyBases {
  configure: unknown;
  promote: unknown;
}

const encoder = new TextEncoder();

/** The text of a {@link Repeat}: prefix, `times` copies, suffix. */
export function repeatText({ repeat, times, prefix = "", suffix = "" }: Repeat): string {
  return prefix + repeat.repeat(times) + suffix;
}

/** `depth` nested arrays as JSON text: `[[…]]`. */
export function nestedArrays(depth: number): string {
  return "[".repeat(depth) + "]".repeat(depth);
}

/** The bytes of a body. */
export function buildBody(body: BodySpec, bases: BodyBases): Uint8Array {
  if ("json" in body) return encoder.encode(JSON.stringify(body.json));
  if ("text" in body) return encoder.encode(body.text);
  if ("base64" in body) return Uint8Array.from(atob(body.base64), (char) => char.charCodeAt(0));
  if ("configure" in body) {
    const bytes = encoder.encode(mutatedJson(bases.configure, body.configure));
    return body.cut === undefined ? bytes : bytes.slice(0, body.cut);
  }
  if ("promote" in body) return encoder.encode(mutatedJson(bases.promote, body.promote));
  if ("nested" in body) return encoder.encode(nestedArrays(body.nested));
  const filler = body.oversize - '{"spec":""}'.length;
  return encoder.encode(`{"spec":"${"x".repeat(filler)}"}`);
}

/**
 * `base` with `mutations` applied in order, as JSON text. Raw and nested
 * values are spliced into the text, so they can be what `JSON.stringify`
 * cannot write. An edit whose place an earlier edit took away (a field of a
 * `spec` that was replaced by a number) is skipped, or throws with `strict`.
 */
export function mutatedJson(
  base: unknown,
  mutations: readonly Mutation[],
  { strict = false }: { strict?: boolean } = {},
): string {
  const value = structuredClone(base);
  const splices = new Map<string, string>();
  let root = value;
  for (const mutation of mutations) {
    if (!strict && !reachable(root, mutation)) continue;
    if ("delete" in mutation) {
      const { parent, key } = locate(root, mutation.delete);
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete (parent as Record<string, unknown>)[key];
    } else if ("append" in mutation) {
      const list = lookup(root, mutation.append);
      if (!Array.isArray(list)) throw new Error(`${mutation.append} is not an array`);
      list.push(structuredClone(mutation.value));
    } else {
      let next: unknown;
      if ("value" in mutation) next = structuredClone(mutation.value);
      else if ("repeat" in mutation) next = repeatText(mutation);
      else {
        const token = `\u0001splice-${splices.size}\u0001`;
        splices.set(
          JSON.stringify(token),
          "raw" in mutation ? mutation.raw : nestedArrays(mutation.nested),
        );
        next = token;
      }
      if (mutation.set === "") root = next;
      else {
        const { parent, key } = locate(root, mutation.set);
        (parent as Record<string, unknown>)[key] = next;
      }
    }
  }
  let text = JSON.stringify(root);
  for (const [token, raw] of splices) text = text.replace(token, () => raw);
  return text;
}

/** Whether the place `mutation` edits exists (its parent, or the list it appends to). */
function reachable(root: unknown, mutation: Mutation): boolean {
  const path = "delete" in mutation
    ? mutation.delete
    : "append" in mutation
    ? mutation.append
    : mutation.set;
  if (path === "") return true;
  try {
    if ("append" in mutation) return Array.isArray(lookup(root, path));
    locate(root, path);
    return true;
  } catch {
    return false;
  }
}

function segments(path: string): string[] {
  return path.split(".");
}

function lookup(root: unknown, path: string): unknown {
  let current = root;
  for (const segment of segments(path)) {
    if (typeof current !== "object" || current === null) {
      throw new Error(`${path}: ${segment} is not inside an object or array`);
    }
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

function locate(root: unknown, path: string): { parent: object; key: string } {
  const parts = segments(path);
  const key = parts.pop()!;
  const parent = parts.length === 0 ? root : lookup(root, parts.join("."));
  if (typeof parent !== "object" || parent === null) {
    throw new Error(`${path}: the parent is not an object or array`);
  }
  return { parent, key };
}
