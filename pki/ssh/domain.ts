import type { Decider, EventEnvelope, NewEvent } from "../../services/kernel/index.js";
import { alreadyExists, invalid, notFound } from "../../services/kernel/errors.js";
import { assertCidr, ipInCidr, normalDnsName, normalIp, ownedBy, assertDnsName } from "../domain/names.js";
import type { SshCertKind } from "./cert.js";
import { PkiEventTypes } from "../contract.js";

/** Event types of the SSH part of the PKI (stream REALM_PKI, aggregates `ssh-ca` and `ssh-cert`), from the contract. */
export const SshEventTypes = {
  SshCaCreated: PkiEventTypes.SshCaCreated,
  SshCaPolicyChanged: PkiEventTypes.SshCaPolicyChanged,
  SshKeyIdRevoked: PkiEventTypes.SshKeyIdRevoked,
  SshCertificateIssued: PkiEventTypes.SshCertificateIssued,
  SshCertificateRevoked: PkiEventTypes.SshCertificateRevoked,
} as const;
const E = SshEventTypes;

/** Flag extensions OpenSSH knows for user certificates (what `ssh-keygen -s` grants by default). */
export const USER_EXTENSIONS = ["no-touch-required", "permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty", "permit-user-rc"] as const;
export const DEFAULT_USER_EXTENSIONS = ["permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty", "permit-user-rc"];

/** What an issuer's SSH CA grants: lifetimes, the extensions a user certificate may carry, forced critical options. */
export interface SshPolicy {
  /** Extensions user certificates get by default and at most (a request may ask for fewer). */
  userExtensions: string[];
  userDefaultHours: number;
  userMaxHours: number;
  hostDefaultDays: number;
  hostMaxDays: number;
  /** Forced on every user certificate when set (a request may not name another). */
  forceCommand?: string | undefined;
  /** CIDRs forced on every user certificate when set (a request may narrow within them). */
  sourceAddress?: string[] | undefined;
}

export const DEFAULT_SSH_POLICY: SshPolicy = { userExtensions: DEFAULT_USER_EXTENSIONS, userDefaultHours: 16, userMaxHours: 24 * 7, hostDefaultDays: 30, hostMaxDays: 397 };

/** The public half of an issuer's SSH CA, as SshCaCreated records it (the private half is in realm_pki_keys). */
export interface SshCaFacts {
  keySpec: string;
  /** `<type> <base64>`: the line for TrustedUserCAKeys and @cert-authority. */
  publicKey: string;
  fingerprint: string;
  /** Name of the sealed private key in realm_pki_keys (SHA-256 of its SPKI). */
  keySha256: string;
  createdAt: string;
}

export interface SshCaState {
  id: string;
  exists: boolean;
  ca?: SshCaFacts | undefined;
  policy: SshPolicy;
  /** Key ids revoked for every certificate of this CA (the KRL's key id section). */
  revokedKeyIds: { keyId: string; at: string; reason?: string | undefined }[];
}

export type SshCaCommand = { type: "create"; ca: SshCaFacts } | { type: "policy"; policy: SshPolicy } | { type: "revokeKeyId"; keyId: string; at: string; reason: string };

export const sshCaDecider: Decider<SshCaState, SshCaCommand> = {
  aggregateType: "ssh-ca",
  initialState: (id) => ({ id, exists: false, policy: DEFAULT_SSH_POLICY, revokedKeyIds: [] }),
  decide(s, c): NewEvent[] {
    switch (c.type) {
      case "create":
        if (s.exists) throw alreadyExists(`issuer ${s.id} already has an SSH CA (${s.ca!.fingerprint})`);
        return [{ type: E.SshCaCreated, data: c.ca }];
      case "policy":
        if (!s.exists) throw notFound(`issuer ${s.id} has no SSH CA: realm ssh ca create ${s.id}`);
        if (JSON.stringify(c.policy) === JSON.stringify(s.policy)) return [];
        return [{ type: E.SshCaPolicyChanged, data: c.policy }];
      case "revokeKeyId":
        if (!s.exists) throw notFound(`issuer ${s.id} has no SSH CA`);
        if (s.revokedKeyIds.some((k) => k.keyId === c.keyId)) throw alreadyExists(`key id ${JSON.stringify(c.keyId)} is already revoked for SSH CA ${s.id}`);
        return [{ type: E.SshKeyIdRevoked, data: { keyId: c.keyId, revokedAt: c.at, reason: c.reason } }];
    }
  },
  evolve: evolveSshCa,
};

export function evolveSshCa(s: SshCaState, e: EventEnvelope): SshCaState {
  switch (e.type) {
    case E.SshCaCreated:
      return { ...s, exists: true, ca: e.data as SshCaFacts };
    case E.SshCaPolicyChanged:
      return { ...s, policy: e.data as SshPolicy };
    case E.SshKeyIdRevoked: {
      const d = e.data as { keyId: string; revokedAt: string; reason?: string };
      return { ...s, revokedKeyIds: [...s.revokedKeyIds, { keyId: d.keyId, at: d.revokedAt, ...(d.reason ? { reason: d.reason } : {}) }] };
    }
    default:
      return s;
  }
}

