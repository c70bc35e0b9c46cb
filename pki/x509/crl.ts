import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificateList, CRLNumber, CRLReason, TBSCertList, Time, RevokedCertificate, Version, id_ce_cRLNumber, id_ce_cRLReasons, type Name } from "@peculiar/asn1-x509";
import { malformed } from "../../services/kernel/errors.js";
import { authorityKeyIdExt, ext, signedEnvelope } from "./cert.js";
import { serialBytes, serialHex } from "./der.js";
import type { KeyObject } from "node:crypto";
import { verifySignature, type Signer } from "./keys.js";

import { REVOCATION_REASONS, type RevocationReason } from "./reasons.js";
export { REVOCATION_REASONS, REVOCATION_REASON_NAMES, type RevocationReason } from "./reasons.js";

export interface CrlEntry {
  serial: string;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface CrlParams {
  issuer: Name;
  issuerKeyId: Buffer;
  signer: Signer;
  thisUpdate: Date;
  nextUpdate: Date;
  crlNumber: number;
  entries: CrlEntry[];
}

/** Builds and signs a v2 CRL (CRL number, authority key id; reason code per entry unless unspecified). */
export function buildCrl(p: CrlParams): Buffer {
  const revoked = p.entries.map(
    (e) =>
      new RevokedCertificate({
        userCertificate: new Uint8Array(serialBytes(e.serial)).buffer,
        revocationDate: new Time(e.revokedAt),
        ...(e.reason !== "unspecified" ? { crlEntryExtensions: [ext(id_ce_cRLReasons, false, new CRLReason(REVOCATION_REASONS[e.reason]))] } : {}),
      }),
  );
  const tbs = new TBSCertList({
    version: Version.v2,
    signature: p.signer.algorithm,
    issuer: p.issuer,
    thisUpdate: new Time(p.thisUpdate),
    nextUpdate: new Time(p.nextUpdate),
    ...(revoked.length ? { revokedCertificates: revoked } : {}),
    crlExtensions: [authorityKeyIdExt(p.issuerKeyId), ext(id_ce_cRLNumber, false, new CRLNumber(p.crlNumber))],
  });
  return signedEnvelope(new Uint8Array(AsnConvert.serialize(tbs)), p.signer);
}

/** Serials (normal hex) listed in a DER CRL, with thisUpdate/nextUpdate. */
export function readCrl(der: Uint8Array): { serials: string[]; thisUpdate: Date; nextUpdate: Date | undefined; list: CertificateList } {
  let list: CertificateList;
  try {
    list = AsnConvert.parse(der, CertificateList);
  } catch {
    throw malformed("not a DER CRL");
  }
  const t = list.tbsCertList;
  return {
    serials: (t.revokedCertificates ?? []).map((r) => serialHex(r.userCertificate)),
    thisUpdate: t.thisUpdate.getTime(),
    nextUpdate: t.nextUpdate?.getTime(),
    list,
  };
}

/** True when a DER CRL's signature verifies with `issuerKey`. */
export function crlSignedBy(list: CertificateList, issuerKey: KeyObject): boolean {
  const tbs = list.tbsCertListRaw ? new Uint8Array(list.tbsCertListRaw) : new Uint8Array(AsnConvert.serialize(list.tbsCertList));
  return verifySignature(list.signatureAlgorithm.algorithm, tbs, new Uint8Array(list.signature), issuerKey);
}

/** CRL number of a CRL (0 when absent). */
export function crlNumberOf(list: CertificateList): number {
  const e = list.tbsCertList.crlExtensions?.find((x) => x.extnID === id_ce_cRLNumber);
  return e ? Number(AsnConvert.parse(e.extnValue, CRLNumber).value) : 0;
}
