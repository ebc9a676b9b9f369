/**
 * @module
 * The bad-input corpus (`fixtures/bad_input/`): the format of a case as zod
 * schemas, loading every file, and the problems a case can have (for the
 * corpus's own unit test). A case names its entry point, the request (an HTTP
 * request or a command line) and the exact answer expected; `valid: true`
 * marks input the compute must accept. A case found by fuzzing waits, as
 * `pending`, for someone to write its exact answer.
 *
 * Bodies that are not plain JSON are built from a description (`bad_input_body.ts`),
 * and so are JWTs (`bad_input_jwt.ts`), so the files stay readable.
 */

import { join } from "node:path";
import { z } from "zod";

/** Where the corpus lives. */
export const CORPUS_DIR = new URL("../../fixtures/bad_input/", import.meta.url).pathname;

/** Where fuzzing saves the shrunk inputs it found failing. */
export const FUZZ_FOUND_DIR = join(CORPUS_DIR, "fuzz_found");

/** Entry points that are not one route: the routers' 404/405, the JWT check, the command line. */
export const SPECIAL_ENTRIES = ["external router", "internal router", "auth", "cli"] as const;

const path = z.string().min(1);

/** A string value made by repetition (`times` copies of `repeat`, between prefix and suffix). */
export const repeatSchema = z.strictObject({
  repeat: z.string().min(1),
  times: z.number().int().min(1),
  prefix: z.string().optional(),
  suffix: z.string().optional(),
});
export type Repeat = z.infer<typeof repeatSchema>;

/** One edit of a valid request body; dotted paths, numbers index arrays. */
export const mutationSchema = z.union([
  z.strictObject({ set: path, value: z.unknown() }),
  z.strictObject({ set: path, ...repeatSchema.shape }),
  /** JSON text put in place verbatim (for what `JSON.stringify` cannot write, e.g. deep nesting). */
  z.strictObject({ set: path, raw: z.string() }),
  /** `depth` nested arrays, `[[[…]]]`, put in place as text. */
  z.strictObject({ set: path, nested: z.number().int().min(1) }),
  z.strictObject({ delete: path }),
  z.strictObject({ append: path, value: z.unknown() }),
]);
export type Mutation = z.infer<typeof mutationSchema>;

/** A request body. */
export const bodySchema = z.union([
  z.strictObject({ json: z.unknown() }),
  z.strictObject({ text: z.string() }),
  z.strictObject({ base64: z.string() }),
  /**
   * The compute's valid `/configure` body `{spec, compute_ctl_config}`, edited;
   * `cut` keeps only its first `cut` bytes (or drops its last `-cut`).
   */
  z.strictObject({ configure: z.array(mutationSchema), cut: z.number().int().optional() }),
  /** A valid-shaped `/promote` body `{spec, wal_flush_lsn}`, edited. */
  z.strictObject({ promote: z.array(mutationSchema) }),
  /** `depth` nested arrays (`"["` × depth, then `"]"` × depth). */
  z.strictObject({ nested: z.number().int().min(1) }),
  /** A JSON object of exactly `bytes` bytes: `{"spec":"xxx…"}`. */
  z.strictObject({ oversize: z.number().int().min(16) }),
]);
export type BodySpec = z.infer<typeof bodySchema>;

/** How a JWT is made: header and claims, who signs it, and what is done to it afterwards. */
export const jwtRecipeSchema = z.strictObject({
  /** The protected header; default `{"alg": "EdDSA", "typ": "JWT"}`. */
  header: z.record(z.string(), z.unknown()).optional(),
  /** Default `{"compute_id": "{{COMPUTE_ID}}"}`. */
  claims: z.record(z.string(), z.unknown()).optional(),
  /** `exp` this many seconds from now. */
  expiresIn: z.number().int().optional(),
  /** A `pad` claim of this many `x`, to make a big token. */
  padBytes: z.number().int().min(1).optional(),
  /**
   * `cluster`: the key the compute trusts; `stranger`: another Ed25519 key;
   * `public-key-as-hmac`: HS256 with the trusted public key as the secret;
   * `none`: an empty signature.
   */
  signWith: z.enum(["cluster", "stranger", "public-key-as-hmac", "none"]),
  /** After signing: replace the payload with these claims, keeping the signature. */
  tamperClaims: z.record(z.string(), z.unknown()).optional(),
  /** After signing: flip one bit of the signature. */
  flipSignatureBit: z.literal(true).optional(),
});
export type JwtRecipe = z.infer<typeof jwtRecipeSchema>;

