/**
 * Secrets never reach the logs or an error body. One full run of a compute
 * fed from the control plane: roles with md5 and SCRAM passwords, a storage
 * auth token, an endpoint storage token, JWT auth on, the control-plane token
 * in `NEON_CONTROL_PLANE_TOKEN`; `/configure` rotating a password; requests
 * that fail (bad and forged tokens, an invalid spec, a spec of the wrong
 * shape, malformed JSON around a token, a spec naming an ungranted host with
 * the token as its password, a reserved role name); a refresh; `/terminate`.
 * Postgres runs with `log_statement = 'ddl'`, so it logs every role statement
 * it is sent. Then `compute.log` (the manager's log and Postgres's, as `PG:`
 * lines) and every HTTP body the run saw are searched for each secret, for the
 * md5 and SCRAM verifiers the spec carries, and for any 8-character fragment
 * of the random ones: no hit.
 */

import assert from "node:assert/strict";
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import {
  createJwtIssuer,
  type HttpResult,
  type JsonObject,
  md5Password,
  type RequestOptions,
  SPEC_ROLE,
  startCluster,
} from "../../harness/cluster.ts";
import { emptyRecord, recordFamily, scaled } from "../../harness/reliability/record.ts";
import { query, within } from "./_helpers.ts";

/** A secret and what it is, for the failure message. */
interface Secret {
  what: string;
  value: string;
  /** Search for every slice of {@linkcode FRAGMENT_LENGTH} characters too, not just the whole. */
  fragments?: boolean;
}

/**
 * A fragment this long found anywhere counts as a leak: V8's JSON errors,
 * for one, quote 10 characters of the input around the error.
 */
const FRAGMENT_LENGTH = 8;

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** 32 random letters and digits: a secret unique to this run, whose every slice is too. */
function randomSecret(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(32)), (byte) => ALPHABET[byte % 62])
    .join("");
}

/** A SCRAM-SHA-256 verifier as Postgres stores it, with its two keys for the search. */
function scramVerifier(password: string): { verifier: string; keys: string[] } {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password, salt, 4096, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest("base64");
  const serverKey = createHmac("sha256", salted).update("Server Key").digest("base64");
  return {
    verifier: `SCRAM-SHA-256$4096:${salt.toString("base64")}$${storedKey}:${serverKey}`,
    keys: [storedKey, serverKey],
  };
}

/**
 * A role of the spec with its md5 verifier; the password and the verifier are
 * secrets. Only a random password is searched in fragments: the harness's own
 * (`alice-secret-password`) has ordinary words in it.
 */
function md5Role(name: string, password: string, secrets: Secret[]): JsonObject {
  const hash = md5Password(password, name);
  const fragments = password !== SPEC_ROLE.password;
  secrets.push({ what: `${name}'s password`, value: password, fragments });
  secrets.push({ what: `${name}'s md5 verifier`, value: hash, fragments: true });
  return { name, encrypted_password: hash, options: null };
}

/** A JWT, and its signature alone (its header is the same in every token of the key). */
function jwtSecrets(what: string, token: string): Secret[] {
  return [
    { what, value: token },
    { what: `${what} signature`, value: token.split(".")[2], fragments: true },
  ];
}

/** What is searched for `secret`, lower-cased: the whole, and every fragment if it asks. */
function needles(secret: Secret): string[] {
  const value = secret.value.toLowerCase();
  if (!secret.fragments) return [value];
  return Array.from(
    { length: value.length - FRAGMENT_LENGTH + 1 },
    (_, start) => value.slice(start, start + FRAGMENT_LENGTH),
  );
}

/** The secrets found (whole or a fragment, in any case) in `text`, as `what in where` lines. */
function leaks(secrets: readonly Secret[], where: string, text: string): string[] {
  const haystack = text.toLowerCase();
  return secrets.filter((secret) => needles(secret).some((needle) => haystack.includes(needle)))
    .map((secret) => `${secret.what} in ${where}`);
}

