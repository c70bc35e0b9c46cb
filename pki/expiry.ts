import type { PkiModel } from "./projection.js";
import type { SshModel } from "./ssh/projection.js";
import { intermediatesOf } from "./revocation.js";

/** One thing of the PKI that expires: a leaf, an intermediate, or an SSH certificate. */
export interface Expiring {
  kind: "certificate" | "intermediate" | "ssh-certificate";
  issuer: string;
  /** Serial (hex for X.509, decimal for SSH). */
  serial: string;
  name: string;
  notAfter: string;
  /** Seconds from now (negative never: expired ones are not listed). */
  expiresInSeconds: number;
}

/**
 * Everything still valid that expires within `horizonMs` of `now`, soonest first: leaves not revoked,
 * every intermediate an issuer still answers for, SSH certificates not revoked. SSH CA keys have no
 * expiry in OpenSSH, so they never appear here.
 */
export function expiringWithin(pki: PkiModel, ssh: SshModel, now: Date, horizonMs: number): Expiring[] {
  const t = now.getTime();
  const until = t + horizonMs;
  const out: Expiring[] = [];
  const add = (e: Omit<Expiring, "expiresInSeconds">) => {
    const end = new Date(e.notAfter).getTime();
    if (end > t && end <= until) out.push({ ...e, expiresInSeconds: Math.floor((end - t) / 1000) });
  };
  for (const c of pki.certificates.values()) if (c.exists && !c.revoked && c.notAfter) add({ kind: "certificate", issuer: c.issuer ?? "", serial: c.serial, name: c.commonName ?? "", notAfter: c.notAfter });
  for (const st of pki.issuers.values()) for (const i of intermediatesOf(st)) add({ kind: "intermediate", issuer: st.id, serial: i.serial, name: i.subject, notAfter: i.notAfter });
  for (const c of ssh.certs.values()) {
    if (!c.exists || c.revoked || !c.validBefore) continue;
    if (ssh.cas.get(c.issuer ?? "")?.revokedKeyIds.some((k) => k.keyId === c.keyId)) continue;
    add({ kind: "ssh-certificate", issuer: c.issuer ?? "", serial: c.serial, name: c.keyId ?? "", notAfter: c.validBefore });
  }
  return out.sort((a, b) => a.expiresInSeconds - b.expiresInSeconds);
}

/**
 * Prometheus lines: per kind, seconds until the soonest valid one expires (absent when there is none), and
 * how many expire within 30 days. What an alert on "a certificate nobody renewed" needs.
 */
export function expiryMetrics(pki: PkiModel, ssh: SshModel, now: Date): string[] {
  const all = expiringWithin(pki, ssh, now, 100 * 365 * 86_400_000);
  const lines = [
    "# HELP realm_pki_soonest_expiry_seconds Seconds until the soonest still-valid certificate of this kind expires.",
    "# TYPE realm_pki_soonest_expiry_seconds gauge",
  ];
  const kinds = ["certificate", "intermediate", "ssh-certificate"] as const;
  for (const k of kinds) {
    const first = all.find((e) => e.kind === k);
    if (first) lines.push(`realm_pki_soonest_expiry_seconds{kind="${k}",issuer="${first.issuer}",serial="${first.serial}"} ${first.expiresInSeconds}`);
  }
  lines.push("# HELP realm_pki_expiring_30d Still-valid certificates of this kind that expire within 30 days.", "# TYPE realm_pki_expiring_30d gauge");
  for (const k of kinds) lines.push(`realm_pki_expiring_30d{kind="${k}"} ${all.filter((e) => e.kind === k && e.expiresInSeconds <= 30 * 86_400).length}`);
  return lines;
}
