/**
 * @module
 * fast-check arbitraries for fuzzing a running compute, producing requests in
 * the bad-input corpus format (so a failure can be saved as a corpus case):
 * edits of the valid `/configure` body (wrong types on any field, missing
 * required fields, roles, databases, settings and delta operations with
 * hostile names and values) and random HTTP requests to either server
 * (methods, paths with dot segments and encoded slashes, query strings,
 * credentials, content types and bodies). Requests that would legitimately
 * end the compute (`POST /terminate` with valid credentials and mode) are
 * never generated.
 */

import fc from "fast-check";
import { parseTerminateMode } from "../../src/http/routes/terminate.ts";
import type { AuthSpec, BodySpec, HttpRequestSpec, Mutation } from "./bad_input.ts";

/** One fuzzed request with the entry point it is aimed at. */
export interface FuzzInput {
  request: HttpRequestSpec;
  /** `external` or `internal`, for the saved case's entry. */
  server: "external" | "internal";
}

/** Fragments that break naive quoting, joined at random. */
const NASTY_FRAGMENTS = [
  "'",
  '"',
  "\\",
  "$$",
  "$x$",
  ";",
  "\0",
  "\n",
  "\r",
  "\t",
  " ",
  "--",
  "/*",
  "é",
  "角",
  "🐘",
  "\u200f",
  "%s",
  "DROP ROLE alice",
  "pg_",
  "{{",
];

/** Strings a name or value may be: printable unicode, any code point, nasty fragments, long runs. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.array(fc.constantFrom(...NASTY_FRAGMENTS), { minLength: 1, maxLength: 5 })
    .map((parts) => parts.join("")),
  fc.constantFrom(62, 63, 64, 1024).chain((bytes) =>
    fc.constantFrom("x", "é").map((unit) => unit.repeat(unit === "x" ? bytes : bytes / 2))
  ),
);

const identifier = fc.stringMatching(/^[a-z_][a-z0-9_]{0,10}$/);

/** Paths of the configure body by the type their value must have. */
const TYPED_PATHS: Record<string, string[]> = {
  string: [
    "spec.operation_uuid",
    "spec.cluster.cluster_id",
    "spec.cluster.name",
    "spec.cluster.roles.0.name",
    "spec.cluster.roles.0.encrypted_password",
    "spec.cluster.databases.0.name",
    "spec.cluster.databases.0.owner",
    "spec.cluster.postgresql_conf",
    "spec.tenant_id",
    "spec.timeline_id",
    "spec.pageserver_connstring",
    "spec.endpoint_id",
    "spec.storage_auth_token",
    "spec.audit_log_level",
  ],
  number: [
    "spec.format_version",
    "spec.suspend_timeout_seconds",
    "spec.reconfigure_concurrency",
    "spec.pageserver_connection_info.shard_count",
    "spec.safekeepers_generation",
  ],
  boolean: ["spec.skip_pg_catalog_updates", "spec.autoprewarm", "spec.disable_lfc_resizing"],
  array: [
    "spec.cluster.roles",
    "spec.cluster.databases",
    "spec.cluster.settings",
    "spec.safekeeper_connstrings",
    "spec.features",
    "compute_ctl_config.jwks.keys",
  ],
  object: [
    "spec",
    "spec.cluster",
    "spec.pageserver_connection_info",
    "spec.remote_extensions",
    "compute_ctl_config",
  ],
};

/** Fields the schema requires: deleting one is never valid. */
const REQUIRED_PATHS = [
  "spec",
  "compute_ctl_config",
  "spec.format_version",
  "spec.cluster",
  "spec.suspend_timeout_seconds",
  "spec.cluster.roles",
  "spec.cluster.databases",
  "spec.cluster.roles.0.name",
  "spec.cluster.databases.0.owner",
  "compute_ctl_config.jwks",
];

/** Values of every type but `type` (never null: optional fields take null). */
function wrongValue(type: string): fc.Arbitrary<unknown> {
  const byType: Record<string, fc.Arbitrary<unknown>> = {
    string: hostileString,
    number: fc.oneof(fc.integer(), fc.double({ noNaN: true })),
    boolean: fc.boolean(),
    array: fc.array(fc.oneof(fc.integer(), hostileString), { maxLength: 3 }),
    object: fc.dictionary(identifier, fc.integer(), { maxKeys: 3 }),
  };
  const others = Object.keys(byType).filter((key) => key !== type).map((key) => byType[key]);
  return fc.oneof(...others);
}

/** A field set to a value of another type. */
const wrongType: fc.Arbitrary<Mutation> = fc.constantFrom(...Object.keys(TYPED_PATHS)).chain((
  type,
) => fc.record({ set: fc.constantFrom(...TYPED_PATHS[type]), value: wrongValue(type) }));

/** A required field removed. */
const missingField: fc.Arbitrary<Mutation> = fc.constantFrom(...REQUIRED_PATHS)
  .map((path) => ({ delete: path }));

