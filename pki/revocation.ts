import { createPublicKey, type KeyObject } from "node:crypto";
import type { IntermediateFacts, IssuerState } from "./domain/issuer.js";
import type { PkiModel } from "./projection.js";
import { parseCertificate, wholeSeconds } from "./x509/cert.js";
import { buildCrl, type CrlEntry } from "./x509/crl.js";
import { fromPem } from "./x509/der.js";
import { keyIdentifier, signerFor, spkiDer } from "./x509/keys.js";
import { answerOcsp, type OcspIssuer } from "./x509/ocsp.js";
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
 * The CRL of each intermediate, signed on demand from the read model with that intermediate's key and kept
 * until a revocation changes it or half its validity has passed. CRL numbers are the signing time in seconds,
 * so they only grow. An issuer's earlier intermediates keep their own CRL (their leaves point at it).
 */
export class CrlCache {
  private cache = new Map<string, { crl: IssuedCrl; revocations: number }>();
  private lastNumber = 0;

  constructor(
    private readonly model: () => PkiModel,
    private readonly keyOf: (intermediate: IntermediateFacts) => KeyObject,
    private readonly now: () => Date,
  ) {}

  /** The CRL of the issuer's current intermediate, or of the one with `intermediateSerial`. */
  forIssuer(id: string, intermediateSerial?: string): IssuedCrl {
    const st = this.model().issuers.get(id);
    if (!st?.active) throw notFound(`issuer ${id} has no intermediate`);
    const inter = intermediateSerial === undefined ? st.active : intermediatesOf(st).find((i) => i.serial === intermediateSerial);
    if (!inter) throw notFound(`issuer ${id} has no intermediate with serial ${intermediateSerial}`);
    const m = this.model();
    const t = this.now();
    const hit = this.cache.get(inter.fingerprint);
    if (hit && hit.revocations === m.revocations && t.getTime() - hit.crl.thisUpdate.getTime() < CRL_REFRESH_MS) return hit.crl;
    const cert = parseCertificate(fromPem(inter.certPem, ["CERTIFICATE"], "the intermediate"));
    const key = this.keyOf(inter);
    const entries: CrlEntry[] = [];
    for (const serial of m.revokedBy.get(id) ?? []) {
      const c = m.certificates.get(serial);
      if (c?.revoked && c.issuerFingerprint === inter.fingerprint) entries.push({ serial, revokedAt: new Date(c.revoked.at), reason: c.revoked.reason });
    }
    const thisUpdate = wholeSeconds(t);
    const crlNumber = Math.max(this.lastNumber + 1, Math.floor(thisUpdate.getTime() / 1000));
    this.lastNumber = crlNumber;
    const nextUpdate = new Date(thisUpdate.getTime() + CRL_VALIDITY_MS);
    const der = buildCrl({ issuer: cert.tbsCertificate.subject, issuerKeyId: keyIdentifier(spkiDer(createPublicKey(key))), signer: signerFor(key), thisUpdate, nextUpdate, crlNumber, entries });
    const crl = { der, crlNumber, thisUpdate, nextUpdate, revoked: entries.length };
    this.cache.set(inter.fingerprint, { crl, revocations: m.revocations });
    return crl;
  }
}

/** The current intermediate first, then the earlier ones, newest first. */
export const intermediatesOf = (st: IssuerState): IntermediateFacts[] => [...(st.active ? [st.active] : []), ...[...st.previous].reverse()];

/**
 * The OCSP responder's view: every intermediate of every issuer that has not expired and whose key this
 * service holds signs the answers about its own leaves. Signers are built once per intermediate.
 */
export class OcspIssuers {
  private signers = new Map<string, OcspIssuer>();
  constructor(
    private readonly model: () => PkiModel,
    private readonly keyOf: (intermediate: IntermediateFacts) => KeyObject,
    private readonly now: () => Date,
  ) {}

  current(): OcspIssuer[] {
    const out: OcspIssuer[] = [];
    const t = this.now().getTime();
    for (const st of this.model().issuers.values()) {
      for (const inter of intermediatesOf(st)) {
        if (Date.parse(inter.notAfter) < t) continue;
        const entry = this.signers.get(inter.fingerprint) ?? this.build(inter);
        if (entry) out.push(entry);
      }
    }
    return out;
  }

  private build(inter: IntermediateFacts): OcspIssuer | undefined {
    let key: KeyObject;
    try {
      key = this.keyOf(inter);
    } catch {
      return undefined; // another replica's key: that replica answers for it
    }
    const certDer = fromPem(inter.certPem, ["CERTIFICATE"], "the intermediate");
    const model = this.model;
    const entry: OcspIssuer = {
      certDer,
      signer: signerFor(key),
      responderCertDer: certDer,
      lookup(serial) {
        const c = model().certificates.get(serial);
        if (!c?.exists || c.issuerFingerprint !== inter.fingerprint) return { status: "unknown" };
        if (c.revoked) return { status: "revoked", revokedAt: new Date(c.revoked.at), reason: c.revoked.reason };
        return { status: "good" };
      },
    };
    this.signers.set(inter.fingerprint, entry);
    return entry;
  }
}

const PRESIGNED_MAX_AGE_MS = 5 * 60_000;
const PRESIGNED_MAX_ENTRIES = 10_000;

/**
 * The OCSP responder. A request without a nonce (what browsers and most TLS stacks send; RFC 5019) whose
 * answer was good or revoked is answered again from that pre-signed response, byte for byte the same
 * request, while nothing was revoked since and it is younger than five minutes. A request with a nonce, or
 * about a serial the realm does not know, is always signed afresh.
 */
export class OcspResponder {
  private presigned = new Map<string, { der: Buffer; at: number; revocations: number }>();
  constructor(
    private readonly issuers: OcspIssuers,
    private readonly model: () => PkiModel,
    private readonly now: () => Date,
  ) {}

  answer(requestDer: Buffer): Buffer {
    const t = this.now();
    const revocations = this.model().revocations;
    const key = requestDer.toString("base64");
    const hit = this.presigned.get(key);
    if (hit && hit.revocations === revocations && t.getTime() - hit.at < PRESIGNED_MAX_AGE_MS) return hit.der;
    const reply = answerOcsp(requestDer, this.issuers.current(), t);
    // "unknown" is not kept: the certificate may be issued (or reach this replica's projection) any moment.
    if (!reply.nonce && reply.statuses.length > 0 && !reply.statuses.includes("unknown")) {
      if (this.presigned.size >= PRESIGNED_MAX_ENTRIES) this.presigned.clear();
      this.presigned.set(key, { der: reply.der, at: t.getTime(), revocations });
    }
    return reply.der;
  }
}
