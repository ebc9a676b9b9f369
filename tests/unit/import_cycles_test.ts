/**
 * `src/` has no import cycle. The graph is read from the source text: every
 * `import … from "./…"`, `export … from "./…"` and `import "./…"` between
 * files of `src/` (type-only imports included: a cycle of types is still a
 * circle a reader has to untangle). No process is started.
 */

import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));

/** Every `.ts` file under `dir`, as paths relative to `src/`. */
function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) files.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts")) files.push(relative(SRC, path));
  }
  return files.sort();
}

/** The relative module specifiers of a file's static imports and re-exports. */
export function relativeImports(source: string): string[] {
  const pattern = /^\s*(?:(?:import|export)\s[^;]*?\bfrom\s*|import\s*)["'](\.{1,2}\/[^"']+)["']/gm;
  return [...source.matchAll(pattern)].map((match) => match[1]);
}

/** `file`'s imports of other `src/` files, as paths relative to `src/`. */
function importsOf(file: string): string[] {
  const text = Deno.readTextFileSync(join(SRC, file));
  return relativeImports(text).map((specifier) => normalize(join(dirname(file), specifier)));
}

/** Every cycle's files, one list per strongly connected component of more than one file. */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's algorithm.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (node: string) => {
    index.set(node, counter);
    low.set(node, counter);
    counter++;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    const selfImport = graph.get(node)?.includes(node) ?? false;
    if (component.length > 1 || selfImport) cycles.push(component.sort());
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return cycles;
}

Deno.test("the import reader sees every form of a relative import", () => {
  const source = [
    `import { a } from "./a.ts";`,
    `import type { B } from "../b.ts";`,
    `import {`,
    `  c,`,
    `  type D,`,
    `} from "./c.ts";`,
    `export { e } from "./e.ts";`,
    `export * from "./f.ts";`,
    `import "./g.ts";`,
    `import pg from "pg";`,
    `const text = "import x from './not_code.ts'";`,
    `export const PATH = "./not_an_import.ts";`,
  ].join("\n");
  assert.deepEqual(relativeImports(source), [
    "./a.ts",
    "../b.ts",
    "./c.ts",
    "./e.ts",
    "./f.ts",
    "./g.ts",
  ]);
});

Deno.test("the cycle finder finds a circle and nothing else", () => {
  const graph = new Map([
    ["a", ["b"]],
    ["b", ["c"]],
    ["c", ["a", "d"]],
    ["d", []],
    ["e", ["e"]],
  ]);
  assert.deepEqual(findCycles(graph), [["a", "b", "c"], ["e"]]);
  assert.deepEqual(findCycles(new Map([["a", ["b"]], ["b", []]])), []);
});

Deno.test("src/ has no import cycle", () => {
  const files = sourceFiles(SRC);
  const graph = new Map(files.map((file) => [file, importsOf(file)]));
  for (const [file, imports] of graph) {
    for (const target of imports) {
      assert.ok(graph.has(target), `${file} imports ${target}, which is not a file in src/`);
    }
  }
  assert.ok(files.length > 50, `only ${files.length} files found under src/`);
  assert.deepEqual(findCycles(graph), []);
});
