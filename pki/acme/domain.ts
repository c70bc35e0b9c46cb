import type { Decider, EventEnvelope, NewEvent } from "../../services/kernel/index.js";
import { assertCidr, ipInCidr, isWildcard, normalDnsName } from "../domain/names.js";
import { acmeProblem, type ProblemDocument } from "./problems.js";

/**
 * ACME (RFC 8555) as pure decisions: an issuer's ACME configuration, accounts, orders with their
 * authorizations and challenges. Commands in, events out, `evolve` folds events; no clock, no I/O (the
 * time is part of each command). The routes (pki/acme/server.ts) verify JWS, nonces and fetch challenge
 * responses; they hand the facts to these deciders.
 */
export const AcmeEventTypes = {
  AcmeIssuerConfigured: "AcmeIssuerConfigured",
  AcmeAccountCreated: "AcmeAccountCreated",
  AcmeAccountUpdated: "AcmeAccountUpdated",
  AcmeAccountKeyChanged: "AcmeAccountKeyChanged",
  AcmeAccountDeactivated: "AcmeAccountDeactivated",
  AcmeOrderCreated: "AcmeOrderCreated",
  AcmeChallengeStarted: "AcmeChallengeStarted",
  AcmeChallengeValidated: "AcmeChallengeValidated",
  AcmeChallengeFailed: "AcmeChallengeFailed",
  AcmeAuthorizationDeactivated: "AcmeAuthorizationDeactivated",
  AcmeOrderFinalized: "AcmeOrderFinalized",
  AcmeEabKeyCreated: "AcmeEabKeyCreated",
  AcmeEabKeyBound: "AcmeEabKeyBound",
  AcmeEabKeyRevoked: "AcmeEabKeyRevoked",
} as const;
const E = AcmeEventTypes;

export const CHALLENGE_TYPES = ["http-01", "tls-alpn-01", "dns-01"] as const;
export type ChallengeType = (typeof CHALLENGE_TYPES)[number];

// ---------------------------------------------------------------------------------------------------------
// Issuer configuration

export interface AcmeConfig {
  enabled: boolean;
  /** RFC 8555 §7.3.4: new accounts must be bound to an external account (a realm principal). */
  externalAccountRequired: boolean;
  /**
   * CIDR ranges challenge validation may connect to besides public unicast addresses (SSRF guard). Loopback
   * or private ranges only when listed here: tests list 127.0.0.0/8.
   */
  validationNetworks: string[];
  /** Port the http-01 validator connects to (80 in RFC 8555; another only for tests). */
  http01Port: number;
  /** Port the tls-alpn-01 validator connects to (443 in RFC 8737; another only for tests). */
  tlsAlpn01Port: number;
  /** Certificate profile ACME orders are issued under (`server-wildcard` for an order with a wildcard). */
  profile: "server";
  /** Lifetime of ACME certificates in days. */
  days: number;
}

export const DEFAULT_ACME_CONFIG: AcmeConfig = { enabled: false, externalAccountRequired: false, validationNetworks: [], http01Port: 80, tlsAlpn01Port: 443, profile: "server", days: 90 };

export interface AcmeConfigState {
  issuer: string;
  config?: AcmeConfig | undefined;
}

export type AcmeConfigCommand = { type: "configure"; config: Partial<AcmeConfig> };

export const acmeConfigDecider: Decider<AcmeConfigState, AcmeConfigCommand> = {
  aggregateType: "acme-issuer",
  initialState: (issuer) => ({ issuer }),
  decide(s, c): NewEvent[] {
    const next: AcmeConfig = { ...DEFAULT_ACME_CONFIG, ...(s.config ?? {}), ...dropUndefined(c.config) };
    for (const n of next.validationNetworks) assertCidr(n);
    for (const port of [next.http01Port, next.tlsAlpn01Port]) if (!Number.isInteger(port) || port < 1 || port > 65535) throw acmeProblem("malformed", "http01Port and tlsAlpn01Port must be 1..65535");
    if (!Number.isInteger(next.days) || next.days < 1 || next.days > 397) throw acmeProblem("malformed", "days must be 1..397");
    return [{ type: E.AcmeIssuerConfigured, data: { issuer: s.issuer, ...next } }];
  },
  evolve(s, e) {
    if (e.type !== E.AcmeIssuerConfigured) return s;
    const { issuer: _i, ...config } = e.data as AcmeConfig & { issuer: string };
    return { ...s, config };
  },
};

// ---------------------------------------------------------------------------------------------------------
// Accounts

/** A public JWK as the client sent it (RFC 7517); only public members are kept. */
export type PublicJwk = Record<string, string>;

