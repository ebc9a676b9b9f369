/**
 * @module
 * The running compute the bad-input cases and the fuzzer are sent to: one
 * harness cluster (a pageserver, a safekeeper) with one primary whose manager
 * has failpoints enabled and a remote extension catalogue, so every route can
 * get past its first check. It sends corpus requests as raw HTTP and reads
 * the compute's health: alive, answering `/status`, and a fingerprint of its
 * catalog and settings that any change shows in.
 */

import { copyPgInstall } from "../../harness/pg_install.ts";
import { locatePostgresOnce } from "../../harness/pg_locate.ts";
import pg from "pg";
import {
  type Cluster,
  type ComputeHandle,
  createJwtIssuer,
  type JsonObject,
  SPEC_DATABASE,
  startCluster,
} from "../../harness/cluster.ts";
import { MIGRATIONS } from "../../src/postgres/migrations.ts";
import { eventually } from "../integration/_helpers.ts";
import { type HttpRequestSpec, parseEntry } from "./bad_input.ts";
import { type BodyBases, buildBody, repeatText } from "./bad_input_body.ts";
import { type RawAnswer, rawRequest } from "./bad_input_http.ts";
import { type JwtKeys, makeJwt } from "./bad_input_jwt.ts";

/** The compute's id: JWT claims and messages name it as `{{COMPUTE_ID}}`. */
export const TARGET_COMPUTE_ID = "bad-input";

/** The remote extension catalogue of the target's spec. */
export const TARGET_REMOTE_EXTENSIONS: JsonObject = {
  public_extensions: ["pg_trgm"],
  custom_extensions: null,
  library_index: { pg_trgm: "pg_trgm" },
  extension_data: { pg_trgm: { control_data: {}, archive_path: "" } },
};

/** A running compute to send bad input to; disposing it stops the cluster. */
export interface BadInputTarget extends AsyncDisposable {
  readonly cluster: Cluster;
  readonly compute: ComputeHandle;
  readonly keys: JwtKeys;
  /** Values for `{{…}}` placeholders. */
  readonly vars: Record<string, string>;
  /** The valid bodies edits start from. */
  readonly bases: BodyBases;
  /** Sends a corpus request; `entry` supplies the server, method and path it leaves out. */
  send(request: HttpRequestSpec, entry: string): Promise<RawAnswer>;
  /** The catalog (roles, databases, memberships, role settings, schemas, extensions, GUCs). */
  fingerprint(): Promise<CatalogFingerprint>;
  /** Whether the manager process has exited. */
  exited(): boolean;
  /**
   * Kills the manager and its Postgres (if still there) and starts a new
   * manager on the same directory, ports and config; resolves once it is
   * `running` with its migrations done. `compute` is the new handle after.
   */
  revive(): Promise<void>;
}

/** Starts the cluster and its compute and returns the target once the compute is `running`. */
export async function startBadInputTarget(): Promise<BadInputTarget> {
  // The remote extension flag needs the install's extension directories writable: npm's
  // tree in node_modules is not (under the compute set), so the target runs a copy in /tmp.
  const install = (await locatePostgresOnce()).source === "npm" ? await copyPgInstall() : undefined;
  let cluster: Cluster;
  try {
    cluster = await startCluster({
      pgbin: install?.pgbin,
      pageservers: 1,
      safekeepers: 1,
      computes: [{
        id: TARGET_COMPUTE_ID,
        // Nothing listens there: only names the spec does not allow are ever asked for.
        extraArgs: ["--enable-failpoints", "--remote-ext-base-url", "http://127.0.0.1:9/"],
        spec: { remote_extensions: TARGET_REMOTE_EXTENSIONS },
      }],
    });
  } catch (error) {
    await install?.close();
    throw error;
  }

  try {
    let compute = cluster.compute(TARGET_COMPUTE_ID);
    await migrationsDone(compute);
    let hasExited = false;
    const watch = (handle: ComputeHandle) => {
      hasExited = false;
      handle.exited.then(() => {
        if (handle === compute) hasExited = true;
      });
    };
    watch(compute);
    const keys: JwtKeys = { cluster: cluster.jwt, stranger: await createJwtIssuer() };
    const { compute_ctl_config } = await compute.readConfig();
    const vars = {
      COMPUTE_ID: compute.id,
      TENANT_ID: compute.tenantId,
      TIMELINE_ID: compute.timelineId,
      PGDATA: compute.pgdata,
    };
    const bases: BodyBases = {
      configure: { spec: compute.spec, compute_ctl_config },
      promote: { spec: compute.spec, wal_flush_lsn: "0/0" },
    };
    return {
      cluster,
      get compute() {
        return compute;
      },
      keys,
      vars,
      bases,
      send: async (request, entry) => {
        const method = request.method ?? parseEntry(entry).method ?? "GET";
        if (request.verbatim !== undefined) {
          const verbatim = new TextEncoder().encode(request.verbatim);
          return await rawRequest(portOf(compute, request, entry), { verbatim, method });
        }
        return await rawRequest(portOf(compute, request, entry), {
          method,
          target: request.path ?? parseEntry(entry).path ?? "/",
          headers: await headersOf(request, entry, compute, keys, vars),
          body: request.body === undefined ? undefined : buildBody(request.body, bases),
          chunked: request.chunked,
        });
      },
      fingerprint: () => catalogFingerprint(compute),
      exited: () => hasExited,
      revive: async () => {
        if (!hasExited) await cluster.computeAction(TARGET_COMPUTE_ID, "kill");
        const started = await cluster.computeAction(TARGET_COMPUTE_ID, "start");
        compute = started;
        watch(compute);
        await migrationsDone(compute);
      },
      [Symbol.asyncDispose]: async () => {
        await cluster.close();
        await install?.close();
      },
    };
  } catch (error) {
    await cluster.close();
    await install?.close();
    throw error;
  }
}

