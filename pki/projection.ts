import type { EventEnvelope, ProjectionDefinition } from "../services/kernel/index.js";
import { certificateDecider, evolveCertificate, type CertificateState } from "./domain/certificate.js";
import { evolveIssuer, issuerDecider, type IssuerState } from "./domain/issuer.js";

/** The PKI read model: issuers, every certificate by serial, and indexes for the queries and the responders. */
export interface PkiModel {
  issuers: Map<string, IssuerState>;
  certificates: Map<string, CertificateState>;
  /** Lowercased common name and SAN -> serials. */
  byName: Map<string, Set<string>>;
  /** Issuer -> serials revoked (what its CRL lists); `revocations` counts changes for CRL caching. */
  revokedBy: Map<string, Set<string>>;
  revocations: number;
}

export function pkiProjection(): ProjectionDefinition<PkiModel> {
  return {
    name: "pki-certificates",
    version: 1,
    initial: () => ({ issuers: new Map(), certificates: new Map(), byName: new Map(), revokedBy: new Map(), revocations: 0 }),
    apply(m, e: EventEnvelope) {
      const id = e.aggregate.id;
      if (e.aggregate.type === issuerDecider.aggregateType) {
        m.issuers.set(id, evolveIssuer(m.issuers.get(id) ?? issuerDecider.initialState(id), e));
      } else if (e.aggregate.type === certificateDecider.aggregateType) {
        const before = m.certificates.get(id) ?? certificateDecider.initialState(id);
        const c = evolveCertificate(before, e);
        m.certificates.set(id, c);
        if (!before.exists && c.exists) for (const n of [c.commonName, ...(c.sans?.dns ?? []), ...(c.sans?.email ?? [])]) if (n) index(m.byName, n.toLowerCase(), id);
        if (!before.revoked && c.revoked && c.issuer) {
          index(m.revokedBy, c.issuer, id);
          m.revocations++;
        }
      }
      return m;
    },
  };
}

function index(map: Map<string, Set<string>>, key: string, serial: string): void {
  let s = map.get(key);
  if (!s) map.set(key, (s = new Set()));
  s.add(serial);
}

/** A certificate as queries answer it (the PEM only when asked for one). */
export function certificateView(c: CertificateState, now = new Date(), withPem = false) {
  const status = c.revoked ? "revoked" : c.notAfter && new Date(c.notAfter).getTime() < now.getTime() ? "expired" : "valid";
  return {
    serial: c.serial,
    issuer: c.issuer,
    profile: c.profile,
    subject: c.subject,
    commonName: c.commonName,
    sans: c.sans,
    fingerprint: c.fingerprint,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    key: c.key,
    status,
    ...(c.principal ? { principal: c.principal } : {}),
    ...(c.secretRef ? { secretRef: c.secretRef } : {}),
    ...(c.revoked ? { revoked: c.revoked } : {}),
    ...(withPem ? { certPem: c.certPem } : {}),
  };
}
