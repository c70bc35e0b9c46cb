import { createHash, createPublicKey, verify as nodeVerify, randomBytes } from "node:crypto";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  BasicOCSPResponse,
  CertID,
  CertStatus,
  Nonce,
  OCSPRequest,
  OCSPResponse,
  OCSPResponseStatus,
  Request,
  ResponderID,
  ResponseBytes,
  ResponseData,
  RevokedInfo,
  SingleResponse,
  TBSRequest,
  id_pkix_ocsp_basic,
  id_pkix_ocsp_nonce,
} from "@peculiar/asn1-ocsp";
import { AlgorithmIdentifier, Certificate, CRLReason, Extension } from "@peculiar/asn1-x509";
import { malformed } from "../../services/kernel/errors.js";
import { ext, parseCertificate, signedEnvelope, wholeSeconds } from "./cert.js";
import { derTlv } from "./tlv.js";
import { REVOCATION_REASONS, type RevocationReason } from "./crl.js";
import { serialHex } from "./der.js";
import { OID, type Signer } from "./keys.js";

export type OcspStatus = "good" | "revoked" | "unknown";

/** What an issuer the responder speaks for tells it about one serial. */
export interface OcspAnswer {
  status: OcspStatus;
  revokedAt?: Date;
  reason?: RevocationReason;
}

/** An issuer the responder answers for: its name and key hashes and how to sign. */
export interface OcspIssuer {
  /** Issuer certificate DER (its subject Name and key are matched against CertIDs). */
  certDer: Buffer;
  /** Key that signs responses: the issuer's own or a delegated responder's. */
  signer: Signer;
  /** The responder certificate included in the response (the issuer's, or the delegated one). */
  responderCertDer: Buffer;
  lookup(serial: string): OcspAnswer;
}