/**
 * A role with a hostile name and some options, `VALID UNTIL` with any text
 * among them (the admission check asks the server whether it is a time).
 */
const addRole: fc.Arbitrary<Mutation> = fc.record({
  name: hostileString,
  encrypted_password: fc.oneof(fc.constant(null), fc.stringMatching(/^[0-9a-f]{32}$/)),
  options: fc.oneof(
    fc.constant(null),
    fc.array(
      fc.oneof(
        fc.record({
          name: fc.constantFrom("CREATEDB", "NOCREATEDB", "SUPERUSER", "LOGIN", "bogus"),
          value: fc.constant(null),
          vartype: fc.constant("bool"),
        }),
        fc.record({
          name: fc.constant("CONNECTION LIMIT"),
          value: fc.oneof(fc.integer({ min: -2, max: 100 }).map(String), hostileString),
          vartype: fc.constantFrom("integer", "string"),
        }),
        fc.record({
          name: fc.constant("VALID UNTIL"),
          value: fc.oneof(fc.constantFrom("infinity", "2099-12-31", "soon"), hostileString),
          vartype: fc.constant("string"),
        }),
      ),
      { maxLength: 2 },
    ),
  ),
}).map((role) => ({ append: "spec.cluster.roles", value: role }));

/**
 * A database with a hostile name; no options (a locale the server lacks is
 * found only by `CREATE DATABASE` and leaves the compute `failed`, which would
 * end every run here).
 */
const addDatabase: fc.Arbitrary<Mutation> = fc.record({
  name: hostileString,
  owner: fc.oneof(fc.constant("alice"), hostileString),
  options: fc.constant(null),
}).map((database) => ({ append: "spec.cluster.databases", value: database }));

/**
 * A setting: a custom `fz.*` one (any value is Postgres's to keep) or one with
 * a hostile name. Known settings with values Postgres refuses are not aimed
 * at: settings only a reload takes are checked in the written file, which
 * fails the apply and leaves the compute `failed`.
 */
const setSetting: fc.Arbitrary<Mutation> = fc.record({
  name: fc.oneof(identifier.map((name) => `fz.${name}`), hostileString),
  value: fc.oneof(hostileString, fc.constant(null)),
  vartype: fc.constantFrom("string", "string", "integer", "bool"),
}).map((setting) => ({ append: "spec.cluster.settings", value: setting }));

/** A delta operation on a name no object has (`fz…`), so an accepted one changes nothing. */
const addDelta: fc.Arbitrary<Mutation> = fc.record({
  action: fc.constantFrom("rename_role", "delete_role", "rename_db", "delete_db", "explode"),
  name: hostileString.map((name) => `fz${name}`),
  new_name: fc.oneof(fc.constant(null), hostileString),
}).map((delta) => ({ set: "spec.delta_operations", value: [delta] }));

/** Edits that add catalog content with hostile names and values: valid or not, by chance. */
const contentEdit = fc.oneof(
  { arbitrary: addRole, weight: 3 },
  { arbitrary: addDatabase, weight: 2 },
  { arbitrary: setSetting, weight: 3 },
  { arbitrary: addDelta, weight: 1 },
);

/** Edits that break the body's shape: never valid. */
const shapeEdit = fc.oneof({ arbitrary: wrongType, weight: 3 }, {
  arbitrary: missingField,
  weight: 1,
});

/**
 * Edits of the valid `/configure` body: 1 to 4 of them, two times in three
 * content only (so a fair share is accepted and must be applied exactly).
 */
export const specMutations: fc.Arbitrary<Mutation[]> = fc.oneof(
  { arbitrary: fc.array(contentEdit, { minLength: 1, maxLength: 4 }), weight: 2 },
  fc.array(fc.oneof(contentEdit, shapeEdit), { minLength: 1, maxLength: 4 }),
);

/** A `/configure` with a fuzzed spec, as the compute token sends it. */
export const fuzzedSpec: fc.Arbitrary<FuzzInput> = specMutations.map((mutations) => ({
  server: "external",
  request: { method: "POST", path: "/configure", body: { configure: mutations } },
}));

/**
 * Each route's method and a path that reaches it. `/refresh_configuration` is
 * left out: each accepted one holds the compute in a refresh for seconds,
 * which would eat the run's time (the corpus has its cases).
 */
const ROUTES: Record<"external" | "internal", [string, string][]> = {
  external: [
    ["GET", "/status"],
    ["GET", "/metrics"],
    ["GET", "/metrics.json"],
    ["POST", "/configure"],
    ["POST", "/terminate"],
    ["POST", "/promote"],
    ["POST", "/check_writability"],
    ["GET", "/database_schema"],
    ["GET", "/dbs_and_roles"],
    ["GET", "/insights"],
    ["GET", "/lfc/prewarm"],
    ["POST", "/lfc/prewarm"],
    ["DELETE", "/lfc/prewarm"],
    ["GET", "/lfc/offload"],
    ["POST", "/lfc/offload"],
    ["GET", "/hadron_liveness_probe"],
    ["GET", "/autoscaling_metrics"],
    ["GET", "/openapi.json"],
  ],
  internal: [
    ["POST", "/extension_server/pg_trgm"],
    ["POST", "/extension_server/x"],
    ["POST", "/extensions"],
    ["POST", "/grants"],
    ["POST", "/failpoints"],
  ],
};

