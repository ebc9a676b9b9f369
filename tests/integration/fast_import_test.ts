/**
 * fast_import end to end, run as production runs it (`-P=fast_import`, the
 * `postgres` OS user): a source with several schemas, a few thousand rows, an
 * index, a sequence, a view, a function and an event trigger goes through
 * `pgdata`, the published PGDATA becomes a timeline through the harness
 * admin API, and a compute started on it answers exactly what the source
 * answers; `dump-restore` into that running compute does the same, and a
 * second `dump-restore` into it is refused without touching it. The storage's
 * own refusals (nothing published, a PGDATA of another major, a broken one)
 * leave nothing in the store.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startCluster } from "../../harness/cluster.ts";
import { freePort } from "../../harness/_processes.ts";
import { randomHexId } from "../../harness/_compute_spec.ts";
import { startLocalPostgres } from "../_support/local_postgres.ts";
import {
  eventTriggerCount,
  FAST_IMPORT_MISSING,
  fastImport,
  fastImportArgs,
  ownedTempDir,
  populateSource,
  snapshot,
  sql,
} from "../_support/fast_import.ts";

async function postJson(url: string, body: unknown) {
  const response = await fetch(url, { method: "POST", body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() };
}

Deno.test({
  name: "fast_import: pgdata → timeline → compute, then dump-restore into the compute",
  ignore: FAST_IMPORT_MISSING !== undefined,
  fn: async (t) => {
    await using source = await startLocalPostgres();
    await populateSource(source.connstr);
    const expected = await snapshot(source.connstr);
    assert.equal(Object.keys(expected.tables).length, 4);
    assert.equal(await eventTriggerCount(source.connstr), 1);

    const dir = await ownedTempDir("fast-import-test-");
    await using cluster = await startCluster({ pageservers: 1 });
    const tenantId = randomHexId();
    const timelineId = randomHexId();
    const timelines = `${cluster.controlPlane.url}/harness/tenants/${tenantId}/timelines`;
    try {
      const published = join(dir, "published"); // fast_import creates it

      await t.step(
        "pgdata publishes a PGDATA and the status markers, reporting progress",
        async () => {
          const run = await fastImport(fastImportArgs(
            join(dir, "work-pgdata"),
            "--destination-dir",
            published,
            "pgdata",
            "--source-connection-string",
            source.connstr,
            "--pg-port",
            String(freePort()),
          ));
          assert.equal(run.code, 0, run.output);
          assert.deepEqual(JSON.parse(await Deno.readTextFile(`${published}/status/pgdata`)), {
            done: true,
          });
          assert.deepEqual(JSON.parse(await Deno.readTextFile(`${published}/status/fast_import`)), {
            command: "pgdata",
            done: true,
          });
          assert.equal((await Deno.readTextFile(`${published}/pgdata/PG_VERSION`)).trim(), "15");
          assert.match(run.output, /pg_dump done: 4 tables, [\d.]+ \S+ in [\d.]+ s/);
          assert.match(
            run.output,
            /pg_restore done: (\d+) of \1 items restored, 4 of 4 tables \(\S+ \S+ of \S+ \S+ of table data\) in/,
          );
          assert.match(run.output, /leaving out 1 event trigger items/);
          assert.match(run.output, /pgdata done in [\d.]+ s \(dump [\d.]+ s, restore [\d.]+ s\)/);
        },
      );

      await t.step(
        "the admin API makes a timeline of it; a second time is a conflict",
        async () => {
          const created = await postJson(timelines, {
            timeline_id: timelineId,
            import_pgdata: published,
          });
          assert.equal(created.status, 201, JSON.stringify(created.body));
          assert.equal(created.body.tenant_id, tenantId);
          assert.equal(created.body.timeline_id, timelineId);
          assert.match(created.body.initial_lsn, /^[0-9A-F]+\/[0-9A-F]+$/);
          const again = await postJson(timelines, {
            timeline_id: timelineId,
            import_pgdata: published,
          });
          assert.equal(again.status, 409);
          assert.match(again.body.error, /already exists/);
        },
      );

      const compute = await cluster.startCompute({ id: "imported", tenantId, timelineId });
      const neondb = compute.connectionUrl({ user: "cloud_admin", database: "neondb" });

      await t.step(
        "a compute on the imported timeline answers what the source answers",
        async () => {
          assert.deepEqual(await snapshot(neondb), expected);
          assert.equal(await eventTriggerCount(neondb), 0, "Neon does not import event triggers");
          await sql(neondb, "INSERT INTO public.customers VALUES (3001, 'new', NULL)");
          const [row] = await sql(neondb, "SELECT count(*) AS n FROM public.customers");
          assert.equal(Number(row.n), 3001);
        },
      );

      const appdb = compute.connectionUrl();
      await t.step("dump-restore into the running compute gives the same answers", async () => {
        const run = await fastImport(fastImportArgs(
          join(dir, "work-dump-restore"),
          "dump-restore",
          "--source-connection-string",
          source.connstr,
          "--destination-connection-string",
          appdb,
        ));
        assert.equal(run.code, 0, run.output);
        assert.match(run.output, /dump-restore done in/);
        assert.deepEqual(await snapshot(appdb), expected);
      });

      await t.step("a destination that already has the tables is refused, untouched", async () => {
        const workdir = join(dir, "work-again");
        const run = await fastImport(fastImportArgs(
          workdir,
          "dump-restore",
          "--source-connection-string",
          source.connstr,
          "--destination-connection-string",
          appdb,
        ));
        assert.equal(run.code, 1, run.output);
        assert.match(
          run.output,
          /dump-restore failed: the destination already has \d+ of the source's schemas and relations \(schema inventory, schema odd schema, schema sales, /,
        );
        await assert.rejects(Deno.stat(workdir), Deno.errors.NotFound);
        assert.deepEqual(await snapshot(appdb), expected);
      });

      await t.step(
        "the storage refuses what is not a finished import and keeps nothing",
        async () => {
          const bogus = join(dir, "bogus");
          const cases: [string, (path: string) => Promise<void>, number, RegExp][] = [
            ["nothing", async () => {}, 400, /holds no finished fast_import pgdata/],
            [
              "not done",
              async (path) => {
                await Deno.mkdir(`${path}/status`, { recursive: true });
                await Deno.writeTextFile(`${path}/status/pgdata`, '{"done": false}');
              },
              400,
              /not \{"done": true\}/,
            ],
            [
              "another major",
              async (path) => {
                await Deno.writeTextFile(`${path}/status/pgdata`, '{"done": true}');
                await Deno.mkdir(`${path}/pgdata`);
                await Deno.writeTextFile(`${path}/pgdata/PG_VERSION`, "14\n");
              },
              400,
              /PostgreSQL 14 data directory; the storage runs 15/,
            ],
            [
              "broken",
              async (path) => {
                await Deno.writeTextFile(`${path}/pgdata/PG_VERSION`, "15\n");
              },
              500,
              /global\/pg_control/,
            ],
          ];
          await Deno.mkdir(bogus);
          for (const [what, prepare, status, message] of cases) {
            await prepare(bogus);
            const timeline = randomHexId();
            const answer = await postJson(timelines, {
              timeline_id: timeline,
              import_pgdata: bogus,
            });
            assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body)}`);
            assert.match(answer.body.error, message, what);
            assert.equal(cluster.store.hasTimeline(tenantId, timeline), false, what);
            await assert.rejects(
              Deno.stat(join(cluster.store.dir, "tenants", tenantId, "timelines", timeline)),
              Deno.errors.NotFound,
              what,
            );
          }
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
