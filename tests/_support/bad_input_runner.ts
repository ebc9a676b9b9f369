/**
 * @module
 * Runs HTTP bad-input cases against a {@link BadInputTarget} and checks the
 * invariants after each: the answer is the expected one, the manager is alive
 * and answers `/status`, the status is still `running`, and the catalog is
 * unchanged unless the input was valid; a valid spec is applied exactly (every
 * role, database and custom setting as spelled, nothing else created). Counts
 * what went wrong, in the reliability report's terms.
 */

import { isDeepStrictEqual } from "node:util";
import pg from "pg";
import { SPEC_DATABASE } from "../../harness/cluster.ts";
import type { BadInputCase, HttpExpect, HttpRequestSpec } from "./bad_input.ts";
import { buildBody } from "./bad_input_body.ts";
import { httpMismatch } from "./bad_input_expect.ts";
import { NoAnswerError, type RawAnswer } from "./bad_input_http.ts";
import {
  type BadInputTarget,
  type CatalogFingerprint,
  fingerprintChanges,
  queryAll,
} from "./bad_input_target.ts";

/** What a run tried and what went wrong (the failure fields of a reliability record). */
export interface FailureCounts {
  tried: number;
  crashes: number;
  unexpectedStatus: number;
  unauthenticatedSuccesses: number;
  unusableComputes: number;
}

/** All zero. */
export function emptyCounts(): FailureCounts {
  return {
    tried: 0,
    crashes: 0,
    unexpectedStatus: 0,
    unauthenticatedSuccesses: 0,
    unusableComputes: 0,
  };
}

/** The state a sequence of cases carries: the catalog as the last valid input left it. */
export interface RunState {
  fingerprint: CatalogFingerprint;
  /** Set once the compute is gone: later cases cannot tell anything. */
  dead?: string;
}

/** The fingerprint to start a sequence of cases from. */
export async function startRun(target: BadInputTarget): Promise<RunState> {
  return { fingerprint: await target.fingerprint() };
}

/** What one case showed: its answer (if any) and each invariant it broke. */
export interface CaseOutcome {
  answer?: RawAnswer;
  problems: string[];
}

/**
 * Checks the HTTP answer (undefined: the connection closed without one)
 * against an expectation: the caller's part of {@link runHttpCase}.
 */
export type AnswerCheck = (answer: RawAnswer | undefined) => string | undefined;

/** The check of an exact corpus expectation. */
export function expectationCheck(expect: HttpExpect, vars: Record<string, string>): AnswerCheck {
  return (answer) => httpMismatch(expect, answer, vars);
}

/**
 * Sends one request and checks every invariant after it. `valid` says the
 * compute must accept it (then a `/configure` body must be applied exactly);
 * `authProbe` says the request carries credentials that must be refused.
 */
export async function runHttpCase(
  target: BadInputTarget,
  state: RunState,
  counts: FailureCounts,
  request: HttpRequestSpec,
  options: {
    entry: string;
    /** `if-accepted`: valid exactly when the compute accepts it (a 2xx answer). */
    valid: boolean | "if-accepted";
    authProbe: boolean;
    check: AnswerCheck;
  },
): Promise<CaseOutcome> {
  counts.tried++;
  if (state.dead) return { problems: [`not run: ${state.dead}`] };
  const problems: string[] = [];
  const names = options.valid !== false ? await catalogNames(target) : undefined;
  let answer: RawAnswer | undefined;
  let sendError: unknown;
  try {
    answer = await target.send(request, options.entry);
  } catch (error) {
    if (!(error instanceof NoAnswerError)) sendError = error;
  }
  const mismatch = sendError === undefined ? options.check(answer) : `no answer: ${sendError}`;
  if (mismatch !== undefined) {
    counts.unexpectedStatus++;
    problems.push(mismatch);
  }
  if (answer !== undefined) {
    if (options.authProbe && answer.status >= 200 && answer.status < 300) {
      counts.unauthenticatedSuccesses++;
      problems.push(`served (${answer.status}) with credentials that must be refused`);
    }
  }
  const health = await healthProblem(target);
  if (health !== undefined) {
    counts.crashes++;
    state.dead = health;
    return { answer, problems: [...problems, health] };
  }
  const accepted = answer !== undefined && answer.status >= 200 && answer.status < 300;
  const valid = options.valid === "if-accepted" ? accepted : options.valid;
  // Valid input may pass through other statuses (a refresh, a reconfiguration) on its way back.
  const status = valid
    ? await target.compute.waitForStatus("running", 30_000).then((s) => s.status, () => "failed")
    : (await target.compute.status()).status;
  if (status !== "running") {
    counts.unexpectedStatus++;
    problems.push(`status is ${status} afterwards, not running`);
    state.dead = `the compute is ${status}`;
  }
  const fingerprint = await target.fingerprint();
  if (valid && names !== undefined && accepted) {
    const applied = await appliedProblems(target, request, names, options.entry);
    // Not applied as sent: an answer (the 2xx) that does not match what happened.
    if (applied.length > 0) counts.unexpectedStatus++;
    problems.push(...applied);
    state.fingerprint = fingerprint;
  } else {
    const changes = fingerprintChanges(state.fingerprint, fingerprint);
    if (changes.length > 0) {
      counts.unexpectedStatus++;
      problems.push(`the catalog changed although the input was refused: ${changes.join("; ")}`);
      state.fingerprint = fingerprint;
    }
  }
  return { answer, problems };
}