/** What SshCertificateIssued records: public facts and the certificate itself (no key of anyone). */
export interface SshIssuedFacts {
  /** Decimal, as `ssh-keygen -L` prints it. */
  serial: string;
  issuer: string;
  caFingerprint: string;
  kind: SshCertKind;
  keyId: string;
  principals: string[];
  validAfter: string;
  validBefore: string;
  criticalOptions: Record<string, string>;
  extensions: string[];
  /** The certified key: its type and fingerprint. */
  key: { type: string; fingerprint: string };
  /** The realm principal a user certificate is for, when one was named. */
  principal?: string | undefined;
  /** The `-cert.pub` line. */
  certificate: string;
}

export interface SshCertState extends Partial<SshIssuedFacts> {
  serial: string;
  exists: boolean;
  revoked?: { at: string; reason: string } | undefined;
}

export type SshCertCommand = { type: "issue"; facts: SshIssuedFacts } | { type: "revoke"; reason: string; at: string };

/** One aggregate per SSH certificate (id = its decimal serial): issued once, revoked at most once. */
export const sshCertDecider: Decider<SshCertState, SshCertCommand> = {
  aggregateType: "ssh-cert",
  initialState: (serial) => ({ serial, exists: false }),
  decide(s, c): NewEvent[] {
    if (c.type === "issue") {
      if (s.exists) throw alreadyExists(`an SSH certificate with serial ${s.serial} exists`);
      if (c.facts.serial !== s.serial) throw invalid("serial mismatch");
      return [{ type: E.SshCertificateIssued, data: c.facts }];
    }
    if (!s.exists) throw notFound(`no SSH certificate with serial ${s.serial}`);
    if (s.revoked) throw alreadyExists(`SSH certificate ${s.serial} was already revoked at ${s.revoked.at}`);
    return [{ type: E.SshCertificateRevoked, data: { reason: c.reason, revokedAt: c.at, issuer: s.issuer, keyId: s.keyId } }];
  },
  evolve: evolveSshCert,
};

export function evolveSshCert(s: SshCertState, e: EventEnvelope): SshCertState {
  if (e.type === E.SshCertificateIssued) return { ...s, ...(e.data as SshIssuedFacts), exists: true };
  if (e.type === E.SshCertificateRevoked) {
    const d = e.data as { reason: string; revokedAt: string };
    return { ...s, revoked: { at: d.revokedAt, reason: d.reason } };
  }
  return s;
}

// ---- deciding what a certificate carries (pure) ----

const PRINCIPAL = /^[A-Za-z0-9._@+=-][A-Za-z0-9._@+=\-$]{0,63}$/;
const KEY_ID = /^[\x21-\x7e]{1,128}$/;
/** Clock skew allowance: certificates are valid from five minutes before signing (as step-ca does). */
const BACKDATE_S = 300;
const REASONS = ["unspecified", "keyCompromise", "superseded", "cessationOfOperation", "affiliationChanged"] as const;
export const SSH_REVOCATION_REASONS: readonly string[] = REASONS;

export function assertPrincipalName(p: string): string {
  if (!PRINCIPAL.test(p)) throw invalid(`SSH principal ${JSON.stringify(p.slice(0, 80))} must be 1..64 of A-Z a-z 0-9 . _ @ + = - (no commas, spaces or control characters)`);
  return p;
}

export function assertKeyId(k: string): string {
  if (!KEY_ID.test(k)) throw invalid("a key id is 1..128 printable ASCII characters without spaces");
  return k;
}

/** Checks and normalises a policy change; VALIDATION names the first thing wrong. */
export function normalSshPolicy(p: Partial<SshPolicy>, base: SshPolicy): SshPolicy {
  const out: SshPolicy = { ...base, ...Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) };
  out.userExtensions = [...new Set(out.userExtensions)].sort();
  for (const x of out.userExtensions) if (!(USER_EXTENSIONS as readonly string[]).includes(x)) throw invalid(`extension ${JSON.stringify(x)} is not one of ${USER_EXTENSIONS.join(", ")}`);
  const hours = (v: number, what: string, max: number) => {
    if (!Number.isInteger(v) || v < 1 || v > max) throw invalid(`${what} must be an integer 1..${max}`);
  };
  hours(out.userMaxHours, "userMaxHours", 24 * 366);
  hours(out.userDefaultHours, "userDefaultHours", out.userMaxHours);
  hours(out.hostMaxDays, "hostMaxDays", 3650);
  hours(out.hostDefaultDays, "hostDefaultDays", out.hostMaxDays);
  if (out.forceCommand !== undefined && (out.forceCommand.length === 0 || out.forceCommand.length > 1024)) throw invalid("forceCommand must be 1..1024 characters");
  if (out.sourceAddress !== undefined) {
    if (out.sourceAddress.length === 0) delete out.sourceAddress;
    else for (const c of out.sourceAddress) assertCidr(c);
  }
  if (!out.forceCommand) delete out.forceCommand;
  return out;
}

