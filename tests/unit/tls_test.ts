/**
 * `src/compute/tls.ts` and `src/compute/tls_watcher.ts` without Postgres: the
 * key/certificate check (the first certificate of the chain must own the key;
 * EC, Ed25519 and RSA keys in any PEM encoding), the owner-only copy into
 * PGDATA, the retry until a mismatched pair is fixed, and the watcher's status
 * requests (first `running`, each change of the certificate, none after a
 * failure or termination). The PEM texts were made with `openssl` for these
 * tests only.
 */

import assert from "node:assert/strict";
import { ComputeState } from "../../src/compute/state.ts";
import {
  activeTls,
  installKeyPair,
  installKeyPairWhenValid,
  KEY_PAIR_FILE_MODE,
  readKeyPair,
  type TlsConfig,
  TlsKeyPairError,
  verifyKeyPair,
} from "../../src/compute/tls.ts";
import {
  createTlsCertWatcher,
  fileDigest,
  startTlsCertWatcher,
} from "../../src/compute/tls_watcher.ts";
import { testParsedSpec } from "../_support/specs.ts";

/** A temporary directory removed on dispose. */
async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "tls_unit_" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/** Writes `cert` and `key` into `dir` and returns the TLS config naming them. */
async function sourcePair(dir: string, cert: string, key: string): Promise<TlsConfig> {
  const tls = { cert_path: `${dir}/tls.crt`, key_path: `${dir}/tls.key` };
  await Deno.writeTextFile(tls.cert_path, cert);
  await Deno.writeTextFile(tls.key_path, key);
  return tls;
}

function fileMode(path: string): number {
  return Deno.statSync(path).mode! & 0o777;
}

