/**
 * The harness admin API without sockets: which route each path reaches and
 * with which parameters, the 400 messages for bad bodies, 404 for unknown
 * paths, 405 for wrong methods, and the handler calling the right cluster
 * operation (a recording fake) and mapping its errors to 404/409/400/500.
 */

import assert from "node:assert/strict";
import {
  type AdminCluster,
  createAdminHandler,
  matchAdminRoute,
  parseAdminBody,
  statusOfError,
} from "../../harness/admin_api.ts";
import {
  HarnessBadRequestError,
  HarnessConflictError,
  HarnessNotFoundError,
} from "../../harness/_errors.ts";
import { nextComputeId, specMode } from "../../harness/_cluster_operations.ts";
import { publishedPgdata } from "../../harness/_published_pgdata.ts";
import type { ComputeHandle } from "../../harness/cluster.ts";

const TENANT = "0123456789abcdef0123456789abcdef";
const TIMELINE = "fedcba9876543210fedcba9876543210";

function routeOf(method: string, path: string) {
  const matched = matchAdminRoute(method, path);
  if ("error" in matched) assert.fail(`${method} ${path}: ${JSON.stringify(matched.error)}`);
  return matched;
}

Deno.test("every admin path reaches its route with its parameters", () => {
  const cases: [string, string, string, Record<string, string>][] = [
    ["GET", "/harness/state", "/harness/state", {}],
    ["POST", "/harness/pageservers/2/stop", "/harness/pageservers/:id(\\d+)/", {
      id: "2",
      action: "stop",
    }],
    ["POST", "/harness/pageservers/1/kill", "/harness/pageservers/", { id: "1", action: "kill" }],
    ["POST", "/harness/safekeepers/3/start", "/harness/safekeepers/", {
      id: "3",
      action: "start",
    }],
    ["POST", "/harness/computes/compute-1/kill", "/harness/computes/:id/", {
      id: "compute-1",
      action: "kill",
    }],
    ["POST", "/harness/computes", "/harness/computes", {}],
    ["POST", `/harness/tenants/${TENANT}/migrate`, "/harness/tenants/", { tenantId: TENANT }],
    ["POST", `/harness/tenants/${TENANT}/timelines`, "/harness/tenants/:tenantId/timelines", {
      tenantId: TENANT,
    }],
  ];
  for (const [method, path, routePrefix, params] of cases) {
    const matched = routeOf(method, path);
    assert.ok(matched.route.path.startsWith(routePrefix), `${path} → ${matched.route.path}`);
    assert.deepEqual(matched.params, params, path);
  }
});

Deno.test("unknown admin paths are 404, wrong methods 405 with Allow", () => {
  for (
    const path of [
      "/harness",
      "/harness/",
      "/harness/states",
      "/harness/pageservers/one/stop",
      "/harness/pageservers/1/reboot",
      "/harness/pageservers/1",
      "/harness/safekeepers/1/stop/now",
      "/harness/computes/c1/pause",
      "/harness/tenants/x/move",
      "/harness/computes/%E0%A4%A/stop",
    ]
  ) {
    const matched = matchAdminRoute("POST", path);
    assert.ok("error" in matched, path);
    assert.equal(matched.error.status, 404, path);
    assert.match((matched.error.body as { error: string }).error, /^no route for POST /);
  }
  for (
    const [method, path, allow] of [
      ["POST", "/harness/state", "GET"],
      ["GET", "/harness/pageservers/1/stop", "POST"],
      ["DELETE", "/harness/computes/c1/start", "POST"],
      ["GET", "/harness/computes", "POST"],
      ["PUT", `/harness/tenants/${TENANT}/migrate`, "POST"],
    ]
  ) {
    const matched = matchAdminRoute(method, path);
    assert.ok("error" in matched, path);
    assert.equal(matched.error.status, 405, `${method} ${path}`);
    assert.deepEqual(matched.allow, [allow]);
  }
});

