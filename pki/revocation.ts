import { createPublicKey, type KeyObject } from "node:crypto";
import type { IssuerState } from "./domain/issuer.js";
import type { PkiModel } from "./projection.js";
import { parseCertificate } from "./x509/cert.js";
import { buildCrl, type CrlEntry } from "./x509/crl.js";
import { fromPem } from "./x509/der.js";
import { keyIdentifier, signerFor, spkiDer } from "./x509/keys.js";
import type { OcspIssuer } from "./x509/ocsp.js";
import { notFound } from "../services/kernel/errors.js";

/** How long a CRL is valid, and when it is re-signed even without a new revocation. */
export const CRL_VALIDITY_MS = 7 * 86_400_000;
const CRL_REFRESH_MS = CRL_VALIDITY_MS / 2;

export interface IssuedCrl {
  der: Buffer;
  crlNumber: number;
  thisUpdate: Date;
  nextUpdate: Date;
  revoked: number;
}

/**
 * The CRL of each issuer, signed on demand from the read model and kept until a revocation changes it or
 * half its validity has passed. CRL numbers are the signing time in seconds, so they only grow.
 */
export class CrlCache {
  private cache = new Map<string, { crl: IssuedCrl; revocations: number; fingerprint: string }>();
  private lastNumber = 0;

  constructor(
    private readonly model: () => PkiModel,
    private readonly keyOf: (st: IssuerState) => KeyObject,
    private readonly now: () => Date,
  ) {}

  forIssuer(id: string): IssuedCrl {
    const st = this.model().issuers.get(id);
    if (!st?.active) throw notFound(`issuer ${id} has no intermediate`);
    const m = this.model();
    const t = this.now();
    const hit = this.cache.get(id);
    if (hit && hit.revocations === m.revocations && hit.fingerprint === st.active.fingerprint && t.getTime() - hit.crl.thisUpdate.getTime() < CRL_REFRESH_MS) return hit.crl;
    const cert = parseCertificate(fromPem(st.active.certPem, ["CERTIFICATE"], "the intermediate"));
    const key = this.keyOf(st);
    const entries: CrlEntry[] = [];
    for (const serial of m.revokedBy.get(id) ?? []) {
      const c = m.certificates.get(serial);
      // Leaves of an earlier intermediate of this issuer are not listed: their CRL needs that earlier key.
      if (c?.revoked && c.issuerFingerprint === st.active.fingerprint) entries.push({ serial, revokedAt: new Date(c.revoked.at), reason: c.revoked.reason });
    }
    const thisUpdate = new Date(Math.floor(t.getTime() / 1000) * 1000);
    const crlNumber = Math.max(this.lastNumber + 1, Math.floor(thisUpdate.getTime() / 1000));
    this.lastNumber = crlNumber;
    const nextUpdate = new Date(thisUpdate.getTime() + CRL_VALIDITY_MS);
    const der = buildCrl({ issuer: cert.tbsCertificate.subject, issuerKeyId: keyIdentifier(spkiDer(createPublicKey(key))), signer: signerFor(key), thisUpdate, nextUpdate, crlNumber, entries });
    const crl = { der, crlNumber, thisUpdate, nextUpdate, revoked: entries.length };
    this.cache.set(id, { crl, revocations: m.revocations, fingerprint: st.active.fingerprint });
    return crl;
  }
}

/** The OCSP responder's view of each issuer with an intermediate: the intermediate signs its own responses. */
export function ocspIssuers(model: PkiModel, keyOf: (st: IssuerState) => KeyObject): OcspIssuer[] {
  const out: OcspIssuer[] = [];
  for (const st of model.issuers.values()) {
    const a = st.active;
    if (!a) continue;
    const certDer = fromPem(a.certPem, ["CERTIFICATE"], "the intermediate");
    out.push({
      certDer,
      signer: signerFor(keyOf(st)),
      responderCertDer: certDer,
      lookup(serial) {
        const c = model.certificates.get(serial);
        if (!c?.exists || c.issuerFingerprint !== a.fingerprint) return { status: "unknown" };
        if (c.revoked) return { status: "revoked", revokedAt: new Date(c.revoked.at), reason: c.revoked.reason };
        return { status: "good" };
      },
    });
  }
  return out;
}