/** Why the manager is not usable for further cases, or undefined when it answers. */
async function healthProblem(target: BadInputTarget): Promise<string | undefined> {
  if (target.exited()) return "the manager exited";
  try {
    await target.compute.status();
    return undefined;
  } catch (error) {
    return `the manager does not answer /status: ${error}`;
  }
}

/** Runs a corpus case (see {@link runHttpCase}). */
export function runCorpusCase(
  target: BadInputTarget,
  state: RunState,
  counts: FailureCounts,
  item: BadInputCase,
): Promise<CaseOutcome> {
  const expect = item.expect as HttpExpect;
  const pending = "pending" in item.expect;
  return runHttpCase(target, state, counts, item.request as HttpRequestSpec, {
    entry: item.entry,
    valid: item.valid === true,
    authProbe: item.entry === "auth" && !item.valid,
    // A pending case has no exact answer yet; its invariants are still checked.
    check: pending ? (answer) => serverError(answer) : expectationCheck(expect, target.vars),
  });
}

/** A 5xx answer as a problem (what fuzzing and pending cases refuse), else undefined. */
export function serverError(answer: RawAnswer | undefined): string | undefined {
  if (answer === undefined || answer.status < 500) return undefined;
  return `server error ${answer.status}: ${answer.text.slice(0, 300)}`;
}

/**
 * When a case left the compute dead or `failed`: counts an unusable compute,
 * starts a new manager in its place and takes the catalog as the new
 * baseline, so the cases after it still tell something. Does nothing otherwise.
 */
export async function recover(
  target: BadInputTarget,
  state: RunState,
  counts: FailureCounts,
): Promise<void> {
  if (!state.dead) return;
  counts.unusableComputes++;
  await target.revive();
  state.dead = undefined;
  state.fingerprint = await target.fingerprint();
}

/**
 * After a sequence of cases: the compute still takes a valid `/configure` of
 * its original spec. Counts an unusable compute otherwise.
 */
export async function usableProblems(
  target: BadInputTarget,
  state: RunState,
  counts: FailureCounts,
): Promise<string[]> {
  if (state.dead) {
    counts.unusableComputes++;
    return [`unusable: ${state.dead}`];
  }
  // A refresh or reconfiguration a valid request started may still be under way.
  const settled = await target.compute.waitForStatus("running", 30_000).catch((error) => error);
  if (settled instanceof Error) {
    counts.unusableComputes++;
    return [`not running: ${settled.message}`];
  }
  const result = await target.compute.configure(target.bases.configure);
  if (result.status === 200 && result.body?.status === "running") {
    state.fingerprint = await target.fingerprint();
    return [];
  }
  counts.unusableComputes++;
  return [`a valid /configure answered ${result.status}: ${result.text}`];
}

interface CatalogNames {
  roles: string[];
  databases: string[];
}

async function catalogNames(target: BadInputTarget): Promise<CatalogNames> {
  const [roles, databases] = await queryAll(target.compute.postgresUrl, [
    "SELECT rolname AS name FROM pg_authid",
    "SELECT datname AS name FROM pg_database",
  ]);
  const names = (rows: unknown[]) => rows.map((row) => (row as { name: string }).name);
  return { roles: names(roles), databases: names(databases) };
}

interface SpecCatalog {
  roles?: { name: string }[];
  databases?: { name: string; owner: string }[];
  settings?: { name: string; value?: string | null; vartype: string }[] | null;
}

