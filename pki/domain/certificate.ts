import type { Decider, EventEnvelope, NewEvent } from "../../services/kernel/index.js";
import { alreadyExists, invalid, notFound } from "../../services/kernel/errors.js";
import type { SecretRef } from "../../secrets-client/contract.js";
import { PkiEventTypes as E } from "../contract.js";
import type { LeafNames } from "./issuance.js";
import type { ProfileName } from "./profiles.js";
import { REVOCATION_REASONS, type RevocationReason } from "../x509/crl.js";

/** What CertificateIssued records: public facts and, for a generated key, where it was escrowed (never the key). */
export interface IssuedCertificate {
  serial: string;
  issuer: string;
  /** SHA-256 of the issuing intermediate certificate. */
  issuerFingerprint: string;
  profile: ProfileName;
  subject: string;
  commonName: string;
  sans: LeafNames;
  fingerprint: string;
  notBefore: string;
  notAfter: string;
  key: { spec: string; source: "csr" | "generated" };
  principal?: string | undefined;
  secretRef?: SecretRef | undefined;
  certPem: string;
}

export interface CertificateState extends Partial<IssuedCertificate> {
  serial: string;
  exists: boolean;
  revoked?: { at: string; reason: RevocationReason } | undefined;
}

export type CertificateCommand = { type: "issue"; certificate: IssuedCertificate } | { type: "revoke"; reason: RevocationReason; at: string };

/** One aggregate per certificate serial: issued once, revoked at most once. */
export const certificateDecider: Decider<CertificateState, CertificateCommand> = {
  aggregateType: "certificate",
  initialState: (serial) => ({ serial, exists: false }),
  decide(s, c): NewEvent[] {
    if (c.type === "issue") {
      if (s.exists) throw alreadyExists(`a certificate with serial ${s.serial} exists`);
      if (c.certificate.serial !== s.serial) throw invalid("serial mismatch");
      return [{ type: E.CertificateIssued, data: c.certificate }];
    }
    if (!s.exists) throw notFound(`no certificate with serial ${s.serial}`);
    if (s.revoked) throw alreadyExists(`certificate ${s.serial} was already revoked at ${s.revoked.at} (${s.revoked.reason})`);
    if (!(c.reason in REVOCATION_REASONS) || c.reason === "removeFromCRL") throw invalid(`revocation reason ${JSON.stringify(c.reason)} is not one of ${Object.keys(REVOCATION_REASONS).filter((r) => r !== "removeFromCRL").join(", ")}`);
    return [{ type: E.CertificateRevoked, data: { reason: c.reason, revokedAt: c.at } }];
  },
  evolve: evolveCertificate,
};

export function evolveCertificate(s: CertificateState, e: EventEnvelope): CertificateState {
  if (e.type === E.CertificateIssued) return { ...s, ...(e.data as IssuedCertificate), exists: true };
  if (e.type === E.CertificateRevoked) {
    const d = e.data as { reason: RevocationReason; revokedAt: string };
    return { ...s, revoked: { at: d.revokedAt, reason: d.reason } };
  }
  return s;
}