const HASHES: Record<string, "sha1" | "sha256" | "sha384" | "sha512"> = {
  [OID.sha1]: "sha1",
  [OID.sha256]: "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};

/** The two hashes a CertID carries for an issuer: of its subject Name DER and of its public key bits. */
export function issuerHashes(certDer: Buffer, hash: "sha1" | "sha256" | "sha384" | "sha512"): { nameHash: string; keyHash: string } {
  const { nameDer, keyBits } = issuerParts(certDer);
  return { nameHash: createHash(hash).update(nameDer).digest("hex"), keyHash: createHash(hash).update(keyBits).digest("hex") };
}

/** Per issuer certificate, what every response repeats: read once, not per request. */
interface IssuerParts {
  nameDer: Buffer;
  keyBits: Buffer;
  hashes: Map<string, { nameHash: string; keyHash: string }>;
  responderKeyId: Buffer;
}
const partsCache = new WeakMap<Buffer, IssuerParts>();
function issuerParts(certDer: Buffer): IssuerParts {
  let p = partsCache.get(certDer);
  if (!p) {
    const cert = parseCertificate(certDer);
    const keyBits = Buffer.from(cert.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey);
    p = { nameDer: Buffer.from(AsnConvert.serialize(cert.tbsCertificate.subject)), keyBits, hashes: new Map(), responderKeyId: createHash("sha1").update(keyBits).digest() };
    partsCache.set(certDer, p);
  }
  return p;
}
function cachedHashes(certDer: Buffer, hash: "sha1" | "sha256" | "sha384" | "sha512") {
  const parts = issuerParts(certDer);
  let h = parts.hashes.get(hash);
  if (!h) parts.hashes.set(hash, (h = issuerHashes(certDer, hash)));
  return h;
}

const statusOnly = (status: OCSPResponseStatus): Buffer => Buffer.from(AsnConvert.serialize(new OCSPResponse({ responseStatus: status })));

/** The status-only `tryLater` response (RFC 6960 4.2.1): the responder cannot vouch for any status now. */
export const tryLaterResponse = (): Buffer => statusOnly(OCSPResponseStatus.tryLater);

/** How long a good/revoked answer may be cached by relying parties. */
export const OCSP_VALIDITY_MS = 60 * 60 * 1000;

/** A responder's answer with what it said: the status per CertID (none for a status-only error) and whether a nonce was echoed. */
export interface OcspReply {
  der: Buffer;
  statuses: OcspStatus[];
  nonce: boolean;
}

/**
 * Answers an RFC 6960 request. Malformed requests get `malformedRequest`; a request about an issuer the
 * responder does not serve gets `unauthorized`; otherwise one signed basic response covering every
 * CertID, echoing the nonce.
 */
export function answerOcsp(requestDer: Uint8Array, issuers: OcspIssuer[], at = new Date()): OcspReply {
  const refused = (status: OCSPResponseStatus): OcspReply => ({ der: statusOnly(status), statuses: [], nonce: false });
  // GeneralizedTime without fractions (RFC 5280 4.1.2.5.2 style; some clients reject fractional seconds).
  const now = wholeSeconds(at);
  let req: OCSPRequest;
  try {
    req = AsnConvert.parse(requestDer, OCSPRequest);
  } catch {
    return refused(OCSPResponseStatus.malformedRequest);
  }
  const list = req.tbsRequest.requestList;
  if (list.length === 0) return refused(OCSPResponseStatus.malformedRequest);
  let chosen: OcspIssuer | undefined;
  const responses: SingleResponse[] = [];
  const statuses: OcspStatus[] = [];
  for (const r of list) {
    const id = r.reqCert;
    const hash = HASHES[id.hashAlgorithm.algorithm];
    if (!hash) return refused(OCSPResponseStatus.malformedRequest);
    const nameHash = Buffer.from(id.issuerNameHash.buffer).toString("hex");
    const keyHash = Buffer.from(id.issuerKeyHash.buffer).toString("hex");
    const issuer = issuers.find((i) => {
      const h = cachedHashes(i.certDer, hash);
      return h.nameHash === nameHash && h.keyHash === keyHash;
    });
    if (!issuer || (chosen && chosen !== issuer)) return refused(OCSPResponseStatus.unauthorized);
    chosen = issuer;
    const answer = issuer.lookup(serialHex(id.serialNumber));
    statuses.push(answer.status);
    const certStatus =
      answer.status === "good"
        ? new CertStatus({ good: null })
        : answer.status === "revoked"
          ? new CertStatus({
              revoked: new RevokedInfo({
                revocationTime: answer.revokedAt ?? now,
                ...(answer.reason && answer.reason !== "unspecified" ? { revocationReason: new CRLReason(REVOCATION_REASONS[answer.reason]) } : {}),
              }),
            })
          : new CertStatus({ unknown: null });
    responses.push(new SingleResponse({ certID: id, certStatus, thisUpdate: now, nextUpdate: new Date(now.getTime() + OCSP_VALIDITY_MS) }));
  }
  const issuer = chosen!;
  const nonce = req.tbsRequest.requestExtensions?.find((e) => e.extnID === id_pkix_ocsp_nonce);
  const tbs = new ResponseData({
    responderID: new ResponderID({ byKey: new OctetString(issuerParts(issuer.responderCertDer).responderKeyId) }),
    producedAt: now,
    responses,
    ...(nonce ? { responseExtensions: [new Extension({ extnID: id_pkix_ocsp_nonce, critical: false, extnValue: nonce.extnValue })] } : {}),
  });
  // BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature, [0] EXPLICIT SEQUENCE OF Certificate },
  // wrapped in OCSPResponse { successful, [0] EXPLICIT ResponseBytes { id-pkix-ocsp-basic, OCTET STRING } }:
  // assembled from DER so the responder certificate is copied, not decoded and encoded again per request.
  const basic = signedEnvelope(new Uint8Array(AsnConvert.serialize(tbs)), issuer.signer, derTlv(0xa0, derTlv(0x30, issuer.responderCertDer)));
  return { der: derTlv(0x30, SUCCESSFUL, derTlv(0xa0, derTlv(0x30, BASIC_OID, derTlv(0x04, basic)))), statuses, nonce: nonce !== undefined };
}

const SUCCESSFUL = Buffer.from([0x0a, 0x01, 0x00]);
/** OBJECT IDENTIFIER id-pkix-ocsp-basic (1.3.6.1.5.5.7.48.1.1). */
const BASIC_OID = Buffer.from("06092b0601050507300101", "hex");

/** A request for one certificate (SHA-1 CertID as most clients send), with a nonce unless `nonce` is null. */
export function buildOcspRequest(certDer: Buffer, issuerDer: Buffer, nonce: Buffer | null = randomBytes(16)): Buffer {
  const cert = parseCertificate(certDer);
  const h = issuerHashes(issuerDer, "sha1");
  const certId = new CertID({
    hashAlgorithm: new AlgorithmIdentifier({ algorithm: OID.sha1, parameters: null }),
    issuerNameHash: new OctetString(Buffer.from(h.nameHash, "hex")),
    issuerKeyHash: new OctetString(Buffer.from(h.keyHash, "hex")),
    serialNumber: cert.tbsCertificate.serialNumber,
  });
  const tbs = new TBSRequest({ requestList: [new Request({ reqCert: certId })], ...(nonce ? { requestExtensions: [ext(id_pkix_ocsp_nonce, false, new Nonce(nonce))] } : {}) });
  return Buffer.from(AsnConvert.serialize(new OCSPRequest({ tbsRequest: tbs })));
}

export interface OcspResult {
  /** `successful`, `malformedRequest`, `unauthorized`, ... */
  responseStatus: string;
  /** True when the signature verifies with the issuer's key or a delegated responder certified by it. */
  signatureValid: boolean;
  responses: { serial: string; status: OcspStatus; revokedAt?: Date; reason?: string; thisUpdate: Date; nextUpdate?: Date }[];
}

const STATUS_NAMES: Record<number, string> = { 0: "successful", 1: "malformedRequest", 2: "internalError", 3: "tryLater", 5: "sigRequired", 6: "unauthorized" };
const REASON_NAMES = Object.fromEntries(Object.entries(REVOCATION_REASONS).map(([k, v]) => [v, k]));

/** Reads a DER OCSP response and checks its signature against the issuer (or a responder it issued). */
export function readOcspResponse(der: Uint8Array, issuerDer: Buffer): OcspResult {
  let resp: OCSPResponse;
  try {
    resp = AsnConvert.parse(der, OCSPResponse);
  } catch {
    throw malformed("not a DER OCSP response");
  }
  const responseStatus = STATUS_NAMES[resp.responseStatus] ?? String(resp.responseStatus);
  if (!resp.responseBytes) return { responseStatus, signatureValid: false, responses: [] };
  const basic = AsnConvert.parse(resp.responseBytes.response, BasicOCSPResponse);
  const tbsDer = basic.tbsResponseDataRaw ? Buffer.from(basic.tbsResponseDataRaw) : Buffer.from(AsnConvert.serialize(basic.tbsResponseData));
  const issuerCert = parseCertificate(issuerDer);
  const signers: Certificate[] = [issuerCert, ...(basic.certs ?? []).filter((c) => isDelegatedBy(c, issuerCert))];
  const signatureValid = signers.some((c) => verifyWith(c, basic.signatureAlgorithm.algorithm, tbsDer, Buffer.from(basic.signature)));
  return {
    responseStatus,
    signatureValid,
    responses: basic.tbsResponseData.responses.map((r) => ({
      serial: serialHex(r.certID.serialNumber),
      status: r.certStatus.revoked ? "revoked" : r.certStatus.good !== undefined ? "good" : "unknown",
      ...(r.certStatus.revoked ? { revokedAt: r.certStatus.revoked.revocationTime, reason: REASON_NAMES[r.certStatus.revoked.revocationReason?.reason ?? 0] ?? "unspecified" } : {}),
      thisUpdate: r.thisUpdate,
      ...(r.nextUpdate ? { nextUpdate: r.nextUpdate } : {}),
    })),
  };
}

function spkiKey(cert: Certificate) {
  return createPublicKey({ key: Buffer.from(AsnConvert.serialize(cert.tbsCertificate.subjectPublicKeyInfo)), format: "der", type: "spki" });
}

const SIG_HASH: Record<string, string> = { [OID.ecdsaWithSHA256]: "sha256", [OID.ecdsaWithSHA384]: "sha384", [OID.sha256WithRSA]: "sha256", [OID.sha384WithRSA]: "sha384" };

function verifyWith(cert: Certificate, alg: string, data: Buffer, sig: Buffer): boolean {
  const hash = SIG_HASH[alg];
  if (!hash) return false;
  const key = spkiKey(cert);
  try {
    return nodeVerify(hash, data, key.asymmetricKeyType === "ec" ? { key, dsaEncoding: "der" } : key, sig);
  } catch {
    return false;
  }
}

/** A responder certificate signed by the issuer (its EKU is checked by the relying party's own stack). */
function isDelegatedBy(c: Certificate, issuer: Certificate): boolean {
  const tbs = Buffer.from(AsnConvert.serialize(c.tbsCertificate));
  const sameIssuer = Buffer.compare(Buffer.from(AsnConvert.serialize(c.tbsCertificate.issuer)), Buffer.from(AsnConvert.serialize(issuer.tbsCertificate.subject))) === 0;
  return sameIssuer && verifyWith(issuer, c.signatureAlgorithm.algorithm, tbs, Buffer.from(c.signatureValue));
}

