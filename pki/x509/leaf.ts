import { AsnConvert } from "@peculiar/asn1-schema";
import type { Certificate, SubjectPublicKeyInfo } from "@peculiar/asn1-x509";
import type { IssuancePlan } from "../domain/issuance.js";
import { PROFILES } from "../domain/profiles.js";
import {
  authorityInfoAccessExt,
  authorityKeyIdExt,
  basicConstraintsExt,
  buildCertificate,
  buildName,
  crlDistributionExt,
  EKU,
  extKeyUsageExt,
  KeyUsageFlags,
  keyUsageExt,
  subjectAltNameExt,
  subjectKeyIdExt,
} from "./cert.js";
import { keyIdentifier, type KeyInfo, type Signer } from "./keys.js";

/** The issuing side of a leaf: the intermediate's certificate (parsed once) and its signer. */
export interface LeafIssuer {
  cert: Certificate;
  keyId: Buffer;
  signer: Signer;
  crlUrl?: string | undefined;
  ocspUrl?: string | undefined;
}

export function leafIssuer(cert: Certificate, signer: Signer, urls: { crlUrl?: string | undefined; ocspUrl?: string | undefined } = {}): LeafIssuer {
  // The same method-1 identifier the ceremony wrote into the intermediate's subjectKeyIdentifier.
  const keyId = keyIdentifier(Buffer.from(AsnConvert.serialize(cert.tbsCertificate.subjectPublicKeyInfo)));
  return { cert, keyId, signer, ...urls };
}

/** Builds and signs a leaf for `plan`: CA:false, key usage by key kind, EKU by profile, SANs, CRL and OCSP pointers. */
export function buildLeaf(p: { plan: IssuancePlan; serial: Buffer; spki: SubjectPublicKeyInfo; spkiDer: Buffer; key: KeyInfo; issuer: LeafIssuer }): Buffer {
  const profile = PROFILES[p.plan.profile];
  const usage = KeyUsageFlags.digitalSignature | (p.key.kind === "rsa" && profile.extendedKeyUsage.includes("serverAuth") ? KeyUsageFlags.keyEncipherment : 0);
  const n = p.plan.names;
  const hasSans = n.dns.length + n.ip.length + n.email.length + n.uri.length > 0;
  return buildCertificate({
    serial: p.serial,
    issuer: p.issuer.cert.tbsCertificate.subject,
    subject: buildName({ CN: p.plan.commonName }),
    spki: p.spki,
    notBefore: p.plan.notBefore,
    notAfter: p.plan.notAfter,
    extensions: [
      basicConstraintsExt(false),
      keyUsageExt(usage),
      extKeyUsageExt(profile.extendedKeyUsage.map((u) => EKU[u])),
      subjectKeyIdExt(p.spkiDer),
      authorityKeyIdExt(p.issuer.keyId),
      ...(hasSans ? [subjectAltNameExt({ dns: n.dns, ip: n.ip, email: n.email, uri: n.uri })] : []),
      ...(p.issuer.crlUrl ? [crlDistributionExt(p.issuer.crlUrl)] : []),
      ...(p.issuer.ocspUrl ? [authorityInfoAccessExt(p.issuer.ocspUrl)] : []),
    ],
    signer: p.issuer.signer,
  });
}