Deno.test("bad admin bodies are 400 with a message naming the problem", () => {
  const add = routeOf("POST", "/harness/computes").route;
  const migrate = routeOf("POST", `/harness/tenants/${TENANT}/migrate`).route;
  const timelines = routeOf("POST", `/harness/tenants/${TENANT}/timelines`).route;
  const cases: [typeof add, string, RegExp][] = [
    [add, "", /a JSON body is required/],
    [add, "{", /invalid JSON body/],
    [add, "[]", /expected object/],
    [add, '{"mode": "Primary"}', /mode: .*'Static' \| 'Replica'/],
    [add, "{}", /mode: .*'Static' \| 'Replica'/],
    [add, '{"mode": "Static"}', /lsn: missing field/],
    [add, '{"mode": "Static", "lsn": 42}', /lsn: .*expected string/],
    [add, '{"mode": "Static", "lsn": "0/zz"}', /lsn: expected an LSN/],
    [add, '{"mode": "Replica", "tenant_id": "nope"}', /tenant_id: expected 32 hex digits/],
    [add, '{"mode": "Replica", "lsn": "0/1"}', /Unrecognized key: "lsn"/],
    [migrate, "{}", /to: missing field/],
    [migrate, '{"to": "2"}', /to: .*expected number/],
    [migrate, '{"to": 1.5}', /to: .*expected int/],
    [migrate, '{"to": 0}', /to: /],
    [migrate, '{"to": 2, "notify": "yes"}', /notify: .*expected boolean/],
    [migrate, '{"to": 2, "notfy": true}', /Unrecognized key: "notfy"/],
    [timelines, '{"import_pgdata": "/x"}', /timeline_id: missing field/],
    [timelines, `{"timeline_id": "${TIMELINE}"}`, /import_pgdata: missing field/],
    [timelines, `{"timeline_id": "x", "import_pgdata": "/x"}`, /timeline_id: expected 32 hex/],
    [timelines, `{"timeline_id": "${TIMELINE}", "import_pgdata": ""}`, /import_pgdata: expected/],
    [timelines, `{"timeline_id": "${TIMELINE}", "import_pgdata": "/x", "x": 1}`, /Unrecognized/],
  ];
  for (const [route, text, message] of cases) {
    const parsed = parseAdminBody(route, text);
    assert.ok("error" in parsed, text);
    assert.equal(parsed.error.status, 400, text);
    assert.match((parsed.error.body as { error: string }).error, message, text);
  }
});

Deno.test("good admin bodies parse; notify defaults to true; action routes ignore bodies", () => {
  const add = routeOf("POST", "/harness/computes").route;
  const migrate = routeOf("POST", `/harness/tenants/${TENANT}/migrate`).route;
  assert.deepEqual(parseAdminBody(add, '{"mode": "Static", "lsn": "0/16B3748"}'), {
    body: { mode: "Static", lsn: "0/16B3748" },
  });
  assert.deepEqual(
    parseAdminBody(
      add,
      JSON.stringify({ mode: "Replica", tenant_id: TENANT, timeline_id: TIMELINE }),
    ),
    { body: { mode: "Replica", tenant_id: TENANT, timeline_id: TIMELINE } },
  );
  assert.deepEqual(parseAdminBody(migrate, '{"to": 2}'), { body: { to: 2, notify: true } });
  assert.deepEqual(parseAdminBody(migrate, '{"to": 1, "notify": false}'), {
    body: { to: 1, notify: false },
  });
  const stop = routeOf("POST", "/harness/pageservers/1/stop").route;
  assert.deepEqual(parseAdminBody(stop, "not json at all"), { body: undefined });
});

Deno.test("operation errors map to 404, 409, 400 and 500", () => {
  assert.equal(statusOfError(new HarnessNotFoundError("x")), 404);
  assert.equal(statusOfError(new HarnessConflictError("x")), 409);
  assert.equal(statusOfError(new HarnessBadRequestError("x")), 400);
  assert.equal(statusOfError(new Error("x")), 500);
  assert.equal(statusOfError("x"), 500);
});