/** Rejects with `message` when `promise` has not settled within 10 s. */
function within<T>(promise: Promise<T>, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${message}`)), 10_000);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

Deno.test("verifyKeyPair: the server certificate of a chain and its key, SEC1 or PKCS#8", () => {
  const chain = SERVER_CERT + CA_CERT;
  for (const key of [SERVER_KEY_SEC1, SERVER_KEY_PKCS8]) {
    const summary = verifyKeyPair(chain, key);
    assert.equal(summary.serialNumber, "1A2B");
    assert.equal(summary.keyType, "ec");
    assert.match(summary.subject, /CN=localhost/);
    assert.match(summary.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  }
});

Deno.test("verifyKeyPair: Ed25519 and RSA pairs are accepted too", () => {
  assert.equal(verifyKeyPair(ED25519_CERT, ED25519_KEY).keyType, "ed25519");
  assert.equal(verifyKeyPair(RSA_CERT, RSA_KEY).keyType, "rsa");
});

Deno.test("verifyKeyPair: a key of another certificate, or a chain not led by the server's", () => {
  const mismatch = {
    name: "TlsKeyPairError",
    message: "private key file does not match certificate",
  };
  assert.throws(() => verifyKeyPair(SERVER_CERT + CA_CERT, OTHER_KEY), mismatch);
  assert.throws(() => verifyKeyPair(CA_CERT + SERVER_CERT, SERVER_KEY_SEC1), mismatch);
  assert.throws(() => verifyKeyPair(ED25519_CERT, SERVER_KEY_SEC1), mismatch);
  assert.throws(() => verifyKeyPair(SERVER_CERT, RSA_KEY), mismatch);
});

Deno.test("verifyKeyPair: unreadable input names what is wrong", () => {
  assert.throws(
    () => verifyKeyPair("", SERVER_KEY_SEC1),
    /^TlsKeyPairError: no certificates found$/,
  );
  assert.throws(
    () => verifyKeyPair(SERVER_CERT.replace(/MIIB/, "AAAA"), SERVER_KEY_SEC1),
    (error) => error instanceof TlsKeyPairError && /^decoding PEM/.test(error.message),
  );
  assert.throws(
    () => verifyKeyPair(SERVER_CERT, "not a key"),
    (error) => error instanceof TlsKeyPairError && /^parse key: /.test(error.message),
  );
});

Deno.test("activeTls: only with compute_ctl_config.tls and the tls_experimental feature", () => {
  const tls = { key_path: "/k", cert_path: "/c" };
  const withFeature = testParsedSpec({ features: ["tls_experimental"] }).spec;
  assert.equal(activeTls(withFeature, tls), tls);
  assert.equal(activeTls(withFeature, null), null);
  assert.equal(activeTls(withFeature, undefined), null);
  assert.equal(activeTls(testParsedSpec().spec, tls), null);
});

Deno.test("installKeyPair: server.key and server.crt, mode 0600 even over wider files", async () => {
  await using source = await tempDir();
  await using pgdata = await tempDir();
  await Deno.writeTextFile(`${pgdata.path}/server.key`, "old", { mode: 0o644 });
  await Deno.chmod(`${pgdata.path}/server.key`, 0o644);
  const pair = await readKeyPair(await sourcePair(source.path, SERVER_CERT, SERVER_KEY_SEC1));
  await installKeyPair(pgdata.path, pair);
  for (const [name, text] of [["server.key", SERVER_KEY_SEC1], ["server.crt", SERVER_CERT]]) {
    assert.equal(await Deno.readTextFile(`${pgdata.path}/${name}`), text);
    assert.equal(fileMode(`${pgdata.path}/${name}`), KEY_PAIR_FILE_MODE, name);
  }
  assert.equal(KEY_PAIR_FILE_MODE, 0o600);
  const left = [...Deno.readDirSync(pgdata.path)].map((entry) => entry.name).sort();
  assert.deepEqual(left, ["server.crt", "server.key"], "no temporary file left behind");
});

Deno.test("installKeyPairWhenValid: a mismatched pair is retried, never installed", async () => {
  await using source = await tempDir();
  await using pgdata = await tempDir();
  const tls = await sourcePair(source.path, SERVER_CERT, OTHER_KEY);
  const waits: number[] = [];
  const installed = await installKeyPairWhenValid(tls, pgdata.path, {
    retryMs: 1_000,
    sleep: async (ms) => {
      waits.push(ms);
      assert.deepEqual([...Deno.readDirSync(pgdata.path)], [], "nothing installed yet");
      await Deno.writeTextFile(tls.key_path, SERVER_KEY_SEC1); // the renewal completes
    },
  });
  assert.deepEqual(waits, [1_000], "one failed attempt, one wait of retryMs");
  assert.equal(installed.serialNumber, "1A2B");
  assert.equal(await Deno.readTextFile(`${pgdata.path}/server.key`), SERVER_KEY_SEC1);
});

Deno.test("installKeyPairWhenValid: an abort ends the retries", async () => {
  await using pgdata = await tempDir();
  const abort = new AbortController();
  const tls = { cert_path: `${pgdata.path}/missing.crt`, key_path: `${pgdata.path}/missing.key` };
  let attempts = 0;
  const installing = installKeyPairWhenValid(tls, pgdata.path, {
    signal: abort.signal,
    sleep: (_ms, signal) => {
      attempts++;
      abort.abort(new Error("terminating"));
      return Promise.reject(signal?.reason);
    },
  });
  await assert.rejects(installing, /terminating/);
  assert.equal(attempts, 1);
});

Deno.test("fileDigest: SHA-256 in hex", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/abc`, "abc");
  assert.equal(
    await fileDigest(`${dir.path}/abc`),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

/** A watcher on `certPath` for a compute in `init`, hashing every 5 ms; stopped through `stop`. */
function watchQuickly(certPath: string) {
  const state = new ComputeState();
  state.transition("init");
  const stop = new AbortController();
  const watcher = startTlsCertWatcher({
    certPath,
    state,
    signal: stop.signal,
    intervalMs: 5,
    retryMs: 5,
  });
  return { state, stop, watcher };
}

Deno.test("watcher: ready once readable; first running and each change ask to reconfigure", async () => {
  await using dir = await tempDir();
  const certPath = `${dir.path}/tls.crt`;
  const { state, stop, watcher } = watchQuickly(certPath);
  try {
    await Deno.writeTextFile(certPath, SERVER_CERT);
    await within(watcher.ready, "the watcher reads the certificate once it exists");
    assert.equal(state.status, "init", "no request before the compute runs");

    const requests: string[] = [];
    const configure = async (what: string) => {
      await within(state.waitForStatus(["configuration_pending"]), what);
      requests.push(what);
      state.transition("configuration"); // what the configurator does
      state.transition("running");
    };
    state.transition("running", "started");
    await configure("first running");
    await Deno.writeTextFile(certPath, ED25519_CERT);
    await configure("renewed certificate");
    await Deno.writeTextFile(certPath, SERVER_CERT);
    await configure("renewed again");
    assert.deepEqual(requests, ["first running", "renewed certificate", "renewed again"]);

    state.transition("termination_pending_fast");
    await within(watcher.stopped, "the watcher ends once the compute terminates");
    assert.equal(stop.signal.aborted, false, "it ended by itself");
  } finally {
    stop.abort();
    await watcher.stopped;
  }
});

Deno.test("watcher: it outlives a failed reconfiguration and ends with the compute's signal", async () => {
  await using dir = await tempDir();
  const certPath = `${dir.path}/tls.crt`;
  await Deno.writeTextFile(certPath, SERVER_CERT);
  const { state, stop, watcher } = watchQuickly(certPath);
  try {
    await within(watcher.ready, "ready");
    state.transition("running", "started");
    await within(state.waitForStatus(["configuration_pending"]), "first running asks");
    state.transition("configuration");
    state.transition("failed", "the reconfiguration failed");
    // A later /configure brings the compute back; a renewal is then still noticed.
    state.transition("configuration_pending");
    state.transition("configuration");
    state.transition("running");
    await Deno.writeTextFile(certPath, ED25519_CERT);
    await within(state.waitForStatus(["configuration_pending"]), "the renewal after recovery");
    stop.abort(new Error("postgres exited"));
    await within(watcher.stopped, "the watcher ends with the compute's signal");
  } finally {
    stop.abort();
    await watcher.stopped;
  }
});

Deno.test("watcher: an abort while the certificate is unreadable rejects ready", async () => {
  await using dir = await tempDir();
  const stop = new AbortController();
  const watcher = startTlsCertWatcher({
    certPath: `${dir.path}/never.crt`,
    state: new ComputeState(),
    signal: stop.signal,
    retryMs: 5,
  });
  stop.abort(new Error("postgres exited"));
  await assert.rejects(watcher.ready, /postgres exited/);
  await watcher.stopped;
});

Deno.test("watcher service: nothing to watch without TLS; stop ends it; no start after stop", async () => {
  await using dir = await tempDir();
  const tls = await sourcePair(dir.path, SERVER_CERT, SERVER_KEY_SEC1);
  const state = new ComputeState();
  state.transition("init");
  const service = createTlsCertWatcher({ state, settings: { tlsCertCheckIntervalMs: 5 } });
  const compute = new AbortController();
  await service.start(null, compute.signal);
  await within(service.start(tls, compute.signal), "ready");
  await assert.rejects(service.start(tls, compute.signal), /already running/);
  await within(service.stop(), "stop ends the watcher");
  await assert.rejects(service.start(tls, compute.signal), /shutting down/);
  assert.equal(state.status, "init");
});

/** The server certificate (P-256, serial 1A2B), signed by {@link CA_CERT} with ecdsa-with-SHA256. */
const SERVER_CERT = `-----BEGIN CERTIFICATE-----
MIIBETCBtwICGiswCgYIKoZIzj0EAwIwEjEQMA4GA1UEAwwHdW5pdC1jYTAgFw0y
NjExMjcxNDQxMjZaGA8yMTI2MTEwMzE0NDEyNlowFDESMBAGA1UEAwwJbG9jYWxo
b3N0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJIJhZHwV4nmHIlMCMP7A28KL
sXZdyH9+tRwRI+nwOOjsp/fZW09z3oIlcayr9xPNSsGXDUOHdrG8GqkKSewuUjAK
BggqhkjOPQQDAgNJADBGAiEAxcaxrC7aj5ows/NRJh3JD6aJaylmIN1iQE2i+BRo
MY8CIQCDKNW6MBWkwB5ZtqrvGTNAZ589VrmEY7ziB8uRcDhLeg==
-----END CERTIFICATE-----
`;

/** The CA that signed {@link SERVER_CERT}. */
const CA_CERT = `-----BEGIN CERTIFICATE-----
MIIBezCCASGgAwIBAgIUdE8+HUSyCKq8PD3cIC78x1iCIb4wCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHdW5pdC1jYTAgFw0yNjExMjcxNDQxMjZaGA8yMTI2MTEwMzE0
NDEyNlowEjEQMA4GA1UEAwwHdW5pdC1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABDzqZA17cRfScLw9GJANb/+wbEq29qeFKTuxNR+Itk0BaL1/Jbxsw9VFEFMc
Na5jjAXecKIY56NFn9RAOYHSlf+jUzBRMB0GA1UdDgQWBBSgeMzod8muRAopfTUA
+TqDawgB5DAfBgNVHSMEGDAWgBSgeMzod8muRAopfTUA+TqDawgB5DAPBgNVHRMB
Af8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCICvIzNkL4b425OtedueQB4MU85sC
5Fx0HZJugVYO7i+sAiEAufOOeezeBVbgMCChDZOr1E1hDVL3VZcPaRx1zp9XV7Y=
-----END CERTIFICATE-----
`;

/** The key of {@link SERVER_CERT}, SEC1 (`EC PRIVATE KEY`) as Neon requires. */
const SERVER_KEY_SEC1 = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIGfrf6fF9WATeVwdh1LQPkhSpwiY6u3KvFt7O6lMAKrkoAoGCCqGSM49
AwEHoUQDQgAEJIJhZHwV4nmHIlMCMP7A28KLsXZdyH9+tRwRI+nwOOjsp/fZW09z
3oIlcayr9xPNSsGXDUOHdrG8GqkKSewuUg==
-----END EC PRIVATE KEY-----
`;

/** The same key as PKCS#8. */
const SERVER_KEY_PKCS8 = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZ+t/p8X1YBN5XB2H
UtA+SFKnCJjq7cq8W3s7qUwAquShRANCAAQkgmFkfBXieYciUwIw/sDbwouxdl3I
f361HBEj6fA46Oyn99lbT3PegiVxrKv3E81KwZcNQ4d2sbwaqQpJ7C5S
-----END PRIVATE KEY-----
`;

/** A P-256 key that belongs to no certificate here. */
const OTHER_KEY = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIFOtBKC1LWBrWd3uWNlLbI0ednKpGRE/H6Z5hNjiTiftoAoGCCqGSM49
AwEHoUQDQgAE/uv8uVPkLpX1lQ1SaFIOVdCtgH1UZhBNHanVrJCLhuaokBYsArRu
Xj5ro/iQ/shutWxP4kE6bUXHema5456XPA==
-----END EC PRIVATE KEY-----
`;

/** A self-signed Ed25519 certificate (serial 07). */
const ED25519_CERT = `-----BEGIN CERTIFICATE-----
MIIBHTCB0KADAgECAgEHMAUGAytlcDANMQswCQYDVQQDDAJlZDAgFw0yNjExMjcx
NDQxMjZaGA8yMTI2MTEwMzE0NDEyNlowDTELMAkGA1UEAwwCZWQwKjAFBgMrZXAD
IQASsrYd/wuZGcUnekJhgEOAINPqqsHreia0S5Ok4Qh3e6NTMFEwHQYDVR0OBBYE
FGK6rUrLFFVN0quHu740zRiwC7fWMB8GA1UdIwQYMBaAFGK6rUrLFFVN0quHu740
zRiwC7fWMA8GA1UdEwEB/wQFMAMBAf8wBQYDK2VwA0EA0HJfiPZsX04JKVG201J4
uFgMhT7LT3XsPD4rHgzMGSnb24hQtJobUAadZDRS9p0WavCDVX07xqMJXuJP7Np8
AA==
-----END CERTIFICATE-----
`;

/** Its key. */
const ED25519_KEY = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIEzkB8vAgVak4kdzA1TVmrAsRVGC+EycV8n5MH0Z8ykK
-----END PRIVATE KEY-----
`;

/** A self-signed RSA certificate (serial 08). */
const RSA_CERT = `-----BEGIN CERTIFICATE-----
MIIB5zCCAVCgAwIBAgIBCDANBgkqhkiG9w0BAQsFADAOMQwwCgYDVQQDDANyc2Ew
IBcNMjYxMTI3MTQ0MTI2WhgPMjEyNjExMDMxNDQxMjZaMA4xDDAKBgNVBAMMA3Jz
YTCBnzANBgkqhkiG9w0BAQEFAAOBjQAwgYkCgYEA9drjU0+HBSfeaFteXvLg3nji
NEqqM7+xB9d7/f3JopHGV0qmnrOAuBBxIzopLdudU23hyTNZ09gKLogN70vutrAI
9GcIygGAyEtQWIOcH/oqmSDYwQdkGDnEAJ+FdziKL3rCDoOitCrf5zvFXCNCXFDS
yEqsTTSVKFcfTdx8+vkCAwEAAaNTMFEwHQYDVR0OBBYEFLI4ti0LqVMiPu10kwI+
uj4NOD8rMB8GA1UdIwQYMBaAFLI4ti0LqVMiPu10kwI+uj4NOD8rMA8GA1UdEwEB
/wQFMAMBAf8wDQYJKoZIhvcNAQELBQADgYEAlFHMGL6g0zMWwP7I2a4H5qSV+0fn
J1+zNVgtWxBjPkKIwwfbBxQTCah8PdHq5prFXJd9uVieuBSdGL2NQ4jYyG2+nkeW
SaO6+hXFwP9Q3JZ78OZzfYCXMD33uBHWmGIGLkBbAK/zNRSIupoWx2sdRC7ZA3Gw
NUIZjn3V6WdTTs8=
-----END CERTIFICATE-----
`;

/** Its key, PKCS#1 (`RSA PRIVATE KEY`). */
const RSA_KEY = `-----BEGIN RSA PRIVATE KEY-----
MIICXQIBAAKBgQD12uNTT4cFJ95oW15e8uDeeOI0Sqozv7EH13v9/cmikcZXSqae
s4C4EHEjOikt251TbeHJM1nT2AouiA3vS+62sAj0ZwjKAYDIS1BYg5wf+iqZINjB
B2QYOcQAn4V3OIovesIOg6K0Kt/nO8VcI0JcUNLISqxNNJUoVx9N3Hz6+QIDAQAB
AoGAfaYuxCdC5DmqCz+XDYOntUumn/8A2Y3Aljdk4TxRTsqdyYMXgMhQosGUcOKK
pSs2Tqs7165s3D3vhjR2mrP9/VOuHSdE6f6nActtiC3e+Hu6GGx84qQwRDE2ZcQ5
5u4VIW1FieGMbvmbogMeQf2N//muSu6PTmT6335lDfX/VRkCQQD8RJqV6278qhjm
89VX4t2jfPNRGSYmPYkw85HnW6M5vBRTdNHDSsOdpyowMysbp06bMQ88DwW3HXBJ
Vn0xbDmjAkEA+X3/MGDlaMXd48NBNwLvvcPL4qHhOAvhlaR9/FPfNzIkvCcLE+lS
50ydE2VFl1u51f2mboyryA4h+nVVc9N6swJAVfsH+SsaU/GhtS3MPD0tr6hJwg1h
TE1S8iVCSGmaU3ZAM0WwrPBRhe1Q2sbF3ZIDn69z8tNn7kaRW92no+2wIwJBAMd4
OgfG4IOk9uN7n29JFL4mhaLbhAJYVXJbwjJ0KBmsKHyZxpyTximRMmBobnw15N02
39Kw+0KGMhpZpwlkwksCQQCg+EVlF+JtcVCKgJqYonTko18HMwQY9o4P9/hnZN0V
Lmp1FwiJvf65ln9yxGfraDZRgyAEnNs1IdToU2NKr+RT
-----END RSA PRIVATE KEY-----
`;
