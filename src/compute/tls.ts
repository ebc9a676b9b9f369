/**
 * @module
 * The TLS key pair Postgres serves: read from the paths in
 * `compute_ctl_config.tls`, checked (the private key must belong to the first
 * certificate of the chain, so a renewal caught halfway, new certificate and
 * old key, is never installed), and copied into PGDATA as `server.crt` and
 * `server.key`, readable by their owner only (Postgres refuses a key file that
 * others can read). Like Neon, a pair that cannot be read or does not match is
 * tried again every second until it can be installed.
 */

import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import { sleep as abortableSleep } from "../_async.ts";
import type { ComputeCtlConfig } from "../api/config.ts";
import type { ComputeSpec } from "../api/spec.ts";
import { errorMessage, getLogger } from "../log.ts";
import { SERVER_CRT, SERVER_KEY, servesTls } from "../postgres/conf.ts";
import { replaceFile } from "../postgres/files.ts";

const log = getLogger("tls");

/** The paths of `compute_ctl_config.tls`: the key and the certificate chain (PEM). */
export type TlsConfig = NonNullable<ComputeCtlConfig["tls"]>;

/** How long to wait before trying an unusable key pair again (reference: 1 s). */
export const KEY_PAIR_RETRY_MS = 1_000;

/** The mode of both files in PGDATA: owner read/write only. */
export const KEY_PAIR_FILE_MODE = 0o600;

const FIRST_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/;

/** A certificate chain and key that cannot be served together; the message says why. */
export class TlsKeyPairError extends Error {
  override name = "TlsKeyPairError";
}

/** What the logs say about an installed certificate. */
export interface CertificateSummary {
  subject: string;
  /** Upper-case hex, as `openssl x509 -serial` prints it. */
  serialNumber: string;
  fingerprint256: string;
  /** `ec`, `ed25519`, `rsa`, …: the type of the key the certificate names. */
  keyType: string;
}

/** A checked key pair, as read from the files. */
export interface KeyPair {
  /** The certificate chain (PEM), server certificate first. */
  cert: string;
  /** The private key (PEM). */
  key: string;
  certificate: CertificateSummary;
}

/**
 * `tls` when Postgres should serve TLS for `spec` (the spec has the
 * `tls_experimental` feature), else null.
 */
export function activeTls(spec: ComputeSpec, tls: TlsConfig | null | undefined): TlsConfig | null {
  return tls != null && servesTls(spec, true) ? tls : null;
}

/**
 * Checks that `keyPem` is the private key of the first certificate in
 * `certPem` and returns that certificate's summary. Any key type OpenSSL reads
 * is accepted (EC on any curve, Ed25519, RSA; SEC1, PKCS#1 or PKCS#8 PEM):
 * the public key derived from the private key must equal the certificate's.
 * Throws {@link TlsKeyPairError} naming what is wrong.
 */
export function verifyKeyPair(certPem: string, keyPem: string): CertificateSummary {
  const first = FIRST_CERTIFICATE.exec(certPem)?.[0];
  if (first === undefined) throw new TlsKeyPairError("no certificates found");
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(first);
  } catch (error) {
    throw new TlsKeyPairError(`decoding PEM encoded certificates: ${errorMessage(error)}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(keyPem);
  } catch (error) {
    throw new TlsKeyPairError(`parse key: ${errorMessage(error)}`);
  }
  const fromKey = spki(createPublicKey(privateKey));
  if (!fromKey.equals(spki(certificate.publicKey))) {
    throw new TlsKeyPairError("private key file does not match certificate");
  }
  return {
    subject: certificate.subject.replaceAll("\n", ", "),
    serialNumber: certificate.serialNumber.toUpperCase(),
    fingerprint256: certificate.fingerprint256,
    keyType: privateKey.asymmetricKeyType ?? "unknown",
  };
}

function spki(key: KeyObject): Buffer {
  return key.export({ type: "spki", format: "der" });
}

/** Reads the pair `tls` names and checks it ({@link verifyKeyPair}); throws when it cannot. */
export async function readKeyPair(tls: TlsConfig): Promise<KeyPair> {
  const key = await Deno.readTextFile(tls.key_path);
  const cert = await Deno.readTextFile(tls.cert_path);
  return { cert, key, certificate: verifyKeyPair(cert, key) };
}

/**
 * Writes `pair` into `pgdata` as `server.key` and `server.crt`, mode 0600,
 * each through a temporary file and a rename, so Postgres never reads half a
 * file. The key goes first, as in Neon.
 */
export async function installKeyPair(pgdata: string, pair: KeyPair): Promise<void> {
  await replaceFile(`${pgdata}/${SERVER_KEY}`, pair.key, KEY_PAIR_FILE_MODE);
  await replaceFile(`${pgdata}/${SERVER_CRT}`, pair.cert, KEY_PAIR_FILE_MODE);
}

/** Options of {@link installKeyPairWhenValid}. */
export interface InstallOptions {
  /** Stops the retries (the compute is terminating). */
  signal?: AbortSignal;
  /** Default {@link KEY_PAIR_RETRY_MS}. */
  retryMs?: number;
  /** Waits before the next attempt; `sleep` of `_async.ts` by default (tests replace it). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Reads, checks and installs the pair `tls` names into `pgdata`, trying again
 * every `retryMs` until it works (each new reason is logged as an error), and
 * returns the installed certificate's summary. Rejects only when `signal`
 * aborts.
 */
export async function installKeyPairWhenValid(
  tls: TlsConfig,
  pgdata: string,
  { signal, retryMs = KEY_PAIR_RETRY_MS, sleep = abortableSleep }: InstallOptions = {},
): Promise<CertificateSummary> {
  let lastReason: string | null = null;
  for (let attempt = 1;; attempt++) {
    signal?.throwIfAborted();
    try {
      const pair = await readKeyPair(tls);
      await installKeyPair(pgdata, pair);
      log.info("installed the TLS key pair into PGDATA", { ...pair.certificate, attempt });
      return pair.certificate;
    } catch (error) {
      const reason = errorMessage(error);
      const fields = { cert_path: tls.cert_path, key_path: tls.key_path, error: reason, attempt };
      const message = `could not install the TLS key pair; trying again every ${retryMs} ms`;
      if (reason !== lastReason) log.error(message, fields);
      else log.debug(message, fields);
      lastReason = reason;
    }
    await sleep(retryMs, signal);
  }
}
