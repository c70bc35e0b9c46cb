import { createHash, createPrivateKey, createPublicKey, generateKeyPair as generateKeyPairCb, sign as nodeSign, verify as nodeVerify, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { AsnConvert } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier, SubjectPublicKeyInfo } from "@peculiar/asn1-x509";
import { invalid } from "../../services/kernel/errors.js";

/** Key types the realm makes and accepts. */
export type KeySpec = "ecdsa-p256" | "ecdsa-p384" | "rsa-2048" | "rsa-3072" | "rsa-4096";
export const KEY_SPECS: readonly KeySpec[] = ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"];

/** What a public key is, as events and replies describe it. */
export interface KeyInfo {
  /** `ecdsa-p256`, `rsa-2048`, ... or `ed25519`. */
  spec: string;
  kind: "ec" | "rsa" | "ed25519";
  bits: number;
}

/** Minimum RSA modulus the realm signs for. */
export const RSA_MIN_BITS = 2048;

export const OID = {
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
  ecdsaWithSHA384: "1.2.840.10045.4.3.3",
  sha256WithRSA: "1.2.840.113549.1.1.11",
  sha384WithRSA: "1.2.840.113549.1.1.12",
  rsaEncryption: "1.2.840.113549.1.1.1",
  ecPublicKey: "1.2.840.10045.2.1",
  sha1: "1.3.14.3.2.26",
  sha256: "2.16.840.1.101.3.4.2.1",
} as const;

const generate = promisify(generateKeyPairCb);

export async function generateKeyPair(spec: KeySpec): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  switch (spec) {
    case "ecdsa-p256":
      return generate("ec", { namedCurve: "P-256" });
    case "ecdsa-p384":
      return generate("ec", { namedCurve: "P-384" });
    case "rsa-2048":
    case "rsa-3072":
    case "rsa-4096":
      return generate("rsa", { modulusLength: Number(spec.slice(4)), publicExponent: 0x10001 });
  }
}

/** Describes a public key; throws VALIDATION for a key type the realm does not issue for. */
export function keyInfo(pub: KeyObject): KeyInfo {
  const d = pub.asymmetricKeyDetails ?? {};
  switch (pub.asymmetricKeyType) {
    case "ec": {
      const curve = d.namedCurve;
      if (curve === "prime256v1" || curve === "P-256") return { spec: "ecdsa-p256", kind: "ec", bits: 256 };
      if (curve === "secp384r1" || curve === "P-384") return { spec: "ecdsa-p384", kind: "ec", bits: 384 };
      throw invalid(`EC curve ${String(curve)} is not accepted (P-256 or P-384)`);
    }
    case "rsa": {
      const bits = d.modulusLength ?? 0;
      return { spec: `rsa-${bits}`, kind: "rsa", bits };
    }
    case "ed25519":
      return { spec: "ed25519", kind: "ed25519", bits: 256 };
    default:
      throw invalid(`key type ${String(pub.asymmetricKeyType)} is not accepted (ECDSA P-256/P-384 or RSA >= ${RSA_MIN_BITS})`);
  }
}

/** Refuses keys too weak to certify (RSA below 2048 bits, RSA exponent 1/3 style oddities are left to OpenSSL). */
export function assertStrongKey(info: KeyInfo): void {
  if (info.kind === "rsa" && info.bits < RSA_MIN_BITS) throw invalid(`RSA key of ${info.bits} bits is too weak: at least ${RSA_MIN_BITS} bits`);
}

/** DER of a public key's SubjectPublicKeyInfo. */
export const spkiDer = (pub: KeyObject): Buffer => pub.export({ format: "der", type: "spki" });

/** RFC 5280 key identifier: SHA-1 of the subjectPublicKey BIT STRING contents (method 1). */
export function keyIdentifier(spki: Buffer | ArrayBuffer): Buffer {
  const parsed = AsnConvert.parse(spki, SubjectPublicKeyInfo);
  return createHash("sha1").update(Buffer.from(parsed.subjectPublicKey)).digest();
}

/** Signs DER with a CA key: the algorithm identifier follows the key (ECDSA P-256 -> SHA-256, P-384 -> SHA-384, RSA -> SHA-256). */
export interface Signer {
  key: KeyObject;
  algorithm: AlgorithmIdentifier;
  /** `algorithm` encoded once (it goes into every certificate and CRL this signer makes). */
  algorithmDer: Buffer;
  /** Node's digest name for the signature. */
  hash: "sha256" | "sha384";
  sign(data: Uint8Array): Buffer;
}

export function signerFor(key: KeyObject): Signer {
  if (key.type !== "private") throw invalid("a signer needs a private key");
  const info = keyInfo(createPublicKey(key));
  let algorithm: AlgorithmIdentifier;
  let hash: "sha256" | "sha384";
  if (info.kind === "ec") {
    hash = info.bits === 384 ? "sha384" : "sha256";
    algorithm = new AlgorithmIdentifier({ algorithm: hash === "sha384" ? OID.ecdsaWithSHA384 : OID.ecdsaWithSHA256 });
  } else if (info.kind === "rsa") {
    hash = "sha256";
    algorithm = new AlgorithmIdentifier({ algorithm: OID.sha256WithRSA, parameters: null });
  } else throw invalid(`a ${info.spec} key cannot sign certificates here`);
  return {
    key,
    algorithm,
    algorithmDer: Buffer.from(AsnConvert.serialize(algorithm)),
    hash,
    sign: (data) => nodeSign(hash, data, info.kind === "ec" ? { key, dsaEncoding: "der" } : key),
  };
}

export function privateKeyFromPem(pem: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: "pem" });
  } catch {
    throw invalid("not a readable private key");
  }
}

export const privateKeyPem = (key: KeyObject): string => key.export({ format: "pem", type: "pkcs8" }).toString();
export const publicKeyPem = (key: KeyObject): string => key.export({ format: "pem", type: "spki" }).toString();

/** Digest of each signature algorithm the realm accepts on CSRs, certificates and CRLs. */
export const SIGNATURE_HASH: Record<string, string> = {
  [OID.ecdsaWithSHA256]: "sha256",
  [OID.ecdsaWithSHA384]: "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  [OID.sha256WithRSA]: "sha256",
  [OID.sha384WithRSA]: "sha384",
  "1.2.840.113549.1.1.13": "sha512",
};

/** Verifies an X.509-style signature (ECDSA DER or RSA PKCS#1 v1.5) by algorithm OID; false on any mismatch. */
export function verifySignature(algorithmOid: string, data: Uint8Array, signature: Uint8Array, publicKey: KeyObject): boolean {
  const hash = SIGNATURE_HASH[algorithmOid];
  if (!hash) return false;
  try {
    return nodeVerify(hash, data, publicKey.asymmetricKeyType === "ec" ? { key: publicKey, dsaEncoding: "der" } : publicKey, signature);
  } catch {
    return false;
  }
}