Deno.test("specMode: Static LSNs are normalised, bad ones and unknown modes are bad requests", () => {
  assert.deepEqual(specMode({ mode: "Static", lsn: "0/16b3748" }), { Static: "0/16B3748" });
  assert.equal(specMode({ mode: "Replica" }), "Replica");
  assert.throws(() => specMode({ mode: "Static", lsn: "16B3748" }), HarnessBadRequestError);
  assert.throws(
    () => specMode({ mode: "Primary" } as unknown as { mode: "Replica" }),
    HarnessBadRequestError,
  );
});

Deno.test("nextComputeId takes the smallest free compute-N", () => {
  assert.equal(nextComputeId([]), "compute-1");
  assert.equal(nextComputeId(["compute-1", "compute-2"]), "compute-3");
  assert.equal(nextComputeId(["compute-2", "other"]), "compute-1");
});

/** A cluster that records each call and answers from `answers` (or throws what it holds). */
function fakeCluster(answers: Record<string, unknown> = {}) {
  const calls: unknown[][] = [];
  const answer = (name: string, ...args: unknown[]) => {
    calls.push([name, ...args]);
    const value = answers[name];
    if (value instanceof Error) return Promise.reject(value);
    return Promise.resolve(value);
  };
  const compute = (id: string) => ({ id }) as ComputeHandle;
  const cluster: AdminCluster = {
    clusterJson: () => ({ state: true }),
    computeJson: (id) => ({ id, entry: true }),
    pageserverAction: (id, action) =>
      answer("pageserverAction", id, action).then(() => ({
        id,
        running: action === "start",
      })),
    safekeeperAction: (id, action) =>
      answer("safekeeperAction", id, action).then(() => ({
        id,
        running: action === "start",
      })),
    computeAction:
      ((id: string, action: string) =>
        answer("computeAction", id, action).then(() =>
          action === "start" ? compute(id) : 137
        )) as AdminCluster["computeAction"],
    addCompute: (mode, timeline) =>
      answer("addCompute", mode, timeline).then(() => compute("compute-2")),
    migrateTenant: (tenantId, to, options) =>
      answer("migrateTenant", tenantId, to, options).then(() => ({
        tenant_id: tenantId,
        to,
        secondary: [1],
        computes: ["compute-1"],
        notified: [],
      })),
    importTimeline: (tenantId, timelineId, importDir) =>
      answer("importTimeline", tenantId, timelineId, importDir).then(() => ({
        tenant_id: tenantId,
        timeline_id: timelineId,
        initial_lsn: "0/1CD36A0",
      })),
  };
  return { cluster, calls };
}

