/**
 * @module
 * Fuzzing a running compute with fast-check: each generated request (see
 * `bad_input_arbitraries.ts`) goes through the corpus runner, which checks
 * the invariants (manager alive and answering, still `running`, catalog
 * unchanged unless the request was accepted, accepted specs applied exactly,
 * nothing served without valid credentials, no 5xx but the documented ones).
 * A failure is shrunk by fast-check and saved as a pending case in
 * `fixtures/bad_input/fuzz_found/`, which the corpus tests replay.
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import fc from "fast-check";
import { serverRoutes } from "../../harness/openapi.ts";
import type { ServerRoutes } from "../../src/http/openapi.ts";
import { matchRoutePath, type Route } from "../../src/http/server.ts";
import { type BadInputCase, FUZZ_FOUND_DIR, routeEntry } from "./bad_input.ts";
import type { FuzzInput } from "./bad_input_arbitraries.ts";
import type { RawAnswer } from "./bad_input_http.ts";
import { type FailureCounts, recover, runHttpCase, type RunState } from "./bad_input_runner.ts";
import type { BadInputTarget } from "./bad_input_target.ts";

/** The seed when `FUZZ_SEED` does not give one. */
export const DEFAULT_FUZZ_SEED = 20_251_127;

/** `FUZZ_SEED` as a number, or the default. */
export function fuzzSeed(): number {
  const text = Deno.env.get("FUZZ_SEED");
  if (text === undefined || text === "") return DEFAULT_FUZZ_SEED;
  const seed = Number(text);
  if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED=${text} is not an integer`);
  return seed;
}

/**
 * 5xx answers that are a route's documented outcome rather than a fault:
 * no communicator on vanilla Postgres, a statement Postgres refused, a
 * download from unreachable extension storage, a promotion of a primary.
 */
const DOCUMENTED_SERVER_ERRORS: Record<string, RegExp> = {
  "/autoscaling_metrics": /^/,
  "/extensions": /^\{"error":"failed to install extension: /,
  "/grants": /^\{"error":"failed to grant role privileges to the schema: /,
  "/extension_server/:filename{.+}": /^\{"error":"Failed to download a remote file: /,
  "/promote": /^\{"status":"failed","error":"compute mode \\"primary\\" is not replica"\}$/,
};

interface Aim {
  entry: string;
  route: Route | undefined;
}

/** The route a request reaches, and its entry id (`<server> router` when none). */
function aimOf(input: FuzzInput, routes: ServerRoutes): Aim {
  const table = routes[input.server];
  const method = (input.request.method ?? "GET").toUpperCase();
  const pathname = (input.request.path ?? "/").split("?")[0];
  const path = matchRoutePath(table, pathname);
  const route = table.find((candidate) =>
    candidate.path === path &&
    (candidate.method === method || (method === "HEAD" && candidate.method === "GET"))
  );
  return {
    entry: route ? routeEntry(input.server, route.method, route.path) : `${input.server} router`,
    route,
  };
}

/** Whether the request carries the compute or admin token (its default is the compute token). */
function hasValidCredentials(input: FuzzInput): boolean {
  const auth = input.request.auth;
  return auth === undefined || auth === "compute" || auth === "admin";
}

function fuzzCheck(aim: Aim) {
  return (answer: RawAnswer | undefined): string | undefined => {
    if (answer === undefined) return "the connection closed without an answer";
    if (answer.status < 500) return undefined;
    const documented = aim.route && DOCUMENTED_SERVER_ERRORS[aim.route.path];
    if (documented?.test(answer.text)) return undefined;
    return `server error ${answer.status}: ${answer.text.slice(0, 300)}`;
  };
}

/** What a fuzz run needs: the target, its run state and the counts to add to. */
export interface FuzzContext {
  target: BadInputTarget;
  state: RunState;
  counts: FailureCounts;
  /** How many answers had each status (`closed`: none), to show what the runs reached. */
  answers: Map<string, number>;
  /**
   * The latest failing input: while fast-check shrinks, the smallest that still
   * fails. Kept in case the time limit cuts fast-check's own report short.
   */
  lastFailure?: { input: FuzzInput; why: string };
  /**
   * The run under way: the time limit makes fast-check stop waiting for it,
   * not stop it, so the caller awaits it before looking at the compute.
   */
  inFlight?: Promise<void>;
}

/**
 * The property: the request keeps every invariant. A compute an earlier
 * input left dead or `failed` is replaced before the next input, so each
 * input (shrinking's included) meets a running compute.
 */
export function fuzzProperty(
  arbitrary: fc.Arbitrary<FuzzInput>,
  context: FuzzContext,
): fc.IAsyncProperty<[FuzzInput]> {
  const routes = serverRoutes();
  return fc.asyncProperty(arbitrary, (input) => {
    const run = checkOne(input, context, routes);
    context.inFlight = run.catch(() => {});
    return run;
  });
}

/** Sends one input through the corpus runner; throws naming every invariant it broke. */
async function checkOne(
  input: FuzzInput,
  context: FuzzContext,
  routes: ServerRoutes,
): Promise<void> {
  // An earlier input broke the compute: a new manager takes its place, so shrinking can go on.
  await recover(context.target, context.state, context.counts);
  const aim = aimOf(input, routes);
  const { answer, problems } = await runHttpCase(
    context.target,
    context.state,
    context.counts,
    input.request,
    {
      entry: aim.entry,
      valid: "if-accepted",
      authProbe: aim.route?.auth === true && input.server === "external" &&
        !hasValidCredentials(input),
      check: fuzzCheck(aim),
    },
  );
  const status = answer === undefined ? "closed" : String(answer.status);
  context.answers.set(status, (context.answers.get(status) ?? 0) + 1);
  if (problems.length === 0) return;
  const why = problems.join("; ");
  context.lastFailure = { input, why };
  throw new Error(why);
}

/**
 * Saves a failing input as a pending corpus case in `fuzz_found/<hash>.json`
 * and returns the file's path.
 */
export async function saveFoundCase(input: FuzzInput, why: string): Promise<string> {
  const routes = serverRoutes();
  const { entry } = aimOf(input, routes);
  const request = JSON.stringify(input.request);
  const hash = createHash("sha256").update(`${entry}\n${request}`).digest("hex").slice(0, 12);
  const found: BadInputCase = {
    name: `fuzz ${hash}: ${input.request.method} ${(input.request.path ?? "").slice(0, 60)}`,
    entry,
    request: input.request,
    expect: { pending: why.slice(0, 2000) },
    note: "found by tests/integration/fuzz_test.ts; write the exact expected answer",
  };
  await Deno.mkdir(FUZZ_FOUND_DIR, { recursive: true });
  const path = join(FUZZ_FOUND_DIR, `${hash}.json`);
  const file = { description: "A shrunk input fuzzing found failing.", cases: [found] };
  await Deno.writeTextFile(path, JSON.stringify(file, null, 2) + "\n");
  return path;
}
