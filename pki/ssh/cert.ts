import type { KeyObject } from "node:crypto";
import { invalid } from "../../services/kernel/errors.js";
import { readSshPublicKeyBlob, sshSign, sshVerify, type SshPublicKey } from "./keys.js";
import { SshReader, SshWriter } from "./wire.js";

/** OpenSSH certificates (PROTOCOL.certkeys, the `*-cert-v01@openssh.com` key types). */
export type SshCertKind = "user" | "host";
const CERT_TYPE = { user: 1, host: 2 } as const;
const CERT_SUFFIX = "-cert-v01@openssh.com";

/** What a certificate says, as the realm decided it. */
export interface SshCertificateBody {
  kind: SshCertKind;
  /** The key being certified. */
  subject: SshPublicKey;
  serial: bigint;
  keyId: string;
  principals: string[];
  /** Seconds since the epoch (the certificate's own unit). */
  validAfter: number;
  validBefore: number;
  /** `force-command`, `source-address`, ... and their values (user certificates only). */
  criticalOptions: Record<string, string>;
  /** `permit-pty`, ... (flag extensions, no data; user certificates only). */
  extensions: string[];
  /** 16 or 32 random bytes: makes the signed data unpredictable (hash-collision defence). */
  nonce: Buffer;
}

/** Name/data pairs sorted by name, each data field a string holding a string (or empty for flags). */
function options(entries: [string, string | undefined][]): Buffer {
  const w = new SshWriter();
  for (const [name, value] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    w.string(name).string(value === undefined ? Buffer.alloc(0) : new SshWriter().string(value).bytes());
  }
  return w.bytes();
}

/** The certificate blob: every field of PROTOCOL.certkeys in order, signed by the CA key over all but the signature. */
export function encodeSshCertificate(body: SshCertificateBody, caKey: KeyObject, caKeyBlob: Buffer): Buffer {
  const subjectFields = body.subject.blob.subarray(4 + body.subject.type.length);
  const w = new SshWriter()
    .string(body.subject.type + CERT_SUFFIX)
    .string(body.nonce)
    .raw(subjectFields)
    .uint64(body.serial)
    .uint32(CERT_TYPE[body.kind])
    .string(body.keyId);
  const principals = new SshWriter();
  for (const p of body.principals) principals.string(p);
  w.string(principals.bytes())
    .uint64(BigInt(body.validAfter))
    .uint64(BigInt(body.validBefore))
    .string(options(Object.entries(body.criticalOptions)))
    .string(options(body.extensions.map((e) => [e, undefined])))
    .string(Buffer.alloc(0))
    .string(caKeyBlob);
  const signed = w.bytes();
  return Buffer.concat([signed, new SshWriter().string(sshSign(caKey, signed)).bytes()]);
}

/** `<cert type> <base64> <comment>`: the `-cert.pub` file ssh and sshd read. */
export const sshCertificateLine = (blob: Buffer, comment?: string): string => `${new SshReader(blob, "certificate").text()} ${blob.toString("base64")}${comment ? ` ${comment}` : ""}\n`;

export interface ReadSshCertificate extends Omit<SshCertificateBody, "subject" | "criticalOptions" | "extensions"> {
  type: string;
  subjectBlob: Buffer;
  criticalOptions: Record<string, string>;
  extensions: Record<string, string>;
  caKeyBlob: Buffer;
  signatureValid: boolean;
}

function readOptions(data: Buffer, what: string): Record<string, string> {
  const r = new SshReader(data, what);
  const out: Record<string, string> = {};
  while (!r.done) {
    const name = r.text();
    const value = r.string();
    out[name] = value.length === 0 ? "" : new SshReader(value, what).text();
  }
  return out;
}

/** Reads a certificate blob or `-cert.pub` line back (renewal reads its validity; tests check fields). */
export function readSshCertificate(input: Buffer | string): ReadSshCertificate {
  let blob: Buffer;
  if (typeof input === "string") {
    const m = /^(\S+-cert-v01@openssh\.com)\s+([A-Za-z0-9+/]+={0,2})/.exec(input.trim());
    if (!m) throw invalid("not an OpenSSH certificate line (<type>-cert-v01@openssh.com <base64> ...)");
    blob = Buffer.from(m[2]!, "base64");
  } else blob = input;
  const r = new SshReader(blob, "the SSH certificate");
  const type = r.text();
  if (!type.endsWith(CERT_SUFFIX)) throw invalid(`${type.slice(0, 64)} is not an OpenSSH certificate type`);
  const keyType = type.slice(0, -CERT_SUFFIX.length);
  const nonce = r.string();
  const fields = new SshWriter().string(keyType);
  if (keyType === "ssh-ed25519") fields.string(r.string());
  else if (keyType.startsWith("ecdsa-sha2-")) fields.string(r.string()).string(r.string());
  else if (keyType === "ssh-rsa") fields.string(r.string()).string(r.string());
  else throw invalid(`certificates of ${keyType.slice(0, 64)} keys are not read here`);
  const subjectBlob = fields.bytes();
  readSshPublicKeyBlob(subjectBlob);
  const serial = r.uint64();
  const t = r.uint32();
  const kind: SshCertKind | undefined = t === 1 ? "user" : t === 2 ? "host" : undefined;
  if (!kind) throw invalid(`certificate type ${t} is neither user (1) nor host (2)`);
  const keyId = r.text();
  const pr = new SshReader(r.string(), "the principals");
  const principals: string[] = [];
  while (!pr.done) principals.push(pr.text());
  const validAfter = Number(r.uint64());
  const validBefore = r.uint64();
  const criticalOptions = readOptions(r.string(), "the critical options");
  const extensions = readOptions(r.string(), "the extensions");
  r.string();
  const caKeyBlob = r.string();
  const before = r.position;
  const signature = r.string();
  r.end();
  return {
    type,
    nonce,
    subjectBlob,
    serial,
    kind,
    keyId,
    principals,
    validAfter,
    validBefore: validBefore >= BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(validBefore),
    criticalOptions,
    extensions,
    caKeyBlob,
    signatureValid: sshVerify(caKeyBlob, blob.subarray(0, before), signature),
  };
}