Deno.test("no secret of a full run appears in the logs or in an HTTP body", async () => {
  const record = emptyRecord("secrets", "full run", "secrets searched");
  try {
    const secrets: Secret[] = [];
    const storageToken = randomSecret();
    const endpointStorageToken = randomSecret();
    const controlPlaneToken = randomSecret();
    secrets.push(
      { what: "the storage auth token", value: storageToken, fragments: true },
      { what: "the endpoint storage token", value: endpointStorageToken, fragments: true },
      { what: "the control-plane token", value: controlPlaneToken, fragments: true },
    );
    const carolPassword = randomSecret();
    const carolScram = scramVerifier(carolPassword);
    secrets.push(
      { what: "carol's password", value: carolPassword, fragments: true },
      { what: "carol's SCRAM verifier", value: carolScram.verifier },
      ...carolScram.keys.map((key) => ({
        what: "a key of carol's SCRAM verifier",
        value: key,
        fragments: true,
      })),
    );
    const roles = (bobPassword: string) => [
      md5Role(SPEC_ROLE.name, SPEC_ROLE.password, secrets),
      md5Role("bob", bobPassword, secrets),
      { name: "carol", encrypted_password: carolScram.verifier, options: null },
    ];
    let bobPassword = randomSecret();

    await using cluster = await startCluster({
      pageservers: 1,
      computes: [{
        id: "secretive",
        source: "control-plane",
        env: { NEON_CONTROL_PLANE_TOKEN: controlPlaneToken },
        // Postgres logs every role statement, passwords included, unless the manager redacts.
        postgresqlConf: ["log_statement='ddl'"],
        spec: {
          storage_auth_token: storageToken,
          endpoint_storage_token: endpointStorageToken,
          cluster: { roles: roles(bobPassword) },
        },
      }],
    });
    const compute = cluster.compute("secretive");
    const forged = await (await createJwtIssuer()).signComputeToken(compute.id);
    secrets.push(
      ...jwtSecrets("the compute JWT", compute.tokens.compute),
      ...jwtSecrets("the admin JWT", compute.tokens.admin),
      ...jwtSecrets("a forged JWT", forged),
    );

    const bodies: { where: string; text: string }[] = [];
    const call = async (
      expected: number,
      method: string,
      path: string,
      options: RequestOptions = {},
    ): Promise<HttpResult> => {
      const result = await compute.request(method, path, options);
      bodies.push({ where: `the ${result.status} body of ${method} ${path}`, text: result.text });
      if (result.status !== expected) record.unexpectedStatus++;
      assert.equal(result.status, expected, `${method} ${path}: ${result.text}`);
      return result;
    };
    const configure = (expected: number, spec: JsonObject | string, options = {}) =>
      call(expected, "POST", "/configure", {
        body: typeof spec === "string"
          ? spec
          : { spec, compute_ctl_config: { jwks: { keys: [] } } },
        ...options,
      });
    /** What Postgres stores as `role`'s password: the spec's verifier, once applied. */
    const storedPassword = async (role: string) =>
      (await query<{ rolpassword: string | null }>(
        compute.postgresUrl,
        "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
        [role],
      ))[0]?.rolpassword;

    // The secrets are in use: the control plane got its token, the roles their passwords.
    assert.ok(
      cluster.controlPlane.requestLog(compute.id)
        .some((request) => request.authorization === `Bearer ${controlPlaneToken}`),
    );
    assert.equal(await storedPassword("carol"), carolScram.verifier);
    assert.equal(await storedPassword("bob"), `md5${md5Password(bobPassword, "bob")}`);

    const rotations = scaled(1, 5);
    for (let rotation = 0; rotation < rotations; rotation++) {
      bobPassword = randomSecret();
      const spec = { ...compute.spec, cluster: { ...compute.spec.cluster as JsonObject } };
      (spec.cluster as JsonObject).roles = roles(bobPassword);
      await configure(200, spec);
      assert.equal(await storedPassword("bob"), `md5${md5Password(bobPassword, "bob")}`);
    }

    // Requests that fail, each with a body that could quote what it was sent.
    await call(401, "GET", "/status", { token: forged });
    await call(401, "POST", "/configure", { token: `${compute.tokens.compute.slice(0, -2)}xx` });
    await configure(400, compute.spec, { token: null }); // no token at all: 400, as in Neon
    const safekeepers = compute.spec.safekeeper_connstrings as string[];
    await configure(400, {
      ...compute.spec,
      safekeeper_connstrings: [...safekeepers, safekeepers[0]],
    });
    await configure(422, {
      ...compute.spec,
      cluster: {
        ...compute.spec.cluster as JsonObject,
        roles: [{ name: "bob", encrypted_password: [bobPassword] }],
      },
    });
    const malformed = await configure(400, `{"spec": {"storage_auth_token": ${storageToken}}}`);
    // The parser's words depend on where the random token breaks the JSON; none quotes the body.
    assert.match(malformed.body.error, /^failed to parse the request body as json: [^"]*$/);
    await configure(400, {
      ...compute.spec,
      pageserver_connstring: `postgresql://no_user:${storageToken}@127.0.0.2:6400`,
      pageserver_connection_info: null,
    });
    await call(200, "POST", "/refresh_configuration", { internal: true });
    // The refresh goes on after its 200; /terminate refuses a compute in the middle of it (412).
    await compute.waitForStatus("running", 30_000);
    const reserved = { ...compute.spec, cluster: { ...compute.spec.cluster as JsonObject } };
    (reserved.cluster as JsonObject).roles = [
      ...roles(bobPassword),
      md5Role("pg_reserved", randomSecret(), secrets),
    ];
    await configure(422, reserved);

    await call(200, "POST", "/terminate", { token: compute.tokens.admin });
    assert.equal(await within(compute.exited, 30_000, "the manager exits"), 0);
    await compute.stop(); // already exited: only waits until compute.log has everything

    const log = await compute.readLog();
    // The haystack holds what could leak: Postgres logged the role statements, redacted.
    assert.match(log, /PG:.*LOG: {2}statement: ALTER ROLE "bob" .*PASSWORD '\[redacted\]'/);
    assert.match(log, /PG:.*LOG: {2}statement: CREATE ROLE "carol" .*PASSWORD '\[redacted\]'/);
    const searched = [...new Map(secrets.map((secret) => [secret.value, secret])).values()];
    const found = [
      ...leaks(searched, "compute.log", log),
      ...bodies.flatMap((body) => leaks(searched, body.where, body.text)),
    ];
    record.tried = searched.length;
    record.secretsLeaked += found.length;
    assert.deepEqual(found, [], `secrets leaked:\n${found.join("\n")}`);
  } finally {
    await recordFamily(record);
  }
});
