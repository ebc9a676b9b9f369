import assert from "node:assert/strict";
import { parseComputeSpecJson, type ParsedSpec, parseSpec } from "../../src/api/parsed_spec.ts";
import {
  type ConfOptions,
  renderPostgresqlConf,
  synchronousStandbyNamesLine,
} from "../../src/postgres/conf.ts";

const FIXTURES = new URL("../../fixtures/", import.meta.url);
const OPTIONS: ConfOptions = { privilegedRoleName: "neon_superuser", internalHttpPort: 3081 };

// deno-lint-ignore no-explicit-any -- tests edit fixture JSON freely before parsing it
type Json = any;

function fixture(name: string): Json {
  return JSON.parse(Deno.readTextFileSync(new URL(`specs/${name}.json`, FIXTURES)));
}

function parsed(json: Json): ParsedSpec {
  return parseSpec(parseComputeSpecJson(json));
}

function lines(json: Json, options: Partial<ConfOptions> = {}): string[] {
  return renderPostgresqlConf(parsed(json), { ...OPTIONS, ...options }).split("\n");
}

function withSafekeepers(safekeepers: string[]): Json {
  return { ...fixture("minimal_primary"), safekeeper_connstrings: safekeepers };
}

const syncLines = (rendered: string[]) =>
  rendered.filter((line) => line.startsWith("synchronous_standby_names"));

Deno.test("synchronousStandbyNamesLine: ANY majority of the names, in list order", () => {
  assert.equal(
    synchronousStandbyNamesLine(["127.0.0.1:1"]),
    `synchronous_standby_names = 'ANY 1 ("safekeeper_127_0_0_1_1")'`,
  );
  assert.equal(
    synchronousStandbyNamesLine(["127.0.0.1:1", "127.0.0.1:2"]),
    `synchronous_standby_names = 'ANY 2 ("safekeeper_127_0_0_1_1", "safekeeper_127_0_0_1_2")'`,
  );
  assert.equal(
    synchronousStandbyNamesLine(["a:1", "b:2", "c:3"]),
    `synchronous_standby_names = 'ANY 2 ("safekeeper_a_1", "safekeeper_b_2", "safekeeper_c_3")'`,
  );
  assert.equal(
    synchronousStandbyNamesLine(["a:1", "b:2", "c:3", "d:4", "e:5"]),
    "synchronous_standby_names = 'ANY 3 (" +
      `"safekeeper_a_1", "safekeeper_b_2", "safekeeper_c_3", "safekeeper_d_4", "safekeeper_e_5")'`,
  );
});

Deno.test("vanilla primary: the line comes right after neon.safekeepers", () => {
  const rendered = lines(fixture("minimal_primary"), { vanillaStorage: true });
  const at = rendered.indexOf("neon.safekeepers='127.0.0.1:65001,127.0.0.1:65002,127.0.0.1:65003'");
  assert.ok(at > 0);
  assert.equal(
    rendered[at + 1],
    "synchronous_standby_names = 'ANY 2 (" +
      `"safekeeper_127_0_0_1_65001", "safekeeper_127_0_0_1_65002", "safekeeper_127_0_0_1_65003")'`,
  );
  assert.equal(rendered[at + 2], "neon.tenant_id='0a1b2c3d4e5f60718293a4b5c6d7e8f9'");
});

Deno.test("vanilla primary: 1, 2, 3 and 5 safekeepers give ANY 1, 2, 2, 3", () => {
  for (const [count, quorum] of [[1, 1], [2, 2], [3, 2], [5, 3]]) {
    const safekeepers = Array.from({ length: count }, (_, i) => `127.0.0.1:${6500 + i}`);
    const [line] = syncLines(lines(withSafekeepers(safekeepers), { vanillaStorage: true }));
    const names = safekeepers.map((entry) => `"safekeeper_127_0_0_1_${entry.slice(-4)}"`);
    assert.equal(line, `synchronous_standby_names = 'ANY ${quorum} (${names.join(", ")})'`);
  }
});

