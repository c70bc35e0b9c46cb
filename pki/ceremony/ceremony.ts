import { X509Certificate, createPublicKey, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AsnConvert } from "@peculiar/asn1-schema";
import { SubjectPublicKeyInfo } from "@peculiar/asn1-x509";
import { alreadyExists, invalid, notFound, RealmError } from "../../services/kernel/errors.js";
import {
  authorityKeyIdExt,
  basicConstraintsExt,
  buildCertificate,
  buildName,
  KeyUsageFlags,
  keyUsageExt,
  nameAttribute,
  nameConstraintsExt,
  parseCertificate,
  subjectKeyIdExt,
  wholeSeconds,
  type DnFields,
} from "../x509/cert.js";
import { buildCrl, REVOCATION_REASONS, type RevocationReason } from "../x509/crl.js";
import { parseCsr } from "../x509/csr.js";
import { fromPem, normalSerial, serialHex, sha256Hex, toPem } from "../x509/der.js";
import { generateKeyPair, keyIdentifier, signerFor, spkiDer } from "../x509/keys.js";
import { assertDnsName } from "../domain/names.js";
import { checkNewPassphrase, openKey, sealKey, type ScryptParams, type SealedKey } from "./bundle.js";
import { assertManifest, writeManifest } from "./manifest.js";

/**
 * The offline root ceremony. Everything here works on a directory and a passphrase only: no network, no
 * NATS. The directory holds the public outputs (root certificate, intermediates, CRL, register) and the
 * root key sealed with the passphrase; a manifest (SHA-256 per file, root manifest CID) covers it all and
 * is checked before every operation.
 */
export const Files = {
  rootCert: "root-ca.crt",
  rootKey: "root-ca.key.sealed.json",
  rootCrl: "root-ca.crl",
  register: "register.json",
  intermediates: "intermediates",
} as const;

export type RootAlgorithm = "ecdsa-p384" | "rsa-4096";

export interface IntermediateRecord {
  serial: string;
  subject: string;
  fingerprint: string;
  notBefore: string;
  notAfter: string;
  permittedDns: string[];
  file: string;
  revoked?: { at: string; reason: RevocationReason };
}

/** The ceremony's public register of what the root signed. */
export interface Register {
  format: "cim-realm/ceremony-register/v1";
  root: { serial: string; subject: string; fingerprint: string; notBefore: string; notAfter: string; algorithm: RootAlgorithm };
  crlNumber: number;
  intermediates: IntermediateRecord[];
}

export interface CeremonyOptions {
  dir: string;
  passphrase: string;
  now?: Date;
  /** Lower scrypt cost for tests only; the default is DEFAULT_SCRYPT. */
  scrypt?: ScryptParams;
}

const YEAR_MS = 365.25 * 24 * 3600 * 1000;
const DAY_MS = 24 * 3600 * 1000;
const randomSerial = () => {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x10;
  return b;
};
const fingerprintOf = (der: Uint8Array) => sha256Hex(der);

function readRegister(dir: string): Register {
  const p = join(dir, Files.register);
  if (!existsSync(p)) throw notFound(`${dir} is not a ceremony directory (no ${Files.register}); run realm ceremony init`);
  return JSON.parse(readFileSync(p, "utf8")) as Register;
}

/** Checks the manifest, opens the root key and checks it belongs to the root certificate. */
function openRoot(o: CeremonyOptions) {
  assertManifest(o.dir);
  const register = readRegister(o.dir);
  const rootPem = readFileSync(join(o.dir, Files.rootCert), "utf8");
  const rootDer = fromPem(rootPem, ["CERTIFICATE"], "the root certificate");
  const sealed = JSON.parse(readFileSync(join(o.dir, Files.rootKey), "utf8")) as SealedKey;
  const key = openKey(sealed, o.passphrase);
  if (!new X509Certificate(rootDer).checkPrivateKey(key)) throw new RealmError("INTEGRITY", "the sealed root key does not belong to root-ca.crt");
  const rootCert = parseCertificate(rootDer);
  return { register, rootDer, rootCert, signer: signerFor(key), keyId: keyIdentifier(spkiDer(createPublicKey(key))) };
}

export interface InitResult {
  rootPem: string;
  fingerprint: string;
  serial: string;
  notAfter: string;
  manifestCid: string;
}

