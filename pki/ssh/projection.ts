import type { EventEnvelope, ProjectionDefinition } from "../../services/kernel/index.js";
import { evolveSshCa, evolveSshCert, sshCaDecider, sshCertDecider, type SshCaState, type SshCertState } from "./domain.js";

/** The SSH read model: CAs by issuer, certificates by serial, and what each CA's KRL lists. */
export interface SshModel {
  cas: Map<string, SshCaState>;
  certs: Map<string, SshCertState>;
  /** Issuer -> revoked serials (decimal). */
  revokedSerials: Map<string, Set<string>>;
  /** Issuer -> stream sequence of the last revocation applied: the KRL's version (the same on every replica). */
  krlVersion: Map<string, number>;
}

/** Folds the SSH events of REALM_PKI (aggregates `ssh-ca`, `ssh-cert`); every other PKI event is passed over. */
export function sshProjection(): ProjectionDefinition<SshModel> {
  return {
    name: "pki-ssh",
    version: 1,
    initial: () => ({ cas: new Map(), certs: new Map(), revokedSerials: new Map(), krlVersion: new Map() }),
    apply(m, e: EventEnvelope, seq: number) {
      const id = e.aggregate.id;
      if (e.aggregate.type === sshCaDecider.aggregateType) {
        const before = m.cas.get(id) ?? sshCaDecider.initialState(id);
        const after = evolveSshCa(before, e);
        m.cas.set(id, after);
        if (after.revokedKeyIds.length !== before.revokedKeyIds.length) m.krlVersion.set(id, seq);
      } else if (e.aggregate.type === sshCertDecider.aggregateType) {
        const before = m.certs.get(id) ?? sshCertDecider.initialState(id);
        const c = evolveSshCert(before, e);
        m.certs.set(id, c);
        if (!before.revoked && c.revoked && c.issuer) {
          let s = m.revokedSerials.get(c.issuer);
          if (!s) m.revokedSerials.set(c.issuer, (s = new Set()));
          s.add(id);
          m.krlVersion.set(c.issuer, seq);
        }
      }
      return m;
    },
    // Snapshot records: one per CA, certificate, revoked-serial set and KRL version (Sets as arrays).
    snapshot: {
      *encode(m) {
        for (const [id, c] of m.cas) yield ["ca", id, c];
        for (const [id, c] of m.certs) yield ["cert", id, c];
        for (const [id, serials] of m.revokedSerials) yield ["revoked", id, [...serials]];
        for (const [id, v] of m.krlVersion) yield ["krl", id, v];
      },
      decode(records) {
        const m: SshModel = { cas: new Map(), certs: new Map(), revokedSerials: new Map(), krlVersion: new Map() };
        for (const rec of records) {
          const r = rec as [string, string, unknown];
          if (r[0] === "ca") m.cas.set(r[1], r[2] as SshCaState);
          else if (r[0] === "cert") m.certs.set(r[1], r[2] as SshCertState);
          else if (r[0] === "revoked") m.revokedSerials.set(r[1], new Set(r[2] as string[]));
          else if (r[0] === "krl") m.krlVersion.set(r[1], r[2] as number);
          else throw new Error(`not an SSH record: ${JSON.stringify(r[0])}`);
        }
        return m;
      },
    },
  };
}

/** An SSH certificate as queries answer it. */
export function sshCertView(c: SshCertState, now: Date, revokedKeyIds: { keyId: string; at: string; reason?: string | undefined }[] = []) {
  const byKeyId = revokedKeyIds.find((k) => k.keyId === c.keyId);
  const status = c.revoked || byKeyId ? "revoked" : c.validBefore && new Date(c.validBefore).getTime() < now.getTime() ? "expired" : "valid";
  return {
    serial: c.serial,
    issuer: c.issuer,
    kind: c.kind,
    keyId: c.keyId,
    principals: c.principals,
    validAfter: c.validAfter,
    validBefore: c.validBefore,
    criticalOptions: c.criticalOptions,
    extensions: c.extensions,
    key: c.key,
    status,
    ...(c.principal ? { principal: c.principal } : {}),
    ...(c.revoked ? { revoked: c.revoked } : byKeyId ? { revoked: { at: byKeyId.at, reason: byKeyId.reason ?? "unspecified", byKeyId: true } } : {}),
  };
}