export interface AcmeAccountState {
  id: string;
  exists: boolean;
  issuer?: string;
  jwk?: PublicJwk;
  /** RFC 7638 SHA-256 thumbprint of `jwk` (base64url): what key authorizations and key lookups use. */
  thumbprint?: string;
  contact?: string[];
  status?: "valid" | "deactivated";
  createdAt?: string;
  /** External account binding: the EAB key id and the realm principal it was issued to. */
  eab?: { keyId: string; principal: string } | undefined;
}

export type AcmeAccountCommand =
  | { type: "create"; issuer: string; jwk: PublicJwk; thumbprint: string; contact: string[]; at: string; eab?: { keyId: string; principal: string } | undefined }
  | { type: "update"; contact: string[] }
  | { type: "changeKey"; jwk: PublicJwk; thumbprint: string }
  | { type: "deactivate"; at: string };

export const acmeAccountDecider: Decider<AcmeAccountState, AcmeAccountCommand> = {
  aggregateType: "acme-account",
  initialState: (id) => ({ id, exists: false }),
  decide(s, c): NewEvent[] {
    if (c.type === "create") {
      if (s.exists) throw acmeProblem("malformed", `account ${s.id} exists`, { status: 409 });
      assertContacts(c.contact);
      return [{ type: E.AcmeAccountCreated, data: { issuer: c.issuer, jwk: c.jwk, thumbprint: c.thumbprint, contact: c.contact, createdAt: c.at, ...(c.eab ? { eab: c.eab } : {}) } }];
    }
    if (!s.exists) throw acmeProblem("accountDoesNotExist", `no account ${s.id}`);
    if (s.status === "deactivated") throw acmeProblem("unauthorized", `account ${s.id} is deactivated`);
    if (c.type === "update") {
      assertContacts(c.contact);
      return [{ type: E.AcmeAccountUpdated, data: { contact: c.contact } }];
    }
    if (c.type === "changeKey") {
      if (c.thumbprint === s.thumbprint) throw acmeProblem("malformed", "the new key is the account's current key");
      return [{ type: E.AcmeAccountKeyChanged, data: { jwk: c.jwk, thumbprint: c.thumbprint, oldThumbprint: s.thumbprint } }];
    }
    return [{ type: E.AcmeAccountDeactivated, data: { deactivatedAt: c.at } }];
  },
  evolve: evolveAccount,
};

export function evolveAccount(s: AcmeAccountState, e: EventEnvelope): AcmeAccountState {
  const d = e.data as Record<string, unknown>;
  switch (e.type) {
    case E.AcmeAccountCreated:
      return { ...s, exists: true, status: "valid", issuer: d.issuer as string, jwk: d.jwk as PublicJwk, thumbprint: d.thumbprint as string, contact: d.contact as string[], createdAt: d.createdAt as string, eab: d.eab as AcmeAccountState["eab"] };
    case E.AcmeAccountUpdated:
      return { ...s, contact: d.contact as string[] };
    case E.AcmeAccountKeyChanged:
      return { ...s, jwk: d.jwk as PublicJwk, thumbprint: d.thumbprint as string };
    case E.AcmeAccountDeactivated:
      return { ...s, status: "deactivated" };
    default:
      return s;
  }
}

