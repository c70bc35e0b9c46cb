import type { EventEnvelope, ProjectionDefinition } from "../services/kernel/index.js";
import { certificateDecider, evolveCertificate, type CertificateState } from "./domain/certificate.js";
import { evolveIssuer, issuerDecider, type IssuerState } from "./domain/issuer.js";
import { ACME_AGGREGATES, applyAcme, decodeAcmeRecord, emptyAcmeModel, encodeAcme, type AcmeModel } from "./acme/projection.js";

/** The PKI read model: issuers, every certificate by serial, and indexes for the queries and the responders. */
export interface PkiModel {
  issuers: Map<string, IssuerState>;
  certificates: Map<string, CertificateState>;
  /** Lowercased common name and SAN -> serials. */
  byName: Map<string, Set<string>>;
  /** Issuer -> serials revoked (what its CRL lists); `revocations` counts changes for CRL caching. */
  revokedBy: Map<string, Set<string>>;
  revocations: number;
  /** ACME configurations, accounts and orders (pki/acme/). */
  acme: AcmeModel;
}

export function pkiProjection(): ProjectionDefinition<PkiModel> {
  return {
    name: "pki-certificates",
    version: 2,
    initial: () => ({ issuers: new Map(), certificates: new Map(), byName: new Map(), revokedBy: new Map(), revocations: 0, acme: emptyAcmeModel() }),
    apply(m, e: EventEnvelope) {
      const id = e.aggregate.id;
      if (ACME_AGGREGATES.has(e.aggregate.type)) applyAcme(m.acme, e);
      else if (e.aggregate.type === issuerDecider.aggregateType) {
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
    // Snapshot records: the counter, then one per issuer, certificate and index entry (Sets as arrays).
    snapshot: {
      *encode(m) {
        yield ["revocations", m.revocations];
        for (const [id, s] of m.issuers) yield ["issuer", id, s];
        for (const [id, c] of m.certificates) yield ["certificate", id, c];
        for (const [name, serials] of m.byName) yield ["name", name, [...serials]];
        for (const [issuer, serials] of m.revokedBy) yield ["revoked", issuer, [...serials]];
        yield* encodeAcme(m.acme);
      },
      decode(records) {
        const m: PkiModel = { issuers: new Map(), certificates: new Map(), byName: new Map(), revokedBy: new Map(), revocations: 0, acme: emptyAcmeModel() };
        for (const rec of records) {
          const r = rec as [string, unknown, unknown];
          if (r[0] === "revocations") m.revocations = r[1] as number;
          else if (r[0] === "issuer") m.issuers.set(r[1] as string, r[2] as IssuerState);
          else if (r[0] === "certificate") m.certificates.set(r[1] as string, r[2] as CertificateState);
          else if (r[0] === "name") m.byName.set(r[1] as string, new Set(r[2] as string[]));
          else if (r[0] === "revoked") m.revokedBy.set(r[1] as string, new Set(r[2] as string[]));
          else if (!decodeAcmeRecord(m.acme, r)) throw new Error(`not a PKI record: ${JSON.stringify(r[0])}`);
        }
        return m;
      },
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
