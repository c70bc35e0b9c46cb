import { createPublicKey, type KeyObject } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificationRequestInfo, Attributes } from "@peculiar/asn1-csr";
import { AlgorithmIdentifier, Attribute, Extensions, Name, SubjectAlternativeName, SubjectPublicKeyInfo, id_ce_subjectAltName } from "@peculiar/asn1-x509";
import { invalid, malformed, RealmError } from "../../services/kernel/errors.js";
import { childrenOf, content, raw, readWhole } from "./tlv.js";
import { emptySans, nameAttribute, nameToString, sansOf, signedEnvelope, type SanSet } from "./cert.js";
import { fromPem } from "./der.js";
import { assertStrongKey, keyInfo, SIGNATURE_HASH, spkiDer, verifySignature, type KeyInfo, type Signer } from "./keys.js";

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

/**
 * Parses a CSR (PEM or DER), checks its self-signature and its key (RSA >= 2048, EC P-256/P-384). Garbage
 * is MALFORMED; a bad signature or a weak key is VALIDATION. The request is sliced with the DER reader and
 * only its small parts (subject, algorithm, attributes) are decoded with the schemas: the signed bytes and
 * the key go to node:crypto as they came.
 */
export function parseCsr(input: string | Uint8Array): ParsedCsr {
  const der = typeof input === "string" ? fromPem(input, ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"], "the CSR") : Buffer.from(input);
  let parts: { info: Buffer; subject: Name; spkiDer: Buffer; attributes: Attribute[]; algorithm: string; signature: Buffer };
  try {
    parts = sliceCsr(der);
  } catch {
    throw malformed("the CSR is not a DER PKCS#10 certification request");
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: parts.spkiDer, format: "der", type: "spki" });
  } catch {
    throw malformed("the CSR's public key cannot be read");
  }
  const key = keyInfo(publicKey);
  assertStrongKey(key);
  if (!SIGNATURE_HASH[parts.algorithm]) throw invalid(`the CSR is signed with an unsupported algorithm ${parts.algorithm}`);
  if (!verifySignature(parts.algorithm, parts.info, parts.signature, publicKey)) throw invalid("the CSR's signature does not verify (proof of possession failed)");
  let sans: SanSet;
  try {
    sans = requestedSans(parts.attributes);
  } catch (err) {
    if (err instanceof RealmError) throw err;
    throw malformed("the CSR's extension request cannot be read");
  }
  let spki: SubjectPublicKeyInfo | undefined;
  return {
    subject: parts.subject,
    subjectText: nameToString(parts.subject),
    commonName: nameAttribute(parts.subject, "CN"),
    get spki() {
      return (spki ??= AsnConvert.parse(parts.spkiDer, SubjectPublicKeyInfo));
    },
    spkiDer: parts.spkiDer,
    publicKey,
    key,
    sans,
  };
}

/** CertificationRequest ::= SEQUENCE { info SEQUENCE { version, subject, spki, [0] attributes }, algorithm, BIT STRING }. */
function sliceCsr(der: Buffer) {
  const outer = readWhole(der, 0x30, "the CSR");
  const [info, alg, sig, ...extra] = childrenOf(der, outer);
  if (!info || !alg || !sig || extra.length || info.tag !== 0x30 || alg.tag !== 0x30 || sig.tag !== 0x03) throw malformed("not a CSR");
  const [version, subject, spki, attrs, ...more] = childrenOf(der, info);
  if (!version || !subject || !spki || more.length || version.tag !== 0x02 || subject.tag !== 0x30 || spki.tag !== 0x30 || (attrs && attrs.tag !== 0xa0)) throw malformed("not a CSR");
  const bits = content(der, sig);
  if (bits.length < 2 || bits[0] !== 0) throw malformed("CSR signature has unused bits");
  // [0] IMPLICIT SET OF Attribute: read as the schema's sequence of attributes by retagging a copy.
  const attributes: Attribute[] = [];
  if (attrs && attrs.end > attrs.contentStart) {
    const copy = Buffer.from(raw(der, attrs));
    copy[0] = 0x30;
    attributes.push(...AsnConvert.parse(copy, Attributes));
  }
  return {
    info: raw(der, info),
    subject: AsnConvert.parse(raw(der, subject), Name),
    spkiDer: raw(der, spki),
    attributes,
    algorithm: AsnConvert.parse(raw(der, alg), AlgorithmIdentifier).algorithm,
    signature: bits.subarray(1),
  };
}

function requestedSans(attributes: Iterable<Attribute>): SanSet {
  for (const attr of attributes) {
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
