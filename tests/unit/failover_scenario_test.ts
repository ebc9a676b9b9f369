/**
 * Failover scenario files: what parses, and that every bad file is refused with
 * the step and the reason before a cluster is started.
 */

import assert from "node:assert/strict";
import {
  checkAgainstCluster,
  DEFAULT_SCENARIO,
  parseScenario,
  ScenarioError,
} from "../../harness/failover/scenario.ts";

const CLUSTER = { pageservers: 2, safekeepers: 3 };

Deno.test("the example scenario and the built-in one parse and fit the failover cluster", async () => {
  const example = parseScenario(
    await Deno.readTextFile(new URL("../../fixtures/scenarios/example.json", import.meta.url)),
  );
  assert.equal(example.length, 9);
  assert.deepEqual(example[3], { step: "safekeeper", action: "stop", id: 2, expect: "blocked" });
  assert.deepEqual(example[2], { step: "safekeeper", action: "kill", id: 3, expect: "commits" });
  checkAgainstCluster(example, CLUSTER);
  assert.deepEqual(parseScenario(JSON.stringify(DEFAULT_SCENARIO)), DEFAULT_SCENARIO);
  checkAgainstCluster(DEFAULT_SCENARIO, CLUSTER);
});

Deno.test("a bad scenario names the step and what is wrong with it", () => {
  const cases: [string, RegExp][] = [
    ["{oops", /^f\.json: not JSON: /],
    ["{}", /^f\.json: a scenario is a non-empty JSON array of steps$/],
    ["[]", /^f\.json: a scenario is a non-empty JSON array of steps$/],
    ['[{"step": "run", "commits": 1}, {"step": "fly"}]', /^f\.json: step 2 \(fly\): step: /],
    ['[{"step": "migrate", "to": 2}]', /^f\.json: step 1 \(migrate\): notify: /],
    ['[{"step": "migrate", "to": "2", "notify": true}]', /^f\.json: step 1 \(migrate\): to: /],
    ['[{"step": "safekeeper", "action": "reboot", "id": 1}]', /step 1 \(safekeeper\): action: /],
    ['[{"step": "safekeeper", "action": "kill", "id": 1, "expect": "slow"}]', /expect: /],
    ['[{"step": "run", "commits": 0}]', /^f\.json: step 1 \(run\): commits: /],
    ['[{"step": "compute", "action": "kill", "extra": 1}]', /step 1 \(compute\): .*extra/],
    ["[42]", /^f\.json: step 1: /],
  ];
  for (const [text, expected] of cases) {
    assert.throws(() => parseScenario(text, "f.json"), (error: unknown) => {
      assert.ok(error instanceof ScenarioError, text);
      assert.match(error.message, expected, text);
      return true;
    });
  }
});

Deno.test("steps that name servers the cluster lacks are refused before it starts", () => {
  const refuse = (text: string, expected: RegExp) =>
    assert.throws(
      () => checkAgainstCluster(parseScenario(text, "f.json"), CLUSTER, "f.json"),
      expected,
    );
  refuse(
    '[{"step": "migrate", "to": 3, "notify": true}]',
    /step 1 \(migrate\): to: there is no pageserver 3/,
  );
  refuse(
    '[{"step": "run", "commits": 1}, {"step": "fail_pageserver", "id": 5}]',
    /step 2 \(fail_pageserver\): id: there is no pageserver 5/,
  );
  refuse(
    '[{"step": "safekeeper", "action": "stop", "id": 4}]',
    /step 1 \(safekeeper\): id: there is no safekeeper 4 \(the cluster has 3\)/,
  );
});
