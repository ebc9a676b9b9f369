/**
 * TLS on a real compute (feature `tls_experimental` plus
 * `compute_ctl_config.tls`): the test makes its own CA and P-256 server
 * certificates (SAN `127.0.0.1` and `localhost`) with `openssl`, and clients
 * connect with full verification (libpq's `sslmode=verify-full` through
 * `psql`, node-postgres with the CA and server name). It shows the key pair
 * copied into PGDATA owner-only, each renewed certificate served after the
 * watcher's reconfiguration, and a key that does not match its certificate
 * keeping Postgres from starting (the log says why) until the files are fixed.
 */

import assert from "node:assert/strict";
import { TLSSocket } from "node:tls";
import pg from "pg";
import { type ComputeHandle, startCluster } from "../../harness/cluster.ts";
import { computeUser, pgFileOwner } from "../../harness/_processes.ts";
import { emptyRecord, recordFamily, scaled } from "../../harness/reliability/record.ts";
import { eventually, show } from "./_helpers.ts";
import { PSQL } from "../_support/psql.ts";

const SSL_OF_THIS_SESSION = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
/** How the manager logs the watcher's request; the rest of its reason follows. */
const REQUESTED = "Changing compute status from running to configuration-pending: TLS ";
/** How often the watcher hashes the certificate in these tests (the default is 60 s). */
const CHECK_INTERVAL_MS = 200;

/** A certificate and its key, as files the CA issued. */
interface Issued {
  certPath: string;
  keyPath: string;
  /** Upper-case hex, as clients report it. */
  serial: string;
}

/** A throw-away CA in a temporary directory the `postgres` user can read. */
interface TestCa extends AsyncDisposable {
  caPath: string;
  /** The paths `compute_ctl_config.tls` names; {@link TestCa.publish} fills them. */
  tls: { key_path: string; cert_path: string };
  /** A new P-256 key and a certificate for it, signed by the CA with serial `serial` (hex). */
  issue(name: string, serial: string): Promise<Issued>;
  /** Puts `key` then `cert` at the paths of {@link tls}, each by an atomic rename. */
  publish(files: { keyPath: string; certPath: string }): Promise<void>;
}

/** Runs `openssl` with `command` (words split on spaces) in `cwd`; throws with its stderr. */
async function openssl(command: string, cwd: string): Promise<void> {
  const args = command.split(" ");
  const result = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (result.code !== 0) {
    throw new Error(`openssl ${command}: ${new TextDecoder().decode(result.stderr)}`);
  }
}