const METHODS = ["GET", "HEAD", "POST", "DELETE", "PUT", "OPTIONS", "BREW"];

const PATH_TRICKS = ["/..", "/%2e%2e", "%2F", "%2f..%2f", "%00", "//", "/./", "%5C", "%ZZ", ";x"];

/** Percent-encodes what may not stand in a request line, so every request is well-formed HTTP. */
function requestTarget(text: string): string {
  return Array.from(text, (char) => {
    const code = char.codePointAt(0)!;
    if (code > 0x20 && code < 0x7f) return char;
    return Array.from(
      new TextEncoder().encode(char),
      (byte) => `%${byte.toString(16).toUpperCase().padStart(2, "0")}`,
    ).join("");
  }).join("");
}

/** A method and request target: mostly a route's own method, its path bent or extended. */
function targetFor(
  server: "external" | "internal",
): fc.Arbitrary<{ method: string; path: string }> {
  const route = fc.constantFrom(...ROUTES[server]);
  const path = (base: string) =>
    fc.oneof(
      { arbitrary: fc.constant(base), weight: 4 },
      fc.tuple(fc.array(fc.constantFrom(...PATH_TRICKS), { maxLength: 3 }), hostileString)
        .map(([tricks, tail]) => base + tricks.join("") + tail),
      fc.webPath(),
    );
  const query = fc.oneof(
    { arbitrary: fc.constant(""), weight: 3 },
    fc.webQueryParameters().map((text) => `?${text}`),
    fc.tuple(
      fc.constantFrom("mode", "database", "is_library", "from_endpoint"),
      hostileString,
    ).map(([name, value]) => `?${name}=${encodeURIComponent(value)}`),
  );
  return route.chain(([routeMethod, base]) =>
    fc.record({
      method: fc.oneof(
        { arbitrary: fc.constant(routeMethod), weight: 3 },
        fc.constantFrom(...METHODS),
      ),
      path: fc.tuple(path(base), query).map(([p, q]) =>
        requestTarget((p.startsWith("/") ? p : `/${p}`) + q)
      ),
    })
  );
}

const auth: fc.Arbitrary<AuthSpec | undefined> = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 5 },
  fc.constantFrom<AuthSpec>("none", "admin"),
  fc.string({ unit: "grapheme-ascii", maxLength: 40 }).map((text) => ({ header: text })),
  fc.record({
    signWith: fc.constantFrom("none", "stranger", "public-key-as-hmac", "cluster" as const),
    flipSignatureBit: fc.constant(true as const),
  }).map(({ signWith, flipSignatureBit }) => ({
    jwt: signWith === "none" ? { signWith } : { signWith, flipSignatureBit },
  })),
);

const body: fc.Arbitrary<BodySpec | undefined> = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 3 },
  fc.jsonValue({ maxDepth: 3 }).map((json) => ({ json })),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => ({
    base64: btoa(String.fromCharCode(...bytes)),
  })),
  specMutations.map((mutations) => ({ configure: mutations })),
  fc.integer({ min: 1, max: 5000 }).map((nested) => ({ nested })),
);

/** Whether a request would end the compute as it is asked to (`POST /terminate`, valid). */
export function wouldTerminate(input: FuzzInput): boolean {
  const { request, server } = input;
  if (server !== "external" || request.method !== "POST") return false;
  const target = request.path ?? "";
  if (target.split("?")[0] !== "/terminate") return false;
  if (request.auth !== undefined && request.auth !== "admin") return false;
  try {
    parseTerminateMode(`http://x${target}`);
    return true;
  } catch {
    return false;
  }
}

/** A random request to either server. */
export const fuzzedRequest: fc.Arbitrary<FuzzInput> = fc.constantFrom(
  "external" as const,
  "internal" as const,
).chain((server) =>
  fc.record({
    target: targetFor(server),
    auth: server === "external" ? auth : fc.constant(undefined),
    contentType: fc.oneof(
      { arbitrary: fc.constant(undefined), weight: 4 },
      fc.constantFrom(null, "text/plain", "application/json; charset=latin1", "application/x+json"),
    ),
    body,
  }).map((fields): FuzzInput => {
    const { method, path } = fields.target;
    const request: HttpRequestSpec = { server, method, path };
    if (fields.auth !== undefined) request.auth = fields.auth;
    if (fields.contentType !== undefined) request.contentType = fields.contentType;
    if (fields.body !== undefined) request.body = fields.body;
    return { server, request };
  })
).filter((input) => !wouldTerminate(input));