/** The `authorization` a request carries. */
export const authSchema = z.union([
  /** The compute token (`{compute_id}`), the admin token, or no header. */
  z.enum(["compute", "admin", "none"]),
  /** This header value, verbatim. */
  z.strictObject({ header: z.string() }),
  /** `Bearer <token>` with a token made by the recipe. */
  z.strictObject({ jwt: jwtRecipeSchema }),
  /** `Bearer ` then `times` copies of `repeat`. */
  z.strictObject({ bearer: repeatSchema }),
]);
export type AuthSpec = z.infer<typeof authSchema>;

/** An HTTP request to the compute. Method, path and server default from the entry. */
export const httpRequestSchema = z.strictObject({
  server: z.enum(["external", "internal"]).optional(),
  method: z.string().min(1).optional(),
  /** The request target, sent verbatim. */
  path: z.string().min(1).optional(),
  /** Default: the compute token on the external server, none on the internal one. */
  auth: authSchema.optional(),
  headers: z.record(z.string(), z.string()).optional(),
  /** Default `application/json` when there is a body; null sends none. */
  contentType: z.string().nullable().optional(),
  body: bodySchema.optional(),
  chunked: z.literal(true).optional(),
  /**
   * The whole request, sent as it is (UTF-8; `\r\n` line ends), for framing
   * no client would send; it should say `connection: close`. Only `server` applies.
   */
  verbatim: z.string().optional(),
});
export type HttpRequestSpec = z.infer<typeof httpRequestSchema>;

/** A command line: the manager's arguments and the `--config` file it gets, if any. */
export const cliRequestSchema = z.strictObject({
  /**
   * Arguments after `src/main.ts`; `{{CONFIG_PATH}}`, `{{PGDATA}}` and `{{PGBIN}}`
   * (the default major's server) are filled in.
   */
  args: z.array(z.string()),
  /** Written to `{{CONFIG_PATH}}` before the run. */
  config: z.union([
    z.strictObject({ json: z.unknown() }),
    z.strictObject({ text: z.string() }),
    z.strictObject({ base64: z.string() }),
    /** A valid `ComputeConfig` (`{spec, compute_ctl_config}`), edited. */
    z.strictObject({ configure: z.array(mutationSchema) }),
  ]).optional(),
});
export type CliRequestSpec = z.infer<typeof cliRequestSchema>;

/** The exact HTTP answer. Messages may hold `{{COMPUTE_ID}}`, `{{TENANT_ID}}`, `{{TIMELINE_ID}}`. */
export const httpExpectSchema = z.strictObject({
  status: z.number().int().min(100).max(599).optional(),
  /** No answer at all: the server closes the connection (malformed HTTP framing). */
  closed: z.literal(true).optional(),
  /** `{"error": <this>}` as `application/json`. */
  error: z.string().optional(),
  /** This plain-text body, exactly. */
  text: z.string().optional(),
  /** No body at all. */
  empty: z.literal(true).optional(),
  /** This JSON body, exactly. */
  json: z.unknown().optional(),
  /** A JSON object body with at least these keys and values (valid input only). */
  jsonIncludes: z.record(z.string(), z.unknown()).optional(),
  /** `{"error": <matching this regex>}`, only where the message holds a run-varying value… */
  errorPattern: z.string().optional(),
  /** …which this says. */
  patternReason: z.string().optional(),
});
export type HttpExpect = z.infer<typeof httpExpectSchema>;

/** The exact outcome of a command line. */
export const cliExpectSchema = z.strictObject({
  exitCode: z.number().int(),
  /** Every line of stderr, RFC 3339 timestamps removed, Deno's own warnings left out. */
  stderr: z.array(z.string()),
  /** Stdout exactly; `{{CLI_HELP}}` is the `--help` text. */
  stdout: z.string().optional(),
});
export type CliExpect = z.infer<typeof cliExpectSchema>;

/** A case found by fuzzing that nobody has given an exact answer yet. */
export const pendingExpectSchema = z.strictObject({
  /** What went wrong when fuzzing sent it. */
  pending: z.string(),
});

/** One case of the corpus. */
export const badInputCaseSchema = z.strictObject({
  name: z.string().min(1),
  /** `<server> <METHOD> <route path>` as the route tables say, or one of {@link SPECIAL_ENTRIES}. */
  entry: z.string().min(1),
  request: z.union([httpRequestSchema, cliRequestSchema]),
  expect: z.union([httpExpectSchema, cliExpectSchema, pendingExpectSchema]),
  /** Input the compute must accept (and apply, for a spec). */
  valid: z.literal(true).optional(),
  /** Why the case is there, when the name does not say it all. */
  note: z.string().optional(),
});
export type BadInputCase = z.infer<typeof badInputCaseSchema>;

