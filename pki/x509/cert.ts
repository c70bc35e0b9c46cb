import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AccessDescription,
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  CRLDistributionPoints,
  DistributionPoint,
  DistributionPointName,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  KeyIdentifier,
  KeyUsage,
  Name,
  NameConstraints,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_cRLDistributionPoints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_nameConstraints,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_pe_authorityInfoAccess,
} from "@peculiar/asn1-x509";
import { malformed } from "../../services/kernel/errors.js";
import { keyIdentifier, type Signer } from "./keys.js";
import { derTlv } from "./tlv.js";

export { KeyUsageFlags } from "@peculiar/asn1-x509";

export const EKU = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  codeSigning: "1.3.6.1.5.5.7.3.3",
  ocspSigning: "1.3.6.1.5.5.7.3.9",
} as const;

const ATTR = { C: "2.5.4.6", O: "2.5.4.10", OU: "2.5.4.11", CN: "2.5.4.3", L: "2.5.4.7", ST: "2.5.4.8", emailAddress: "1.2.840.113549.1.9.1" } as const;
const ATTR_NAME: Record<string, string> = Object.fromEntries(Object.entries(ATTR).map(([k, v]) => [v, k]));

/** A distinguished name as the realm builds them. */
export interface DnFields {
  CN: string;
  O?: string;
  OU?: string;
  C?: string;
}

/** Builds a Name (C, O, OU, CN order; C as PrintableString, the rest UTF8String). */
export function buildName(f: DnFields): Name {
  const rdn = (type: string, value: AttributeValue) => new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value })]);
  const rdns: RelativeDistinguishedName[] = [];
  if (f.C) rdns.push(rdn(ATTR.C, new AttributeValue({ printableString: f.C })));
  if (f.O) rdns.push(rdn(ATTR.O, new AttributeValue({ utf8String: f.O })));
  if (f.OU) rdns.push(rdn(ATTR.OU, new AttributeValue({ utf8String: f.OU })));
  rdns.push(rdn(ATTR.CN, new AttributeValue({ utf8String: f.CN })));
  return new Name(rdns);
}

/** RFC 4514 style text of a Name, most significant RDN last: `CN=web1.example.com,O=Example`. */
export function nameToString(name: Name): string {
  const esc = (v: string) => v.replace(/([,+"\\<>;=])/g, "\\$1");
  return [...name]
    .reverse()
    .map((rdn) => [...rdn].map((atv) => `${ATTR_NAME[atv.type] ?? atv.type}=${esc(atv.value.toString())}`).join("+"))
    .join(",");
}

/** The value of the first attribute `type` (CN by default) in a Name. */
export function nameAttribute(name: Name, type: keyof typeof ATTR = "CN"): string | undefined {
  for (const rdn of name) for (const atv of rdn) if (atv.type === ATTR[type]) return atv.value.toString();
  return undefined;
}

export const ext = (extnID: string, critical: boolean, value: unknown): Extension =>
  new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });

export const basicConstraintsExt = (ca: boolean, pathLen?: number) =>
  ext(id_ce_basicConstraints, true, new BasicConstraints(ca ? (pathLen === undefined ? { cA: true } : { cA: true, pathLenConstraint: pathLen }) : {}));
export const keyUsageExt = (flags: number) => ext(id_ce_keyUsage, true, new KeyUsage(flags));
export const extKeyUsageExt = (oids: string[]) => ext(id_ce_extKeyUsage, false, new ExtendedKeyUsage(oids));
export const subjectKeyIdExt = (spki: Buffer | ArrayBuffer) => ext(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(keyIdentifier(spki)));
export const authorityKeyIdExt = (keyId: Buffer) => ext(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId) }));

export interface SanSet {
  dns: string[];
  ip: string[];
  email: string[];
  uri: string[];
}
export const emptySans = (): SanSet => ({ dns: [], ip: [], email: [], uri: [] });

export function generalNames(s: SanSet): GeneralName[] {
  return [
    ...s.dns.map((dNSName) => new GeneralName({ dNSName })),
    ...s.ip.map((iPAddress) => new GeneralName({ iPAddress })),
    ...s.email.map((rfc822Name) => new GeneralName({ rfc822Name })),
    ...s.uri.map((uniformResourceIdentifier) => new GeneralName({ uniformResourceIdentifier })),
  ];
}

/** SAN extension; critical when the subject is empty (RFC 5280 4.2.1.6). */
export const subjectAltNameExt = (s: SanSet, critical = false) => ext(id_ce_subjectAltName, critical, new SubjectAlternativeName(generalNames(s)));