/**
 * For an accepted `/configure` (`entry`): every role and database of the spec exists
 * under exactly its name (a database with its owner), every custom `x.y`
 * string setting reads back exactly, and no role or database appeared that
 * is neither in the spec nor was there before.
 */
async function appliedProblems(
  target: BadInputTarget,
  request: HttpRequestSpec,
  before: CatalogNames,
  entry: string,
): Promise<string[]> {
  if (entry === "internal POST /grants" && request.body && "json" in request.body) {
    return await grantProblems(target, request.body.json);
  }
  if (entry !== "external POST /configure") return [];
  if (request.body === undefined || !("configure" in request.body)) return [];
  const sent = JSON.parse(new TextDecoder().decode(buildBody(request.body, target.bases)));
  const cluster: SpecCatalog = sent.spec.cluster;
  const problems: string[] = [];
  const after = await catalogNames(target);
  const [owners] = await queryAll(target.compute.postgresUrl, [
    "SELECT datname AS name, pg_get_userbyid(datdba) AS owner FROM pg_database",
  ]);
  for (const role of cluster.roles ?? []) {
    if (!after.roles.includes(role.name)) {
      problems.push(`role ${JSON.stringify(role.name)} missing`);
    }
  }
  for (const database of cluster.databases ?? []) {
    const found = owners.find((row) => (row as { name: string }).name === database.name);
    if (!found) problems.push(`database ${JSON.stringify(database.name)} missing`);
    else if ((found as { owner: string }).owner !== database.owner) {
      problems.push(
        `database ${JSON.stringify(database.name)} owned by ${(found as { owner: string }).owner}`,
      );
    }
  }
  const strays = (now: string[], was: string[], wanted: string[]) =>
    now.filter((name) => !was.includes(name) && !wanted.includes(name));
  for (const role of strays(after.roles, before.roles, (cluster.roles ?? []).map((r) => r.name))) {
    problems.push(`role ${JSON.stringify(role)} appeared, not in the spec`);
  }
  const wantedDatabases = (cluster.databases ?? []).map((d) => d.name);
  for (const database of strays(after.databases, before.databases, wantedDatabases)) {
    problems.push(`database ${JSON.stringify(database)} appeared, not in the spec`);
  }
  problems.push(...await settingProblems(target, cluster.settings ?? []));
  return problems;
}

/** For an accepted `/grants`: the role named exactly as sent holds every privilege sent. */
async function grantProblems(target: BadInputTarget, body: unknown): Promise<string[]> {
  const grant = body as {
    database?: string;
    schema?: string;
    role?: string;
    privileges?: string[];
  };
  if (grant.role === undefined || grant.schema === undefined || grant.database === undefined) {
    return [];
  }
  const url = target.compute.connectionUrl({ user: "cloud_admin", database: grant.database });
  const problems: string[] = [];
  for (const privilege of grant.privileges ?? []) {
    const client = new pg.Client({ connectionString: url });
    client.on("error", () => {});
    await client.connect();
    try {
      const { rows } = await client.query(
        "SELECT has_schema_privilege($1, $2, $3) AS held",
        [grant.role, grant.schema, privilege],
      );
      if (rows[0]?.held !== true) {
        problems.push(`${JSON.stringify(grant.role)} lacks ${privilege} on ${grant.schema}`);
      }
    } finally {
      await client.end();
    }
  }
  return problems;
}

async function settingProblems(
  target: BadInputTarget,
  settings: NonNullable<SpecCatalog["settings"]>,
): Promise<string[]> {
  const custom = settings.filter((setting) =>
    setting.name.includes(".") && setting.vartype === "string" && typeof setting.value === "string"
  );
  if (custom.length === 0) return [];
  const url = target.compute.connectionUrl({ user: "cloud_admin", database: SPEC_DATABASE });
  const values = await queryAll(
    url,
    custom.map((setting) =>
      `SELECT current_setting('${setting.name.replaceAll("'", "''")}', true) AS value`
    ),
  );
  const problems: string[] = [];
  custom.forEach((setting, index) => {
    const value = (values[index][0] as { value: string | null }).value;
    if (!isDeepStrictEqual(value, setting.value)) {
      problems.push(
        `setting ${setting.name} reads ${JSON.stringify(value)}, not ${
          JSON.stringify(setting.value)
        }`,
      );
    }
  });
  return problems;
}