/** A corpus file. */
export const corpusFileSchema = z.strictObject({
  description: z.string(),
  cases: z.array(badInputCaseSchema),
});

/** A case with the file it came from (relative to the corpus directory). */
export interface LoadedCase {
  file: string;
  case: BadInputCase;
}

/** The corpus files, relative to {@link CORPUS_DIR}, sorted (`fuzz_found/` included). */
export async function corpusFiles(): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(CORPUS_DIR)) {
    if (entry.isFile && entry.name.endsWith(".json")) files.push(entry.name);
  }
  try {
    for await (const entry of Deno.readDir(FUZZ_FOUND_DIR)) {
      if (entry.isFile && entry.name.endsWith(".json")) files.push(`fuzz_found/${entry.name}`);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return files.sort();
}

/** Every case of `files` (default: all), each checked against the schema (throws naming the file). */
export async function loadCorpus(files?: readonly string[]): Promise<LoadedCase[]> {
  const loaded: LoadedCase[] = [];
  for (const file of files ?? await corpusFiles()) {
    const json = JSON.parse(await Deno.readTextFile(join(CORPUS_DIR, file)));
    const parsed = corpusFileSchema.safeParse(json);
    if (!parsed.success) {
      throw new Error(`${file}: not a corpus file: ${z.prettifyError(parsed.error)}`);
    }
    for (const item of parsed.data.cases) loaded.push({ file, case: item });
  }
  return loaded;
}

/** Whether a case is a command line (else an HTTP request). */
export function isCliCase(item: BadInputCase): boolean {
  return item.entry === "cli";
}

/** The entry id of a route: `external POST /configure`. */
export function routeEntry(server: "external" | "internal", method: string, path: string): string {
  return `${server} ${method} ${path}`;
}

/** The server, method and path an entry id names (router and auth entries name only a server). */
export function parseEntry(
  entry: string,
): { server: "external" | "internal"; method?: string; path?: string } {
  if (entry === "auth") return { server: "external" };
  const [server, method, path] = entry.split(" ");
  if (server !== "external" && server !== "internal") throw new Error(`bad entry ${entry}`);
  if (method === "router") return { server };
  return { server, method, path };
}

const HTTP_ANSWER_KEYS = ["error", "text", "empty", "json", "jsonIncludes", "errorPattern"];

/**
 * What is wrong with one case beyond its schema: an expectation that is not
 * exactly one answer, a pattern without its reason, a CLI case with HTTP
 * expectations (or the other way round), a pending case. Empty when fine.
 */
export function caseProblems(item: BadInputCase): string[] {
  const problems: string[] = [];
  const expect = item.expect as Record<string, unknown>;
  if ("pending" in expect) {
    return [`has no exact expectation yet (found by fuzzing: ${expect.pending})`];
  }
  if (isCliCase(item)) {
    if (!("args" in item.request)) problems.push("a cli case needs request.args");
    if (!("exitCode" in expect)) problems.push("a cli case needs expect.exitCode");
    return problems;
  }
  if ("args" in item.request) problems.push("only cli cases have request.args");
  if (expect.closed) {
    if (Object.keys(expect).length > 1) problems.push("a closed connection has no status or body");
    return problems;
  }
  if (!("status" in expect)) return [...problems, "an HTTP case needs expect.status"];
  const answers = HTTP_ANSWER_KEYS.filter((key) => key in expect);
  if (answers.length !== 1) {
    problems.push(`expect must give exactly one of ${HTTP_ANSWER_KEYS.join(", ")}`);
  }
  if ("jsonIncludes" in expect && !item.valid) {
    problems.push("jsonIncludes is for valid input only");
  }
  if (("errorPattern" in expect) !== ("patternReason" in expect)) {
    problems.push("errorPattern needs patternReason (and only it)");
  }
  const target = parseEntry(item.entry);
  const request = item.request as HttpRequestSpec;
  if (target.path?.includes(":") && request.path === undefined) {
    problems.push("a route with path parameters needs request.path");
  }
  if (request.verbatim !== undefined) {
    if (!request.method) problems.push("a verbatim request needs request.method");
  } else if (target.method === undefined && (!request.method || !request.path)) {
    problems.push("router and auth cases need request.method and request.path");
  }
  return problems;
}