/** Makes the root CA: key (ECDSA P-384 or RSA-4096), self-signed certificate (pathlen 1, keyCertSign+cRLSign, 20 years), sealed key, empty CRL, manifest. */
export async function initCeremony(o: CeremonyOptions & { subject: DnFields; algorithm?: RootAlgorithm; years?: number; progress?: (line: string) => void }): Promise<InitResult> {
  const say = o.progress ?? (() => undefined);
  // Every input first: nothing is generated for a ceremony that would be refused.
  checkNewPassphrase(o.passphrase);
  if (existsSync(join(o.dir, Files.rootCert)) || existsSync(join(o.dir, Files.rootKey))) throw alreadyExists(`${o.dir} already holds a root CA`);
  if (!o.subject.CN) throw invalid("the root needs a common name");
  const algorithm = o.algorithm ?? "ecdsa-p384";
  if (algorithm !== "ecdsa-p384" && algorithm !== "rsa-4096") throw invalid(`root algorithm must be ecdsa-p384 or rsa-4096, not ${String(algorithm)}`);
  const years = o.years ?? 20;
  if (!(years >= 1 && years <= 30)) throw invalid("root validity must be 1..30 years");
  const now = wholeSeconds(o.now ?? new Date());
  say(`generating the root key (${algorithm}) ...`);
  const { privateKey, publicKey } = await generateKeyPair(algorithm);
  const spki = spkiDer(publicKey);
  const name = buildName(o.subject);
  const serial = randomSerial();
  const notAfter = wholeSeconds(new Date(now.getTime() + years * YEAR_MS));
  const signer = signerFor(privateKey);
  const der = buildCertificate({
    serial,
    issuer: name,
    subject: name,
    spki: AsnConvert.parse(spki, SubjectPublicKeyInfo),
    notBefore: now,
    notAfter,
    extensions: [basicConstraintsExt(true, 1), keyUsageExt(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign), subjectKeyIdExt(spki)],
    signer,
  });
  say("sealing the root key with the passphrase (scrypt, AES-256-GCM) ...");
  const sealed = sealKey(privateKey, o.passphrase, sha256Hex(spki), o.scrypt);
  mkdirSync(join(o.dir, Files.intermediates), { recursive: true, mode: 0o700 });
  const rootPem = toPem(der, "CERTIFICATE");
  const fingerprint = fingerprintOf(der);
  const register: Register = {
    format: "cim-realm/ceremony-register/v1",
    root: { serial: serialHex(serial), subject: new X509Certificate(der).subject.replace(/\n/g, ","), fingerprint, notBefore: now.toISOString(), notAfter: notAfter.toISOString(), algorithm },
    crlNumber: 1,
    intermediates: [],
  };
  writeFileSync(join(o.dir, Files.rootCert), rootPem);
  writeFileSync(join(o.dir, Files.rootKey), JSON.stringify(sealed, null, 2) + "\n", { mode: 0o600 });
  writeFileSync(join(o.dir, Files.rootCrl), buildCrl({ issuer: name, issuerKeyId: keyIdentifier(spki), signer, thisUpdate: now, nextUpdate: new Date(now.getTime() + 90 * DAY_MS), crlNumber: 1, entries: [] }));
  writeFileSync(join(o.dir, Files.register), JSON.stringify(register, null, 2) + "\n");
  const manifestCid = writeManifest(o.dir, fingerprint, now);
  say(`root CA ready: fingerprint ${fingerprint}, manifest ${manifestCid}`);
  return { rootPem, fingerprint, serial: register.root.serial, notAfter: register.root.notAfter, manifestCid };
}

export interface SignedIntermediate {
  certPem: string;
  rootPem: string;
  serial: string;
  subject: string;
  fingerprint: string;
  notAfter: string;
  permittedDns: string[];
  manifestCid: string;
}

/**
 * Signs an intermediate CSR: CA pathlen 0, keyCertSign+cRLSign, DNS name constraints (permitted
 * subtrees, at least one), 3 years by default and never past the root.
 */