export interface UserCertRequest {
  /** Principals the request names (or, with a realm principal, those derived from it). */
  principals: string[];
  /** When the request names a realm principal: the login names and groups it may use (a request may ask for fewer). */
  allowed?: string[] | undefined;
  hours?: number | undefined;
  extensions?: string[] | undefined;
  forceCommand?: string | undefined;
  sourceAddress?: string[] | undefined;
  now: Date;
  policy: SshPolicy;
}

export interface CertPlan {
  principals: string[];
  validAfter: number;
  validBefore: number;
  criticalOptions: Record<string, string>;
  extensions: string[];
}

/** What a user certificate carries: principals within what is allowed, lifetime and options within policy. */
export function planUserCertificate(r: UserCertRequest): CertPlan {
  const principals = [...new Set(r.principals.map((p) => assertPrincipalName(p.trim())))];
  if (principals.length === 0) throw invalid("a user certificate needs at least one principal");
  if (principals.length > 256) throw invalid("at most 256 principals");
  if (r.allowed) for (const p of principals) if (!r.allowed.includes(p)) throw invalid(`principal ${JSON.stringify(p)} is not one of the person's login names and groups (${r.allowed.join(", ")})`);
  const hours = r.hours ?? r.policy.userDefaultHours;
  if (!Number.isInteger(hours) || hours < 1 || hours > r.policy.userMaxHours) throw invalid(`validity must be 1..${r.policy.userMaxHours} hours (the SSH CA's policy)`);
  const extensions = r.extensions === undefined ? [...r.policy.userExtensions] : [...new Set(r.extensions)];
  for (const x of extensions) if (!r.policy.userExtensions.includes(x)) throw invalid(`extension ${JSON.stringify(x)} is not granted by the SSH CA's policy (${r.policy.userExtensions.join(", ") || "none"})`);
  const criticalOptions: Record<string, string> = {};
  if (r.policy.forceCommand !== undefined && r.forceCommand !== undefined && r.forceCommand !== r.policy.forceCommand) throw invalid("the SSH CA's policy forces another command");
  const forceCommand = r.policy.forceCommand ?? r.forceCommand;
  if (forceCommand !== undefined) {
    if (forceCommand.length === 0 || forceCommand.length > 1024 || /[\0\n]/.test(forceCommand)) throw invalid("force-command must be 1..1024 characters on one line");
    criticalOptions["force-command"] = forceCommand;
  }
  const cidrs = r.sourceAddress?.map((c) => c.trim());
  if (cidrs) {
    if (cidrs.length === 0 || cidrs.length > 64) throw invalid("source-address needs 1..64 CIDRs");
    for (const c of cidrs) assertCidr(c);
    if (r.policy.sourceAddress) for (const c of cidrs) if (!r.policy.sourceAddress.some((p) => ipInCidr(c.split("/")[0]!, p))) throw invalid(`source address ${c} is outside what the SSH CA's policy allows (${r.policy.sourceAddress.join(", ")})`);
  }
  const source = cidrs ?? r.policy.sourceAddress;
  if (source) criticalOptions["source-address"] = source.join(",");
  const t = Math.floor(r.now.getTime() / 1000);
  return { principals, validAfter: t - BACKDATE_S, validBefore: t + hours * 3600, criticalOptions, extensions: extensions.sort() };
}

export interface HostCertRequest {
  names: string[];
  days?: number | undefined;
  now: Date;
  policy: SshPolicy;
  /** Zones of the realm and the issuer's allowed domains: host names must lie in them. */
  ownedDomains: Iterable<string>;
  /** The issuer's allowed IP ranges (IP principals must lie in them). */
  allowIps: string[];
}

/** A host certificate names hosts the realm owns (DNS names in its zones, IPs in the issuer's ranges); no options. */
export function planHostCertificate(r: HostCertRequest): CertPlan {
  const owned = [...r.ownedDomains];
  const principals: string[] = [];
  for (const raw of r.names) {
    const n = raw.trim();
    let name: string;
    if (/^[0-9.]+$/.test(n) || n.includes(":")) {
      name = normalIp(n);
      if (!r.allowIps.some((c) => ipInCidr(name, c))) throw invalid(`IP address ${name} is not in the issuer's allowed ranges (${r.allowIps.join(", ") || "none"})`);
    } else {
      name = normalDnsName(n);
      assertDnsName(name, false);
      if (!ownedBy(name, owned)) throw invalid(`host ${JSON.stringify(name)} is not a name the realm owns (no zone of the realm or domain of the issuer's allow-list holds it)`);
    }
    if (!principals.includes(name)) principals.push(name);
  }
  if (principals.length === 0) throw invalid("a host certificate needs at least one host name");
  if (principals.length > 64) throw invalid("at most 64 host names");
  const days = r.days ?? r.policy.hostDefaultDays;
  if (!Number.isInteger(days) || days < 1 || days > r.policy.hostMaxDays) throw invalid(`validity must be 1..${r.policy.hostMaxDays} days (the SSH CA's policy)`);
  const t = Math.floor(r.now.getTime() / 1000);
  return { principals, validAfter: t - BACKDATE_S, validBefore: t + days * 86_400, criticalOptions: {}, extensions: [] };
}
