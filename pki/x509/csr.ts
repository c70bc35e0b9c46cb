import { createPublicKey, verify as nodeVerify, type KeyObject } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificationRequest, CertificationRequestInfo, Attributes } from "@peculiar/asn1-csr";
import { Attribute, Extensions, SubjectAlternativeName, SubjectPublicKeyInfo, id_ce_subjectAltName, type Name } from "@peculiar/asn1-x509";
import { invalid, malformed } from "../../services/kernel/errors.js";
import { emptySans, nameAttribute, nameToString, sansOf, signedEnvelope, type SanSet } from "./cert.js";
import { fromPem } from "./der.js";
import { assertStrongKey, keyInfo, OID, spkiDer, type KeyInfo, type Signer } from "./keys.js";

/** A verified PKCS#10 request: what the realm reads from it. */
export interface ParsedCsr {
  subject: Name;
  subjectText: string;
  commonName: string | undefined;
  spki: SubjectPublicKeyInfo;
  spkiDer: Buffer;
  publicKey: KeyObject;
  key: KeyInfo;
  /** Names asked for in the extensionRequest attribute. */
  sans: SanSet;
}

const EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
const SIG_HASH: Record<string, string> = {
  [OID.ecdsaWithSHA256]: "sha256",
  [OID.ecdsaWithSHA384]: "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  [OID.sha256WithRSA]: "sha256",
  [OID.sha384WithRSA]: "sha384",
  "1.2.840.113549.1.1.13": "sha512",
};

/**
 * Parses a CSR (PEM or DER), checks its self-signature and its key (RSA >= 2048, EC P-256/P-384). Garbage
 * is MALFORMED; a bad signature or a weak key is VALIDATION.
 */
export function parseCsr(input: string | Uint8Array): ParsedCsr {
  const der = typeof input === "string" ? fromPem(input, ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"], "the CSR") : Buffer.from(input);
  let req: CertificationRequest;
  try {
    req = AsnConvert.parse(der, CertificationRequest);
  } catch {
    throw malformed("the CSR is not a DER PKCS#10 certification request");
  }
  const info = req.certificationRequestInfo;
  const spkiBytes = Buffer.from(AsnConvert.serialize(info.subjectPKInfo));
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spkiBytes, format: "der", type: "spki" });
  } catch {
    throw malformed("the CSR's public key cannot be read");
  }
  const key = keyInfo(publicKey);
  assertStrongKey(key);
  const hash = SIG_HASH[req.signatureAlgorithm.algorithm];
  if (!hash) throw invalid(`the CSR is signed with an unsupported algorithm ${req.signatureAlgorithm.algorithm}`);
  const signed = req.certificationRequestInfoRaw ? Buffer.from(req.certificationRequestInfoRaw) : Buffer.from(AsnConvert.serialize(info));
  const ok = nodeVerify(hash, signed, key.kind === "ec" ? { key: publicKey, dsaEncoding: "der" } : publicKey, Buffer.from(req.signature));
  if (!ok) throw invalid("the CSR's signature does not verify (proof of possession failed)");
  return {
    subject: info.subject,
    subjectText: nameToString(info.subject),
    commonName: nameAttribute(info.subject, "CN"),
    spki: info.subjectPKInfo,
    spkiDer: spkiBytes,
    publicKey,
    key,
    sans: requestedSans(info),
  };
}

function requestedSans(info: CertificationRequestInfo): SanSet {
  for (const attr of info.attributes) {
    if (attr.type !== EXTENSION_REQUEST) continue;
    for (const v of attr.values) {
      const exts = AsnConvert.parse(v, Extensions);
      for (const e of exts) if (e.extnID === id_ce_subjectAltName) return sansOf(AsnConvert.parse(e.extnValue, SubjectAlternativeName));
    }
  }
  return emptySans();
}

/** Makes a PKCS#10 request for `subject` signed with `signer` (no attributes). */
export function createCsr(subject: Name, publicKey: KeyObject, signer: Signer): Buffer {
  const info = new CertificationRequestInfo({
    version: 0,
    subject,
    subjectPKInfo: AsnConvert.parse(spkiDer(publicKey), SubjectPublicKeyInfo),
    attributes: new Attributes([] as Attribute[]),
  });
  return signedEnvelope(new Uint8Array(AsnConvert.serialize(info)), signer);
}
