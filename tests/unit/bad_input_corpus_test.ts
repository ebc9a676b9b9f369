/**
 * The bad-input corpus checked as data, without running anything: enough
 * cases, unique names, an exact expectation for each (a case fuzzing found
 * fails here until someone writes its answer), every entry point covered,
 * only known entry points named, and every body, config file and JWT recipe
 * buildable from the bases the integration tests use.
 */

import assert from "node:assert/strict";
import { generateComputeSpec } from "../../harness/_compute_spec.ts";
import { createJwtIssuer } from "../../harness/jwt.ts";
import { serverRoutes } from "../../harness/openapi.ts";
import {
  type BadInputCase,
  caseProblems,
  type CliRequestSpec,
  type HttpRequestSpec,
  isCliCase,
  loadCorpus,
  routeEntry,
  SPECIAL_ENTRIES,
} from "../_support/bad_input.ts";
import { type BodyBases, buildBody, mutatedJson } from "../_support/bad_input_body.ts";
import { CLI_BASE_CONFIG } from "../_support/bad_input_cli.ts";
import { makeJwt } from "../_support/bad_input_jwt.ts";
import { TARGET_REMOTE_EXTENSIONS } from "../_support/bad_input_target.ts";

const MINIMUM_CASES = 200;

/** Every entry point: each route of both servers, the two routers, the JWT check, the CLI. */
function allEntries(): string[] {
  const { external, internal } = serverRoutes();
  return [
    ...external.map((route) => routeEntry("external", route.method, route.path)),
    ...internal.map((route) => routeEntry("internal", route.method, route.path)),
    ...SPECIAL_ENTRIES,
  ];
}

/** Bases shaped like the integration tests' (a generated spec), for building bodies. */
function sampleBases(): BodyBases {
  const spec = generateComputeSpec({
    computeId: "bad-input",
    tenantId: "0".repeat(32),
    timelineId: "1".repeat(32),
    pgPort: 5432,
    socketDir: "/tmp",
    pageserver: { id: 1, libpqUrl: "postgresql://no_user@127.0.0.1:6400" },
    safekeepers: ["127.0.0.1:5454"],
  });
  return {
    configure: {
      spec: { ...spec, remote_extensions: TARGET_REMOTE_EXTENSIONS },
      compute_ctl_config: { jwks: { keys: [] } },
    },
    promote: { spec, wal_flush_lsn: "0/0" },
  };
}

const corpus = await loadCorpus();

Deno.test("the corpus has at least 200 cases with unique names", () => {
  assert.ok(corpus.length >= MINIMUM_CASES, `only ${corpus.length} cases`);
  const seen = new Map<string, string>();
  const duplicates: string[] = [];
  for (const { file, case: item } of corpus) {
    const earlier = seen.get(item.name);
    if (earlier !== undefined) duplicates.push(`${item.name} (${earlier} and ${file})`);
    seen.set(item.name, file);
  }
  assert.deepEqual(duplicates, []);
});

Deno.test("every case has exactly one exact expectation", () => {
  const problems = corpus.flatMap(({ file, case: item }) =>
    caseProblems(item).map((problem) => `${file}: ${item.name}: ${problem}`)
  );
  assert.deepEqual(problems, []);
});

Deno.test("every entry point is covered, and no case names an unknown one", () => {
  const entries = allEntries();
  const used = new Set(corpus.map(({ case: item }) => item.entry));
  assert.deepEqual(entries.filter((entry) => !used.has(entry)), [], "entry points without a case");
  assert.deepEqual([...used].filter((entry) => !entries.includes(entry)), [], "unknown entries");
});

Deno.test("some input is valid (to show it is applied), most is not", () => {
  const valid = corpus.filter(({ case: item }) => item.valid);
  assert.ok(valid.length > 0, "no valid cases: the corpus would not show valid input is applied");
  assert.ok(
    valid.length * 5 < corpus.length,
    `${valid.length} of ${corpus.length} cases are valid`,
  );
});

Deno.test("every HTTP body and JWT recipe can be built", async () => {
  const bases = sampleBases();
  const keys = { cluster: await createJwtIssuer(), stranger: await createJwtIssuer() };
  const vars = { COMPUTE_ID: "bad-input", TENANT_ID: "0".repeat(32), TIMELINE_ID: "1".repeat(32) };
  const failures: string[] = [];
  const http = corpus.filter(({ case: item }) => !isCliCase(item));
  for (const { file, case: item } of http) {
    const request = item.request as HttpRequestSpec;
    try {
      const body = request.body;
      if (body !== undefined) buildBody(body, bases);
      // Every edit must land: a path that misses is a typo, not a test.
      if (body !== undefined && "configure" in body) {
        mutatedJson(bases.configure, body.configure, { strict: true });
      }
      if (body !== undefined && "promote" in body) {
        mutatedJson(bases.promote, body.promote, { strict: true });
      }
      if (typeof request.auth === "object" && "jwt" in request.auth) {
        const token = await makeJwt(request.auth.jwt, keys, vars);
        assert.equal(token.split(".").length, 3);
      }
    } catch (error) {
      failures.push(`${file}: ${item.name}: ${error}`);
    }
  }
  assert.deepEqual(failures, []);
});

Deno.test("every command-line case names only known placeholders and builds its config", () => {
  const failures: string[] = [];
  const cli: BadInputCase[] = corpus.filter(({ case: item }) => isCliCase(item))
    .map(({ case: item }) => item);
  assert.ok(cli.length > 0);
  for (const item of cli) {
    const request = item.request as CliRequestSpec;
    for (const arg of request.args) {
      const unknown = arg.replaceAll("{{CONFIG_PATH}}", "").replaceAll("{{PGDATA}}", "")
        .replaceAll("{{PGBIN}}", "");
      if (unknown.includes("{{")) failures.push(`${item.name}: unknown placeholder in ${arg}`);
    }
    const config = request.config;
    if (config !== undefined && "configure" in config) {
      try {
        JSON.parse(mutatedJson(CLI_BASE_CONFIG, config.configure, { strict: true }));
      } catch (error) {
        failures.push(`${item.name}: ${error}`);
      }
    }
  }
  assert.deepEqual(failures, []);
});