export function sansOf(names: Iterable<GeneralName>): SanSet {
  const out = emptySans();
  for (const g of names) {
    if (g.dNSName !== undefined) out.dns.push(g.dNSName);
    else if (g.iPAddress !== undefined) out.ip.push(g.iPAddress);
    else if (g.rfc822Name !== undefined) out.email.push(g.rfc822Name);
    else if (g.uniformResourceIdentifier !== undefined) out.uri.push(g.uniformResourceIdentifier);
    else throw malformed("a subject alternative name of an unsupported type (only DNS, IP, email and URI)");
  }
  return out;
}

/** Name constraints on DNS names (permitted subtrees), critical as RFC 5280 asks of CAs. */
export function nameConstraintsExt(permittedDns: string[], excludedDns: string[] = []): Extension {
  const subtrees = (names: string[]) => new GeneralSubtrees(names.map((dNSName) => new GeneralSubtree({ base: new GeneralName({ dNSName }), minimum: 0 })));
  return ext(
    id_ce_nameConstraints,
    true,
    new NameConstraints({ ...(permittedDns.length ? { permittedSubtrees: subtrees(permittedDns) } : {}), ...(excludedDns.length ? { excludedSubtrees: subtrees(excludedDns) } : {}) }),
  );
}

export const crlDistributionExt = (url: string) =>
  ext(id_ce_cRLDistributionPoints, false, new CRLDistributionPoints([new DistributionPoint({ distributionPoint: new DistributionPointName({ fullName: [new GeneralName({ uniformResourceIdentifier: url })] }) })]));

export const authorityInfoAccessExt = (ocspUrl: string) =>
  ext(id_pe_authorityInfoAccess, false, new AuthorityInfoAccessSyntax([new AccessDescription({ accessMethod: "1.3.6.1.5.5.7.48.1", accessLocation: new GeneralName({ uniformResourceIdentifier: ocspUrl }) })]));

/** SEQUENCE { tbs, algorithm, BIT STRING signature }: the shape of a certificate, a CRL and a basic OCSP response. */
export function signedEnvelope(tbsDer: Uint8Array, signer: Signer, extra?: Uint8Array): Buffer {
  const sig = signer.sign(tbsDer);
  const bits = derTlv(0x03, Buffer.from([0]), sig);
  return derTlv(0x30, tbsDer, signer.algorithmDer, bits, ...(extra ? [extra] : []));
}

export interface CertificateParams {
  /** INTEGER content bytes (see serialBytes). */
  serial: Buffer;
  issuer: Name;
  subject: Name;
  spki: SubjectPublicKeyInfo;
  notBefore: Date;
  notAfter: Date;
  extensions: Extension[];
  signer: Signer;
}

/** Builds and signs an X.509 v3 certificate; returns its DER. */
export function buildCertificate(p: CertificateParams): Buffer {
  return signedEnvelope(tbsCertificateDer(p), p.signer);
}

/** The to-be-signed part of a certificate, encoded by the ASN.1 schemas. */
export function tbsCertificateDer(p: Omit<CertificateParams, "signer"> & { signer: Pick<Signer, "algorithm"> }): Buffer {
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(p.serial).buffer,
    signature: p.signer.algorithm,
    issuer: p.issuer,
    validity: new Validity({ notBefore: p.notBefore, notAfter: p.notAfter }),
    subject: p.subject,
    subjectPublicKeyInfo: p.spki,
    extensions: new Extensions(p.extensions),
  });
  return Buffer.from(AsnConvert.serialize(tbs));
}

export function parseCertificate(der: Uint8Array): Certificate {
  try {
    return AsnConvert.parse(der, Certificate);
  } catch {
    throw malformed("not a DER X.509 certificate");
  }
}

/** The subject Name of a certificate as an object that re-serializes to the exact bytes it was read from. */
export function subjectNameOf(cert: Certificate): Name {
  return cert.tbsCertificate.subject;
}

export function extensionOf<T>(cert: Certificate, oid: string, type: new () => T): T | undefined {
  const e = cert.tbsCertificate.extensions?.find((x) => x.extnID === oid);
  return e ? AsnConvert.parse(e.extnValue, type) : undefined;
}

/** Seconds precision, as X.509 times carry. */
export const wholeSeconds = (d: Date): Date => new Date(Math.floor(d.getTime() / 1000) * 1000);

/** Permitted DNS subtrees of a CA certificate's name constraints (empty when it has none). */
export function nameConstraintsOf(cert: Certificate): string[] {
  const nc = extensionOf(cert, id_ce_nameConstraints, NameConstraints);
  return [...(nc?.permittedSubtrees ?? [])].map((s) => s.base.dNSName).filter((d): d is string => typeof d === "string");
}