async function send(cluster: AdminCluster, method: string, path: string, body?: unknown) {
  const response = await createAdminHandler(cluster)(
    new Request(`http://127.0.0.1${path}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return { status: response.status, headers: response.headers, body: await response.json() };
}

Deno.test("the admin handler calls the one operation each route names", async () => {
  const { cluster, calls } = fakeCluster();
  assert.deepEqual(await send(cluster, "GET", "/harness/state").then((r) => r.body), {
    state: true,
  });
  const stopped = await send(cluster, "POST", "/harness/pageservers/2/stop");
  assert.deepEqual([stopped.status, stopped.body], [200, { id: 2, running: false }]);
  const started = await send(cluster, "POST", "/harness/safekeepers/1/start");
  assert.deepEqual([started.status, started.body], [200, { id: 1, running: true }]);
  const killed = await send(cluster, "POST", "/harness/computes/compute-1/kill");
  assert.deepEqual([killed.status, killed.body], [200, { id: "compute-1", exit_code: 137 }]);
  const restarted = await send(cluster, "POST", "/harness/computes/compute-1/start");
  assert.deepEqual([restarted.status, restarted.body], [200, { id: "compute-1", entry: true }]);
  const added = await send(cluster, "POST", "/harness/computes", {
    mode: "Static",
    lsn: "0/1",
    tenant_id: TENANT,
    timeline_id: TIMELINE,
  });
  assert.deepEqual([added.status, added.body], [201, { id: "compute-2", entry: true }]);
  const migrated = await send(cluster, "POST", `/harness/tenants/${TENANT}/migrate`, {
    to: 2,
    notify: false,
  });
  assert.equal(migrated.status, 200);
  assert.deepEqual(migrated.body.computes, ["compute-1"]);
  const imported = await send(cluster, "POST", `/harness/tenants/${TENANT}/timelines`, {
    timeline_id: TIMELINE,
    import_pgdata: "/tmp/published",
  });
  assert.deepEqual([imported.status, imported.body], [201, {
    tenant_id: TENANT,
    timeline_id: TIMELINE,
    initial_lsn: "0/1CD36A0",
  }]);
  assert.deepEqual(calls, [
    ["pageserverAction", 2, "stop"],
    ["safekeeperAction", 1, "start"],
    ["computeAction", "compute-1", "kill"],
    ["computeAction", "compute-1", "start"],
    ["addCompute", { mode: "Static", lsn: "0/1" }, { tenantId: TENANT, timelineId: TIMELINE }],
    ["migrateTenant", TENANT, 2, { notify: false }],
    ["importTimeline", TENANT, TIMELINE, "/tmp/published"],
  ]);
});

Deno.test("the admin handler answers errors as {error} with their status", async () => {
  const { cluster, calls } = fakeCluster({
    pageserverAction: new HarnessNotFoundError("no pageserver 9"),
    safekeeperAction: new HarnessConflictError("safekeeper 1 is not running"),
    addCompute: new HarnessBadRequestError('invalid LSN "x"'),
    migrateTenant: new Error("compute c answered /configure with 412"),
    importTimeline: new HarnessConflictError("timeline exists"),
  });
  const cases: [string, string, unknown, number, string][] = [
    ["POST", "/harness/pageservers/9/stop", undefined, 404, "no pageserver 9"],
    ["POST", "/harness/safekeepers/1/kill", undefined, 409, "safekeeper 1 is not running"],
    ["POST", "/harness/computes", { mode: "Replica" }, 400, 'invalid LSN "x"'],
    ["POST", `/harness/tenants/${TENANT}/migrate`, { to: 1 }, 500, "answered /configure"],
    ["POST", "/harness/computes", { mode: "Primary" }, 400, "invalid body: mode"],
    ["POST", "/harness/nothing", undefined, 404, "no route for POST /harness/nothing"],
    [
      "POST",
      `/harness/tenants/${TENANT}/timelines`,
      {
        timeline_id: TIMELINE,
        import_pgdata: "/p",
      },
      409,
      "timeline exists",
    ],
  ];
  for (const [method, path, body, status, message] of cases) {
    const answer = await send(cluster, method, path, body);
    assert.equal(answer.status, status, `${method} ${path}`);
    assert.ok(answer.body.error.includes(message), answer.body.error);
  }
  const wrongMethod = await send(cluster, "GET", "/harness/computes");
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.get("allow"), "POST");
  assert.equal(calls.length, 5, "a bad body or path calls nothing");
});

Deno.test("publishedPgdata: only a directory fast_import finished publishing to", async () => {
  const dir = await Deno.makeTempDir({ prefix: "published-" });
  try {
    const refusal = async (path: string, message: RegExp) => {
      const error = await publishedPgdata(path).then(() => null, (e) => e);
      assert.ok(error instanceof HarnessBadRequestError, `${path}: ${error}`);
      assert.match(error.message, message);
    };
    await refusal("relative/dir", /must be an absolute path/);
    await refusal(dir, /holds no finished fast_import pgdata: .*status\/pgdata does not exist/);
    await Deno.mkdir(`${dir}/status`);
    await Deno.writeTextFile(`${dir}/status/pgdata`, '{"done": false}');
    await refusal(dir, /says "\{\\"done\\": false\}", not \{"done": true\}/);
    await Deno.writeTextFile(`${dir}/status/pgdata`, '{"done":true}');
    await refusal(dir, /pgdata is not a directory/);
    await Deno.mkdir(`${dir}/pgdata`);
    assert.equal(await publishedPgdata(dir), `${dir}/pgdata`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
