import type { Decider, EventEnvelope, NewEvent } from "../../services/kernel/index.js";
import { conflict, invalid, notFound } from "../../services/kernel/errors.js";
import { PkiEventTypes as E } from "../contract.js";
import { EMPTY_POLICY, normalPolicy, type IssuerPolicy } from "./issuance.js";

/** An online intermediate as imported: public facts only (its key stays in the issuer's key file). */
export interface IntermediateFacts {
  serial: string;
  subject: string;
  fingerprint: string;
  notBefore: string;
  notAfter: string;
  permittedDns: string[];
  publicKeySha256: string;
  certPem: string;
  rootPem: string;
  rootFingerprint: string;
}

export interface IssuerState {
  id: string;
  exists: boolean;
  /** Key made online, waiting for the ceremony to sign its CSR. */
  pending?: { spec: string; publicKeySha256: string; csrPem: string; subject: string } | undefined;
  active?: IntermediateFacts | undefined;
  /** Intermediates this issuer used before (their leaves stay answerable by OCSP and CRL). */
  previous: IntermediateFacts[];
  policy: IssuerPolicy;
  rootCrl?: { der: string; crlNumber: number; thisUpdate: string } | undefined;
}

export type IssuerCommand =
  | { type: "prepare"; spec: string; publicKeySha256: string; csrPem: string; subject: string }
  | { type: "import"; intermediate: IntermediateFacts }
  | { type: "policy"; allowDomains?: string[] | undefined; allowIps?: string[] | undefined }
  | { type: "rootCrl"; der: string; crlNumber: number; thisUpdate: string; rootFingerprint: string };

const ISSUER_ID = /^[a-z][a-z0-9-]{0,31}$/;
export function assertIssuerId(id: string): string {
  if (!ISSUER_ID.test(id) || id === "root") throw invalid(`issuer name ${JSON.stringify(id)} must be 1..32 of a-z, 0-9, '-', starting with a letter (and not "root")`);
  return id;
}

/**
 * One aggregate per online issuer. prepare (key made, CSR out) -> import (the ceremony's signature over
 * exactly that key) -> issue; a later prepare + import rotates the intermediate.
 */
export const issuerDecider: Decider<IssuerState, IssuerCommand> = {
  aggregateType: "issuer",
  initialState: (id) => ({ id, exists: false, previous: [], policy: EMPTY_POLICY }),
  decide(s, c): NewEvent[] {
    switch (c.type) {
      case "prepare":
        if (s.pending) throw conflict(`issuer ${s.id} already waits for the ceremony to sign its CSR (key ${s.pending.publicKeySha256.slice(0, 16)}); import that certificate first`);
        return [{ type: E.IntermediateKeyPrepared, data: { spec: c.spec, publicKeySha256: c.publicKeySha256, csrPem: c.csrPem, subject: c.subject } }];
      case "import": {
        if (!s.pending) throw invalid(`issuer ${s.id} has no prepared key: run issuer prepare first`);
        if (c.intermediate.publicKeySha256 !== s.pending.publicKeySha256) throw invalid(`the certificate is not for the key issuer ${s.id} prepared (its key ${c.intermediate.publicKeySha256.slice(0, 16)}, prepared ${s.pending.publicKeySha256.slice(0, 16)})`);
        if (s.active?.fingerprint === c.intermediate.fingerprint) return [];
        return [{ type: E.IntermediateImported, data: c.intermediate }];
      }
      case "policy": {
        if (!s.exists) throw notFound(`issuer ${s.id} does not exist`);
        const p = normalPolicy(c);
        if (JSON.stringify(p) === JSON.stringify(s.policy)) return [];
        return [{ type: E.IssuerPolicyChanged, data: p }];
      }
      case "rootCrl": {
        if (!s.active) throw invalid(`issuer ${s.id} has no intermediate yet`);
        if (c.rootFingerprint !== s.active.rootFingerprint) throw invalid("the CRL is not signed by this issuer's root");
        if (s.rootCrl && c.crlNumber <= s.rootCrl.crlNumber) throw conflict(`the realm already has root CRL number ${s.rootCrl.crlNumber}; this one is ${c.crlNumber}`);
        return [{ type: E.RootCrlImported, data: { der: c.der, crlNumber: c.crlNumber, thisUpdate: c.thisUpdate } }];
      }
    }
  },
  evolve: evolveIssuer,
};

export function evolveIssuer(s: IssuerState, e: EventEnvelope): IssuerState {
  switch (e.type) {
    case E.IntermediateKeyPrepared:
      return { ...s, exists: true, pending: e.data as IssuerState["pending"] };
    case E.IntermediateImported:
      return { ...s, exists: true, pending: undefined, active: e.data as IntermediateFacts, previous: s.active ? [...s.previous, s.active] : s.previous };
    case E.IssuerPolicyChanged:
      return { ...s, policy: e.data as IssuerPolicy };
    case E.RootCrlImported:
      return { ...s, rootCrl: e.data as IssuerState["rootCrl"] };
    default:
      return s;
  }
}