function assertContacts(contact: string[]): void {
  if (contact.length > 10) throw acmeProblem("invalidContact", "at most 10 contacts");
  for (const c of contact) {
    if (!/^mailto:[^\s@,?]{1,64}@[^\s@,?]{1,253}$/.test(c)) throw acmeProblem(c.startsWith("mailto:") ? "invalidContact" : "unsupportedContact", `contact ${JSON.stringify(c)} is not a mailto: address`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// External account binding keys (the HMAC key itself is sealed in KV, never in an event)

export interface AcmeEabState {
  keyId: string;
  exists: boolean;
  issuer?: string;
  principal?: string;
  createdAt?: string;
  /** The account the key was used for (a key binds one account). */
  account?: string | undefined;
  revoked?: boolean;
}

export type AcmeEabCommand = { type: "create"; issuer: string; principal: string; at: string } | { type: "bind"; account: string } | { type: "revoke"; at: string };

export const acmeEabDecider: Decider<AcmeEabState, AcmeEabCommand> = {
  aggregateType: "acme-eab",
  initialState: (keyId) => ({ keyId, exists: false }),
  decide(s, c): NewEvent[] {
    if (c.type === "create") {
      if (s.exists) throw acmeProblem("malformed", `EAB key ${s.keyId} exists`, { status: 409 });
      if (!/^[a-z][a-z0-9._@:-]{0,127}$/i.test(c.principal)) throw acmeProblem("malformed", "principal must be a principal id");
      return [{ type: E.AcmeEabKeyCreated, data: { issuer: c.issuer, keyId: s.keyId, principal: c.principal, createdAt: c.at } }];
    }
    if (!s.exists || s.revoked) throw acmeProblem("unauthorized", `EAB key ${s.keyId} is unknown or revoked`);
    if (c.type === "bind") {
      if (s.account && s.account !== c.account) throw acmeProblem("unauthorized", `EAB key ${s.keyId} is bound to another account already`);
      if (s.account === c.account) return [];
      return [{ type: E.AcmeEabKeyBound, data: { account: c.account } }];
    }
    return [{ type: E.AcmeEabKeyRevoked, data: { revokedAt: c.at } }];
  },
  evolve(s, e) {
    const d = e.data as Record<string, unknown>;
    if (e.type === E.AcmeEabKeyCreated) return { ...s, exists: true, issuer: d.issuer as string, principal: d.principal as string, createdAt: d.createdAt as string };
    if (e.type === E.AcmeEabKeyBound) return { ...s, account: d.account as string };
    if (e.type === E.AcmeEabKeyRevoked) return { ...s, revoked: true };
    return s;
  },
};

// ---------------------------------------------------------------------------------------------------------
// Orders, authorizations, challenges

export interface Identifier {
  type: "dns";
  value: string;
}

export interface ChallengeState {
  type: ChallengeType;
  token: string;
  status: "pending" | "processing" | "valid" | "invalid";
  validated?: string;
  error?: ProblemDocument;
}

export interface AuthorizationState {
  id: string;
  identifier: Identifier;
  wildcard: boolean;
  challenges: ChallengeState[];
  deactivated?: boolean;
}

export interface AcmeOrderState {
  id: string;
  exists: boolean;
  issuer?: string;
  account?: string;
  identifiers?: Identifier[];
  authorizations?: AuthorizationState[];
  createdAt?: string;
  expires?: string;
  /** Serial of the certificate issued when the order was finalized. */
  certificate?: string;
  finalizedAt?: string;
}

export type AuthzStatus = "pending" | "valid" | "invalid" | "deactivated" | "expired";
export type OrderStatus = "pending" | "ready" | "processing" | "valid" | "invalid";

export function authzStatus(o: AcmeOrderState, a: AuthorizationState, now: Date): AuthzStatus {
  if (a.deactivated) return "deactivated";
  if (a.challenges.some((c) => c.status === "valid")) return "valid";
  if (a.challenges.some((c) => c.status === "invalid")) return "invalid";
  if (o.expires && new Date(o.expires).getTime() <= now.getTime()) return "expired";
  return "pending";
}

/** RFC 8555 §7.1.6: an order's status follows from its authorizations and whether it was finalized. */
export function orderStatus(o: AcmeOrderState, now: Date): OrderStatus {
  if (o.certificate) return "valid";
  const statuses = (o.authorizations ?? []).map((a) => authzStatus(o, a, now));
  if (statuses.some((s) => s === "invalid" || s === "deactivated" || s === "expired")) return "invalid";
  if (o.expires && new Date(o.expires).getTime() <= now.getTime()) return "invalid";
  if (statuses.length > 0 && statuses.every((s) => s === "valid")) return "ready";
  return "pending";
}

export type AcmeOrderCommand =
  | { type: "create"; issuer: string; account: string; identifiers: Identifier[]; authorizations: AuthorizationState[]; at: string; expires: string }
  | { type: "startChallenge"; authz: string; challenge: ChallengeType; now: Date }
  | { type: "validateChallenge"; authz: string; challenge: ChallengeType; at: string }
  | { type: "failChallenge"; authz: string; challenge: ChallengeType; error: ProblemDocument; at: string }
  | { type: "deactivateAuthz"; authz: string; now: Date }
  | { type: "finalize"; serial: string; at: string; now: Date };

export const acmeOrderDecider: Decider<AcmeOrderState, AcmeOrderCommand> = {
  aggregateType: "acme-order",
  initialState: (id) => ({ id, exists: false }),
  decide(s, c): NewEvent[] {
    if (c.type === "create") {
      if (s.exists) throw acmeProblem("malformed", `order ${s.id} exists`, { status: 409 });
      if (c.identifiers.length === 0) throw acmeProblem("malformed", "an order needs at least one identifier");
      return [{ type: E.AcmeOrderCreated, data: { issuer: c.issuer, account: c.account, identifiers: c.identifiers, authorizations: c.authorizations, createdAt: c.at, expires: c.expires } }];
    }
    if (!s.exists) throw acmeProblem("malformed", `no order ${s.id}`, { status: 404 });
    if (c.type === "finalize") {
      if (s.certificate) throw acmeProblem("orderNotReady", `order ${s.id} was already finalized`);
      const st = orderStatus(s, c.now);
      if (st !== "ready") throw acmeProblem("orderNotReady", `order ${s.id} is ${st}, not ready: every authorization must be valid first`);
      return [{ type: E.AcmeOrderFinalized, data: { certificate: c.serial, finalizedAt: c.at } }];
    }
    const a = s.authorizations!.find((x) => x.id === c.authz);
    if (!a) throw acmeProblem("malformed", `no authorization ${c.authz} in order ${s.id}`, { status: 404 });
    if (c.type === "deactivateAuthz") {
      const st = authzStatus(s, a, c.now);
      if (st !== "pending" && st !== "valid") throw acmeProblem("malformed", `authorization ${a.id} is ${st}`);
      return [{ type: E.AcmeAuthorizationDeactivated, data: { authz: a.id } }];
    }
    const ch = a.challenges.find((x) => x.type === c.challenge);
    if (!ch) throw acmeProblem("malformed", `authorization ${a.id} offers no ${c.challenge} challenge`, { status: 404 });
    if (c.type === "startChallenge") {
      // Responding again to a challenge under way or decided changes nothing (the client reads its status).
      if (ch.status !== "pending") return [];
      const st = authzStatus(s, a, c.now);
      if (st !== "pending") throw acmeProblem("malformed", `authorization ${a.id} is ${st}: no challenge can start`);
      if (a.challenges.some((x) => x.status === "processing")) return [];
      return [{ type: E.AcmeChallengeStarted, data: { authz: a.id, challenge: c.challenge } }];
    }
    if (ch.status !== "processing") throw acmeProblem("malformed", `challenge ${c.challenge} of ${a.id} is ${ch.status}, not processing`);
    if (c.type === "validateChallenge") return [{ type: E.AcmeChallengeValidated, data: { authz: a.id, challenge: c.challenge, validatedAt: c.at } }];
    return [{ type: E.AcmeChallengeFailed, data: { authz: a.id, challenge: c.challenge, error: c.error, failedAt: c.at } }];
  },
  evolve: evolveOrder,
};

export function evolveOrder(s: AcmeOrderState, e: EventEnvelope): AcmeOrderState {
  const d = e.data as Record<string, unknown>;
  const withChallenge = (authz: string, type: string, f: (c: ChallengeState) => ChallengeState): AcmeOrderState => ({
    ...s,
    authorizations: s.authorizations?.map((a) => (a.id === authz ? { ...a, challenges: a.challenges.map((c) => (c.type === type ? f(c) : c)) } : a)),
  });
  switch (e.type) {
    case E.AcmeOrderCreated:
      return { ...s, exists: true, issuer: d.issuer as string, account: d.account as string, identifiers: d.identifiers as Identifier[], authorizations: d.authorizations as AuthorizationState[], createdAt: d.createdAt as string, expires: d.expires as string };
    case E.AcmeChallengeStarted:
      return withChallenge(d.authz as string, d.challenge as string, (c) => ({ ...c, status: "processing" }));
    case E.AcmeChallengeValidated:
      return withChallenge(d.authz as string, d.challenge as string, (c) => ({ ...c, status: "valid", validated: d.validatedAt as string }));
    case E.AcmeChallengeFailed:
      return withChallenge(d.authz as string, d.challenge as string, (c) => ({ ...c, status: "invalid", error: d.error as ProblemDocument }));
    case E.AcmeAuthorizationDeactivated:
      return { ...s, authorizations: s.authorizations?.map((a) => (a.id === d.authz ? { ...a, deactivated: true } : a)) };
    case E.AcmeOrderFinalized:
      return { ...s, certificate: d.certificate as string, finalizedAt: d.finalizedAt as string };
    default:
      return s;
  }
}

/**
 * The identifiers of a new order, checked and normalised (pure): DNS only, lowercased, no duplicates, at
 * most 100. Whether the realm may certify each name is decided by the PKI's issuance rules (the caller).
 */
export function normalIdentifiers(raw: unknown): Identifier[] {
  if (!Array.isArray(raw) || raw.length === 0) throw acmeProblem("malformed", "identifiers must be a non-empty array");
  if (raw.length > 100) throw acmeProblem("rejectedIdentifier", "at most 100 identifiers per order");
  const out: Identifier[] = [];
  for (const r of raw as unknown[]) {
    const i = r as { type?: unknown; value?: unknown };
    if (typeof i !== "object" || i === null || typeof i.type !== "string" || typeof i.value !== "string") throw acmeProblem("malformed", "an identifier is { type, value }");
    if (i.type !== "dns") throw acmeProblem("unsupportedIdentifier", `identifier type ${JSON.stringify(i.type)} is not supported (dns only)`, { identifier: { type: i.type, value: i.value } });
    const value = normalDnsName(i.value);
    if (!out.some((o) => o.value === value)) out.push({ type: "dns", value });
  }
  return out;
}

/** Challenges an identifier gets: a wildcard only dns-01 (RFC 8555 §7.1.3). */
export function challengeTypesFor(id: Identifier): ChallengeType[] {
  return isWildcard(id.value) ? ["dns-01"] : [...CHALLENGE_TYPES];
}

/**
 * RFC 8555 §7.4: the CSR must ask for exactly the order's identifiers (its CN, if any, being one of them).
 * Returns a refusal text, or undefined when the names match.
 */
export function csrMismatch(identifiers: Identifier[], csr: { commonName: string | undefined; dns: string[]; ip: string[]; email: string[]; uri: string[] }): string | undefined {
  if (csr.ip.length || csr.email.length || csr.uri.length) return "the CSR asks for names that are not DNS names; the order has only DNS identifiers";
  const want = new Set(identifiers.map((i) => i.value));
  const got = new Set(csr.dns.map(normalDnsName));
  const cn = csr.commonName ? normalDnsName(csr.commonName) : undefined;
  if (cn && !want.has(cn)) return `the CSR's common name ${JSON.stringify(cn)} is not an identifier of the order`;
  if (cn) got.add(cn);
  const extra = [...got].filter((n) => !want.has(n));
  const missing = [...want].filter((n) => !got.has(n));
  if (extra.length || missing.length) return `the CSR's names differ from the order's${extra.length ? `; not in the order: ${extra.join(", ")}` : ""}${missing.length ? `; missing: ${missing.join(", ")}` : ""}`;
  return undefined;
}

/** RFC 8555 §8.1: token "." base64url(SHA-256 JWK thumbprint of the account key). */
export const keyAuthorization = (token: string, thumbprint: string): string => `${token}.${thumbprint}`;

/**
 * The SSRF guard (pure): may challenge validation connect to `ip`? Public unicast addresses yes; loopback,
 * private, link-local, CGNAT, multicast, documentation and other special ranges only when the issuer's
 * configuration lists a range holding them.
 */
export function validationAddressAllowed(ip: string, allowed: string[]): boolean {
  if (allowed.some((c) => safeInCidr(ip, c))) return true;
  return !SPECIAL_RANGES.some((c) => safeInCidr(ip, c));
}

const SPECIAL_RANGES = [
  "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24",
  "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
  "::/127", "::ffff:0:0/96", "64:ff9b::/96", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8",
];

function safeInCidr(ip: string, cidr: string): boolean {
  try {
    return ipInCidr(ip, cidr);
  } catch {
    return false;
  }
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

// ---------------------------------------------------------------------------------------------------------
// ACME Renewal Information (RFC 9773)

/**
 * The renewal window the realm suggests for a certificate (pure): from two thirds to three quarters of its
 * lifetime; a revoked certificate (or one already past its window's end) gets a window that has begun, so
 * clients renew at once.
 */
export function suggestedWindow(c: { notBefore: string; notAfter: string; revoked?: boolean }, now: Date): { start: string; end: string } {
  const nb = Date.parse(c.notBefore);
  const na = Date.parse(c.notAfter);
  const life = na - nb;
  if (c.revoked) return { start: new Date(now.getTime() - 3_600_000).toISOString(), end: new Date(now.getTime() - 60_000).toISOString() };
  return { start: new Date(nb + (life * 2) / 3).toISOString(), end: new Date(nb + (life * 3) / 4).toISOString() };
}

/** RFC 9773 §4.1: certID = base64url(AKI keyIdentifier) "." base64url(serial DER content octets). */
export function parseCertId(id: string): { keyIdentifier: Buffer; serialHex: string } | undefined {
  const m = /^([A-Za-z0-9_-]{1,128})\.([A-Za-z0-9_-]{1,64})$/.exec(id);
  if (!m) return undefined;
  const keyIdentifier = Buffer.from(m[1]!, "base64url");
  const serial = Buffer.from(m[2]!, "base64url");
  if (keyIdentifier.length === 0 || serial.length === 0 || serial.length > 21) return undefined;
  return { keyIdentifier, serialHex: serial.toString("hex") };
}