export function signIntermediate(o: CeremonyOptions & { csrPem: string; permittedDns: string[]; years?: number }): SignedIntermediate {
  const csr = parseCsr(o.csrPem);
  if (csr.key.kind !== "ec" && csr.key.kind !== "rsa") throw invalid("an intermediate key must be ECDSA or RSA");
  const permitted = [...new Set(o.permittedDns.map((d) => d.trim().toLowerCase().replace(/\.$/, "")))];
  if (permitted.length === 0) throw invalid("an intermediate needs name constraints: give at least one permitted DNS domain");
  for (const d of permitted) assertDnsName(d, false);
  const cn = csr.commonName;
  if (!cn) throw invalid("the intermediate CSR has no common name");
  const years = o.years ?? 3;
  if (!(years > 0 && years <= 10)) throw invalid("intermediate validity must be up to 10 years");
  const root = openRoot(o);
  const now = wholeSeconds(o.now ?? new Date());
  const rootNotAfter = new Date(root.register.root.notAfter);
  const notAfter = wholeSeconds(new Date(Math.min(now.getTime() + years * YEAR_MS, rootNotAfter.getTime())));
  const serial = randomSerial();
  const subject = buildName({ CN: cn, ...optional("O", nameAttribute(csr.subject, "O")), ...optional("OU", nameAttribute(csr.subject, "OU")) });
  const der = buildCertificate({
    serial,
    issuer: root.rootCert.tbsCertificate.subject,
    subject,
    spki: csr.spki,
    notBefore: now,
    notAfter,
    extensions: [
      basicConstraintsExt(true, 0),
      keyUsageExt(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign),
      subjectKeyIdExt(csr.spkiDer),
      authorityKeyIdExt(root.keyId),
      nameConstraintsExt(permitted),
    ],
    signer: root.signer,
  });
  const certPem = toPem(der, "CERTIFICATE");
  const rec: IntermediateRecord = {
    serial: serialHex(serial),
    subject: new X509Certificate(der).subject.replace(/\n/g, ","),
    fingerprint: fingerprintOf(der),
    notBefore: now.toISOString(),
    notAfter: notAfter.toISOString(),
    permittedDns: permitted,
    file: `${Files.intermediates}/${serialHex(serial)}.crt`,
  };
  writeFileSync(join(o.dir, rec.file), certPem);
  root.register.intermediates.push(rec);
  writeFileSync(join(o.dir, Files.register), JSON.stringify(root.register, null, 2) + "\n");
  const manifestCid = writeManifest(o.dir, root.register.root.fingerprint, now);
  return { certPem, rootPem: toPem(root.rootDer, "CERTIFICATE"), serial: rec.serial, subject: rec.subject, fingerprint: rec.fingerprint, notAfter: rec.notAfter, permittedDns: permitted, manifestCid };
}

function optional<K extends string>(k: K, v: string | undefined): Partial<Record<K, string>> {
  return v ? ({ [k]: v } as Record<K, string>) : {};
}

export interface CrlResult {
  crlDer: Buffer;
  crlNumber: number;
  revoked: string[];
  nextUpdate: string;
  manifestCid: string;
}

/** Issues a new root CRL listing every revoked intermediate (next update in `days`, default 30). */
export function issueRootCrl(o: CeremonyOptions & { days?: number }): CrlResult {
  const root = openRoot(o);
  return writeCrl(o, root, o.days ?? 30);
}

function writeCrl(o: CeremonyOptions, root: ReturnType<typeof openRoot>, days: number): CrlResult {
  if (!(days >= 1 && days <= 366)) throw invalid("CRL next update must be 1..366 days ahead");
  const now = wholeSeconds(o.now ?? new Date());
  const crlNumber = root.register.crlNumber + 1;
  const entries = root.register.intermediates.filter((i) => i.revoked).map((i) => ({ serial: i.serial, revokedAt: new Date(i.revoked!.at), reason: i.revoked!.reason }));
  const nextUpdate = new Date(now.getTime() + days * DAY_MS);
  const crlDer = buildCrl({ issuer: root.rootCert.tbsCertificate.subject, issuerKeyId: root.keyId, signer: root.signer, thisUpdate: now, nextUpdate, crlNumber, entries });
  root.register.crlNumber = crlNumber;
  writeFileSync(join(o.dir, Files.rootCrl), crlDer);
  writeFileSync(join(o.dir, Files.register), JSON.stringify(root.register, null, 2) + "\n");
  const manifestCid = writeManifest(o.dir, root.register.root.fingerprint, now);
  return { crlDer, crlNumber, revoked: entries.map((e) => e.serial), nextUpdate: nextUpdate.toISOString(), manifestCid };
}

/** Revokes an intermediate the root signed and issues the new root CRL at once. */
export function revokeIntermediate(o: CeremonyOptions & { serial: string; reason?: RevocationReason; days?: number }): CrlResult {
  const reason = o.reason ?? "unspecified";
  if (!(reason in REVOCATION_REASONS)) throw invalid(`unknown revocation reason ${reason}`);
  const serial = normalSerial(o.serial);
  const root = openRoot(o);
  const rec = root.register.intermediates.find((i) => i.serial === serial);
  if (!rec) throw notFound(`the root signed no intermediate with serial ${serial}`);
  if (rec.revoked) throw alreadyExists(`intermediate ${serial} is already revoked`);
  rec.revoked = { at: wholeSeconds(o.now ?? new Date()).toISOString(), reason };
  return writeCrl(o, root, o.days ?? 30);
}

/** The register and root certificate (public; no passphrase needed). */
export function readCeremony(dir: string): { register: Register; rootPem: string; manifestCid: string } {
  const manifestCid = assertManifest(dir);
  return { register: readRegister(dir), rootPem: readFileSync(join(dir, Files.rootCert), "utf8"), manifestCid };
}
