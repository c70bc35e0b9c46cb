import { createHash, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from "node:crypto";
import { invalid, RealmError } from "../../services/kernel/errors.js";
import { SshReader, SshWriter } from "./wire.js";

/** Key types an SSH CA of the realm is made with. */
export type SshCaKeySpec = "ed25519" | "ecdsa-p256";
export const SSH_CA_KEY_SPECS: readonly SshCaKeySpec[] = ["ed25519", "ecdsa-p256"];

/** Key types the realm certifies (the subject's key; FIDO `sk-` keys are not accepted yet). */
const CURVES = { "ecdsa-sha2-nistp256": ["nistp256", "P-256", 32], "ecdsa-sha2-nistp384": ["nistp384", "P-384", 48], "ecdsa-sha2-nistp521": ["nistp521", "P-521", 66] } as const;
type EcdsaType = keyof typeof CURVES;
const RSA_MIN_BITS = 2048;

/** A public key in OpenSSH form: its algorithm name and wire blob (what authorized_keys lines carry in base64). */
export interface SshPublicKey {
  type: string;
  blob: Buffer;
  /** `SHA256:<base64>` as `ssh-keygen -l` prints it. */
  fingerprint: string;
  /** The key as node:crypto holds it (checked to be a valid key of its type). */
  key: KeyObject;
}

const b64u = (b: Buffer) => b.toString("base64url");
const fromB64u = (s: string | undefined) => Buffer.from(s ?? "", "base64url");

export const sshFingerprint = (blob: Buffer): string => `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;

/** The OpenSSH public key blob of a node:crypto key (Ed25519, ECDSA P-256/384/521, RSA). */
export function sshPublicKeyBlob(key: KeyObject): Buffer {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  const jwk = pub.export({ format: "jwk" });
  switch (pub.asymmetricKeyType) {
    case "ed25519":
      return new SshWriter().string("ssh-ed25519").string(fromB64u(jwk.x)).bytes();
    case "ec": {
      const entry = Object.entries(CURVES).find(([, c]) => c[1] === jwk.crv);
      if (!entry) throw invalid(`EC curve ${String(jwk.crv)} has no OpenSSH key type`);
      const [type, [curve]] = entry;
      return new SshWriter().string(type).string(curve).string(Buffer.concat([Buffer.from([4]), fromB64u(jwk.x), fromB64u(jwk.y)])).bytes();
    }
    case "rsa":
      return new SshWriter().string("ssh-rsa").mpint(fromB64u(jwk.e)).mpint(fromB64u(jwk.n)).bytes();
    default:
      throw invalid(`a ${String(pub.asymmetricKeyType)} key has no OpenSSH form here`);
  }
}

/** `<type> <base64 blob> [comment]`, the authorized_keys / .pub form. */
export const sshPublicKeyLine = (key: KeyObject, comment?: string): string => {
  const blob = sshPublicKeyBlob(key);
  return `${new SshReader(blob, "key").text()} ${blob.toString("base64")}${comment ? ` ${comment}` : ""}`;
};

/** Reads a key blob and checks it is a valid key the realm certifies; VALIDATION says what is wrong. */
export function readSshPublicKeyBlob(blob: Buffer): SshPublicKey {
  const r = new SshReader(blob, "the SSH public key");
  const type = r.text();
  let key: KeyObject;
  try {
    if (type === "ssh-ed25519") {
      const pk = r.string();
      r.end();
      if (pk.length !== 32) throw invalid("an ssh-ed25519 key is 32 bytes");
      key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: b64u(pk) }, format: "jwk" });
    } else if (type in CURVES) {
      const [curve, crv, len] = CURVES[type as EcdsaType];
      if (r.text() !== curve) throw invalid(`a ${type} key names another curve`);
      const q = r.string();
      r.end();
      if (q.length !== 1 + 2 * len || q[0] !== 4) throw invalid(`a ${type} key is an uncompressed point of ${1 + 2 * len} bytes`);
      key = createPublicKey({ key: { kty: "EC", crv, x: b64u(q.subarray(1, 1 + len)), y: b64u(q.subarray(1 + len)) }, format: "jwk" });
    } else if (type === "ssh-rsa") {
      const e = r.mpint();
      const n = r.mpint();
      r.end();
      key = createPublicKey({ key: { kty: "RSA", e: b64u(e), n: b64u(n) }, format: "jwk" });
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < RSA_MIN_BITS) throw invalid(`an RSA key of ${bits} bits is too weak: at least ${RSA_MIN_BITS}`);
    } else throw invalid(`SSH key type ${JSON.stringify(type.slice(0, 64))} is not certified here (ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa)`);
  } catch (err) {
    if (err instanceof RealmError) throw err;
    throw invalid(`the ${type.slice(0, 64)} key is not a valid public key`);
  }
  return { type, blob, fingerprint: sshFingerprint(blob), key };
}

/** Reads one `<type> <base64> [comment]` line (a .pub file); refuses certificates and anything else. */
export function parseSshPublicKey(text: string): SshPublicKey {
  const line = text.trim().split("\n").find((l) => l.trim() && !l.trim().startsWith("#"));
  const m = line ? /^(\S+)\s+([A-Za-z0-9+/]+={0,2})(\s.*)?$/.exec(line.trim()) : null;
  if (!m) throw invalid("not an OpenSSH public key line (<type> <base64> [comment], as in a .pub file)");
  if (m[1]!.includes("-cert-v01@openssh.com")) throw invalid("that is a certificate, not a public key: give the key's .pub file");
  const k = readSshPublicKeyBlob(Buffer.from(m[2]!, "base64"));
  if (k.type !== m[1]) throw invalid(`the line says ${m[1]} but its key is ${k.type}`);
  return k;
}

/** The SSH signature blob of `data` made with a CA key (RFC 8709 Ed25519, RFC 5656 ECDSA P-256 with SHA-256). */
export function sshSign(caKey: KeyObject, data: Buffer): Buffer {
  if (caKey.asymmetricKeyType === "ed25519") return new SshWriter().string("ssh-ed25519").string(nodeSign(null, data, caKey)).bytes();
  if (caKey.asymmetricKeyType === "ec" && caKey.asymmetricKeyDetails?.namedCurve === "prime256v1") {
    const rs = nodeSign("sha256", data, { key: caKey, dsaEncoding: "ieee-p1363" });
    const inner = new SshWriter().mpint(rs.subarray(0, 32)).mpint(rs.subarray(32)).bytes();
    return new SshWriter().string("ecdsa-sha2-nistp256").string(inner).bytes();
  }
  throw invalid("an SSH CA key is Ed25519 or ECDSA P-256");
}

/** Verifies an SSH signature blob made by `sshSign` (Ed25519 or ECDSA P-256); false on anything else. */
export function sshVerify(caKeyBlob: Buffer, data: Buffer, signature: Buffer): boolean {
  try {
    const ca = readSshPublicKeyBlob(caKeyBlob);
    const r = new SshReader(signature, "the signature");
    const alg = r.text();
    const sig = r.string();
    r.end();
    if (alg !== ca.type) return false;
    if (alg === "ssh-ed25519") return nodeVerify(null, data, ca.key, sig);
    if (alg === "ecdsa-sha2-nistp256") {
      const ir = new SshReader(sig, "the signature");
      const pad = (b: Buffer) => Buffer.concat([Buffer.alloc(Math.max(0, 32 - b.length)), b]);
      const rs = Buffer.concat([pad(ir.mpint()), pad(ir.mpint())]);
      ir.end();
      return nodeVerify("sha256", data, { key: ca.key, dsaEncoding: "ieee-p1363" }, rs);
    }
    return false;
  } catch {
    return false;
  }
}