async function makeCa(): Promise<TestCa> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "tls_test_" });
  const owner = await pgFileOwner();
  try {
    await Deno.chmod(dir, 0o755);
    await openssl("ecparam -name prime256v1 -genkey -noout -out ca.key", dir);
    await openssl("req -x509 -new -key ca.key -subj /CN=tls-test-ca -days 2 -out ca.crt", dir);
    await Deno.writeTextFile(`${dir}/san.cnf`, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  const tls = { key_path: `${dir}/tls.key`, cert_path: `${dir}/tls.crt` };
  /** Copies `from` to `to` through a rename, readable by the compute's user. */
  const place = async (from: string, to: string, mode: number) => {
    const next = `${to}.next`;
    await Deno.copyFile(from, next);
    await Deno.chmod(next, mode);
    if (owner) await Deno.chown(next, owner.uid, owner.gid);
    await Deno.rename(next, to);
  };
  return {
    caPath: `${dir}/ca.crt`,
    tls,
    async issue(name, serial) {
      await openssl(`ecparam -name prime256v1 -genkey -noout -out ${name}.key`, dir);
      await openssl(`req -new -key ${name}.key -subj /CN=localhost -out ${name}.csr`, dir);
      await openssl(
        `x509 -req -in ${name}.csr -CA ca.crt -CAkey ca.key -set_serial 0x${serial} -days 2 ` +
          `-extfile san.cnf -out ${name}.crt`,
        dir,
      );
      return { certPath: `${dir}/${name}.crt`, keyPath: `${dir}/${name}.key`, serial };
    },
    async publish({ keyPath, certPath }) {
      await place(keyPath, tls.key_path, 0o600);
      await place(certPath, tls.cert_path, 0o644);
    },
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Starts a cluster with one TLS compute serving the pair `ca.tls` names. */
function startTlsCluster(
  ca: TestCa,
  compute: { id: string; waitFor?: null; env?: Record<string, string> },
) {
  return startCluster({
    pageservers: 1,
    computes: [{
      ...compute,
      spec: { features: ["tls_experimental"] },
      computeCtlConfig: { tls: ca.tls },
      extraArgs: ["--tls-cert-check-interval-ms", String(CHECK_INTERVAL_MS)],
    }],
  });
}

/**
 * One node-postgres session verified like `sslmode=verify-full` (the CA, and
 * `localhost` as the name the certificate must carry): what `pg_stat_ssl`
 * says of it, and the serial of the certificate the server presented.
 */
async function verifiedSession(compute: ComputeHandle, ca: TestCa) {
  const client = new pg.Client({
    connectionString: compute.postgresUrl,
    ssl: { ca: await Deno.readTextFile(ca.caPath), servername: "localhost" },
  });
  client.on("error", () => {});
  await client.connect();
  try {
    const socket = client.connection.stream;
    assert.ok(socket instanceof TLSSocket, "node-postgres speaks TLS on this connection");
    const { rows } = await client.query<{ ssl: boolean }>(SSL_OF_THIS_SESSION);
    return { ssl: rows[0]?.ssl, serial: socket.getPeerCertificate().serialNumber.toUpperCase() };
  } finally {
    await client.end();
  }
}

/**
 * `psql` with `sslmode=verify-full` against `127.0.0.1` (the IP SAN) and
 * `rootCert`; HOME is the CA's directory, so no `~/.postgresql` of ours interferes.
 */
async function psqlVerifyFull(compute: ComputeHandle, rootCert: string) {
  const conninfo = `host=127.0.0.1 port=${compute.pgPort} user=cloud_admin dbname=postgres ` +
    `sslmode=verify-full sslrootcert=${rootCert} connect_timeout=10`;
  const result = await new Deno.Command(PSQL!, {
    args: ["-X", "-At", "-c", SSL_OF_THIS_SESSION, conninfo],
    clearEnv: true,
    env: { HOME: rootCert.slice(0, rootCert.lastIndexOf("/")), PATH: "/usr/bin:/bin" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    output: decoder.decode(result.stdout) + decoder.decode(result.stderr),
  };
}

/** Counts connection checks and the ones that failed, for the `tls` reliability family. */
function connectionTally(test: string) {
  const record = emptyRecord("tls", test, "connections checked");
  return {
    record,
    /** Runs one check; a failure is counted, then rethrown. */
    async check(run: () => Promise<void>): Promise<void> {
      record.tried++;
      try {
        await run();
      } catch (error) {
        record.unexpectedStatus++;
        throw error;
      }
    },
  };
}

/**
 * The checks every served certificate gets: both verified clients, and a
 * foreign CA refused. `ready` (the wait for the compute to install `issued`)
 * belongs to the first check: if it never comes, that connection check failed.
 */
async function checkServed(
  tally: ReturnType<typeof connectionTally>,
  compute: ComputeHandle,
  cas: { ca: TestCa; foreignCa: TestCa },
  issued: Issued,
  ready?: () => Promise<unknown>,
) {
  const { ca, foreignCa } = cas;
  await tally.check(async () => {
    await ready?.();
    // The reload is a signal: wait until the postmaster serves the new pair.
    let session: { ssl: boolean | undefined; serial: string } | undefined;
    await eventually(
      async () => (session = await verifiedSession(compute, ca)).serial === issued.serial,
      `a new connection sees certificate ${issued.serial}`,
    );
    assert.equal(session?.ssl, true, "pg_stat_ssl.ssl");
  });
  await tally.check(async () => {
    if (PSQL === undefined) return; // verifiedSession above made the same verify-full check
    const { code, output } = await psqlVerifyFull(compute, ca.caPath);
    assert.equal(code, 0, output);
    assert.equal(output.trim(), "t", "pg_stat_ssl.ssl over libpq verify-full");
  });
  await tally.check(async () => {
    if (PSQL === undefined) {
      await assert.rejects(verifiedSession(compute, foreignCa), /certificate/);
      return;
    }
    const { code, output } = await psqlVerifyFull(compute, foreignCa.caPath);
    assert.notEqual(code, 0, "a certificate from another CA must be refused");
    assert.match(output, /certificate verify failed/);
  });
}

Deno.test("TLS: verify-full connections, an owner-only key, renewed certificates served", async () => {
  const tally = connectionTally("verify-full and renewals");
  try {
    await using ca = await makeCa();
    await using foreignCa = await makeCa();
    const first = await ca.issue("first", "1001");
    await ca.publish(first);
    await using cluster = await startTlsCluster(ca, { id: "tls" });
    const compute = cluster.compute("tls");
    assert.equal(await show(compute.postgresUrl, "ssl"), "on");
    await checkServed(tally, compute, { ca, foreignCa }, first);
    // As in Neon, the watcher's first sight of `running` asks for one reconfiguration.
    await eventually(
      async () => (await compute.readLog()).includes(`${REQUESTED}certificate watcher started`),
      "the watcher's first reconfiguration request",
    );

    for (const name of ["server.key", "server.crt"]) {
      const info = await Deno.stat(`${compute.pgdata}/${name}`);
      assert.equal(info.mode! & 0o777, 0o600, `${name} mode`);
      assert.equal(info.uid, computeUser().uid, `${name} is owned by the compute's user`);
    }
    assert.equal(
      await Deno.readTextFile(`${compute.pgdata}/server.key`),
      await Deno.readTextFile(first.keyPath),
    );

    const renewals = scaled(2, 10);
    for (let renewal = 1; renewal <= renewals; renewal++) {
      const next = await ca.issue(
        `renewal${renewal}`,
        (0x1001 + renewal).toString(16).toUpperCase(),
      );
      await ca.publish(next);
      await checkServed(tally, compute, { ca, foreignCa }, next, async () => {
        const changes = (log: string) => log.split(`${REQUESTED}certificate changed`).length - 1;
        await eventually(
          async () => changes(await compute.readLog()) === renewal,
          "the watcher notices the renewal",
        );
        await eventually(
          async () => (await compute.readLog()).includes(`serialNumber=${next.serial}`),
          `the reconfiguration installs certificate ${next.serial}`,
        );
        await compute.waitForStatus("running");
      });
    }
  } finally {
    await recordFamily(tally.record);
  }
});

Deno.test("TLS: a key that does not match its certificate holds Postgres back until fixed", async () => {
  const tally = connectionTally("mismatched key pair");
  try {
    await using ca = await makeCa();
    await using foreignCa = await makeCa();
    const good = await ca.issue("good", "2001");
    const stray = await ca.issue("stray", "2002");
    await ca.publish({ keyPath: stray.keyPath, certPath: good.certPath });
    await using cluster = await startTlsCluster(ca, {
      id: "mismatch",
      waitFor: null,
      env: { COMPUTE_CTL_LOG_LEVEL: "debug" },
    });
    const compute = cluster.compute("mismatch");

    // The reason is logged, and the copy is tried again (Neon retries every second).
    await eventually(
      async () => /could not install the TLS key pair.*attempt=2/.test(await compute.readLog()),
      "a second attempt",
    );
    const log = await compute.readLog();
    assert.match(
      log,
      /could not install the TLS key pair.*error=private key file does not match certificate/,
    );
    assert.equal((await compute.status()).status, "init");
    assert.equal(await compute.postmasterPid(), undefined, "Postgres must not start");
    await assert.rejects(Deno.stat(`${compute.pgdata}/server.key`), Deno.errors.NotFound);

    await ca.publish(good); // the renewal completes: the key of the certificate arrives
    await checkServed(
      tally,
      compute,
      { ca, foreignCa },
      good,
      () => compute.waitForStatus("running"),
    );
  } finally {
    await recordFamily(tally.record);
  }
});