/** Waits until the migrations the start-up began in the background have all been recorded. */
async function migrationsDone(compute: ComputeHandle): Promise<void> {
  await eventually(async () => {
    const [rows] = await queryAll(compute.postgresUrl, [
      "SELECT id FROM neon_migration.migration_id WHERE key = 0",
    ]).catch(() => [[]]);
    return Number((rows[0] as { id?: string } | undefined)?.id) === MIGRATIONS.length;
  }, "every migration recorded");
}

function serverOf(request: HttpRequestSpec, entry: string): "external" | "internal" {
  return request.server ?? parseEntry(entry).server;
}

function portOf(compute: ComputeHandle, request: HttpRequestSpec, entry: string): number {
  const url = serverOf(request, entry) === "internal" ? compute.internalHttp : compute.externalHttp;
  return Number(new URL(url).port);
}

async function headersOf(
  request: HttpRequestSpec,
  entry: string,
  compute: ComputeHandle,
  keys: JwtKeys,
  vars: Record<string, string>,
): Promise<[string, string][]> {
  const headers: [string, string][] = [];
  const auth = request.auth ?? (serverOf(request, entry) === "external" ? "compute" : "none");
  if (auth === "compute") headers.push(["authorization", `Bearer ${compute.tokens.compute}`]);
  else if (auth === "admin") headers.push(["authorization", `Bearer ${compute.tokens.admin}`]);
  else if (auth !== "none") {
    let value: string;
    if ("header" in auth) value = auth.header;
    else if ("bearer" in auth) value = `Bearer ${repeatText(auth.bearer)}`;
    else value = `Bearer ${await makeJwt(auth.jwt, keys, vars)}`;
    headers.push(["authorization", value]);
  }
  const contentType = request.contentType !== undefined
    ? request.contentType
    : request.body !== undefined
    ? "application/json"
    : null;
  if (contentType !== null) headers.push(["content-type", contentType]);
  for (const [name, value] of Object.entries(request.headers ?? {})) headers.push([name, value]);
  return headers;
}

/** What the fingerprint covers, per database. */
const FINGERPRINT_QUERIES = {
  cluster: [
    "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, " +
    "rolreplication, rolbypassrls, rolconnlimit, rolpassword, rolvaliduntil FROM pg_authid " +
    "ORDER BY rolname",
    "SELECT datname, pg_get_userbyid(datdba) AS owner, datallowconn, datconnlimit, datacl " +
    "FROM pg_database ORDER BY datname",
    "SELECT roleid::regrole::text AS role, member::regrole::text AS member, admin_option " +
    "FROM pg_auth_members ORDER BY 1, 2",
    "SELECT setdatabase, setrole, setconfig FROM pg_db_role_setting ORDER BY 1, 2",
    "SELECT name, setting FROM pg_settings ORDER BY name",
  ],
  database: [
    "SELECT nspname, pg_get_userbyid(nspowner) AS owner, nspacl::text AS acl FROM pg_namespace " +
    "ORDER BY nspname",
    "SELECT extname, extversion FROM pg_extension ORDER BY extname",
  ],
};

/** What a bad input must not change, as JSON text per query (`<database>: <sql>` → rows). */
export type CatalogFingerprint = Record<string, string>;

/** The fingerprint of the compute's catalog: cluster-wide objects, and the spec database's own. */
export async function catalogFingerprint(compute: ComputeHandle): Promise<CatalogFingerprint> {
  const fingerprint: CatalogFingerprint = {};
  for (const database of ["postgres", SPEC_DATABASE]) {
    const sqls = database === "postgres"
      ? [...FINGERPRINT_QUERIES.cluster, ...FINGERPRINT_QUERIES.database]
      : FINGERPRINT_QUERIES.database;
    const url = compute.connectionUrl({ user: "cloud_admin", database });
    const results = await queryAll(url, sqls);
    sqls.forEach((sql, index) =>
      fingerprint[`${database}: ${sql}`] = JSON.stringify(results[index])
    );
  }
  return fingerprint;
}

/** What differs between two fingerprints, one line per query whose rows changed. */
export function fingerprintChanges(
  before: CatalogFingerprint,
  after: CatalogFingerprint,
): string[] {
  return Object.keys(after).filter((key) => before[key] !== after[key]).map((key) => {
    const was = new Set(JSON.parse(before[key] ?? "[]").map((row: unknown) => JSON.stringify(row)));
    const now: string[] = JSON.parse(after[key]).map((row: unknown) => JSON.stringify(row));
    const added = now.filter((row) => !was.has(row));
    return `${key.slice(0, 60)}…: now ${added.slice(0, 3).join(", ").slice(0, 400)}`;
  });
}

/** The rows of each of `sqls`, run in order on one connection to `url`. */
export async function queryAll(url: string, sqls: readonly string[]): Promise<unknown[][]> {
  const client = new pg.Client({ connectionString: url, application_name: "bad-input" });
  client.on("error", () => {});
  await client.connect();
  try {
    const results: unknown[][] = [];
    for (const sql of sqls) results.push((await client.query(sql)).rows);
    return results;
  } finally {
    await client.end();
  }
}