Deno.test("vanilla primary: reordering the safekeepers reorders the names only", () => {
  const forward = syncLines(lines(withSafekeepers(["a:1", "b:2", "c:3"]), {
    vanillaStorage: true,
  }));
  const backward = syncLines(lines(withSafekeepers(["c:3", "b:2", "a:1"]), {
    vanillaStorage: true,
  }));
  assert.deepEqual(forward, [
    `synchronous_standby_names = 'ANY 2 ("safekeeper_a_1", "safekeeper_b_2", "safekeeper_c_3")'`,
  ]);
  assert.deepEqual(backward, [
    `synchronous_standby_names = 'ANY 2 ("safekeeper_c_3", "safekeeper_b_2", "safekeeper_a_1")'`,
  ]);
});

Deno.test("vanilla primary: long host names become hashed names of at most 63 bytes", () => {
  const long = [
    "safekeeper-0.safekeeper.storage.eu-central-1.aws.neon.build:6500",
    "safekeeper-1.safekeeper.storage.eu-central-1.aws.neon.build:6500",
  ];
  const [line] = syncLines(lines(withSafekeepers(long), { vanillaStorage: true }));
  const match = /^synchronous_standby_names = 'ANY 2 \("([a-z0-9_]+)", "([a-z0-9_]+)"\)'$/.exec(
    line,
  );
  assert.ok(match, line);
  assert.notEqual(match[1], match[2]);
  for (const name of match.slice(1)) {
    assert.equal(name.length, 63);
    assert.match(name, /^safekeeper_safekeeper_[0-9]_safekeeper_storage_eu_central__[0-9a-f]{8}$/);
  }
});

Deno.test("vanilla storage: it wins over a walproposer setting in the verbatim conf", () => {
  const json = fixture("minimal_primary");
  json.cluster.postgresql_conf = "synchronous_standby_names='walproposer'\n";
  const rendered = lines(json, { vanillaStorage: true });
  const all = rendered.filter((line) => line.startsWith("synchronous_standby_names"));
  assert.equal(all.length, 2);
  assert.ok(rendered.indexOf(all[1]) > rendered.indexOf(all[0]), "ours is the later line");
  assert.match(all[1], /^synchronous_standby_names = 'ANY 2 /);
});

Deno.test("vanilla primary: safekeepers from the legacy neon.safekeepers setting are named too", () => {
  const rendered = lines(fixture("legacy_settings"), { vanillaStorage: true });
  assert.ok(!rendered.some((line) => line.startsWith("neon.safekeepers=")), "no spec list");
  assert.deepEqual(syncLines(rendered), [
    "synchronous_standby_names = 'ANY 2 (" +
    `"safekeeper_127_0_0_1_65001", "safekeeper_127_0_0_1_65002", "safekeeper_127_0_0_1_65003")'`,
  ]);
});

Deno.test("no line without vanillaStorage, for Replica and Static, or without safekeepers", () => {
  assert.deepEqual(syncLines(lines(fixture("minimal_primary"))), []);
  assert.deepEqual(syncLines(lines(fixture("minimal_primary"), { vanillaStorage: false })), []);
  for (const name of ["replica", "static"]) {
    const json = fixture(name);
    json.safekeeper_connstrings = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"];
    const rendered = lines(json, { vanillaStorage: true });
    assert.ok(rendered.some((line) => line.startsWith("neon.safekeepers=")), name);
    assert.deepEqual(syncLines(rendered), [], name);
  }
});

Deno.test("vanillaStorage=false leaves the full fixture byte-identical", () => {
  const json = fixture("full");
  const options: Partial<ConfOptions> = { platform: "linux", overcommitMemory: 2, tls: true };
  assert.equal(
    renderPostgresqlConf(parsed(json), { ...OPTIONS, ...options, vanillaStorage: false }),
    Deno.readTextFileSync(new URL("golden/full.postgresql.conf", FIXTURES)),
  );
});
