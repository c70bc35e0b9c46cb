import { invalid } from "../../services/kernel/errors.js";
import { assertCidr, assertDnsName, assertEmail, ipInCidr, isWildcard, normalDnsName, normalIp, ownedBy, withinDomain } from "./names.js";
import { PROFILES, type ProfileName } from "./profiles.js";

/** Names a leaf may carry, by kind (the x509 adapter turns them into a subjectAltName). */
export interface LeafNames {
  dns: string[];
  ip: string[];
  email: string[];
  uri: string[];
}

/** What an issuer allows besides the realm's zones: extra DNS domains and IP ranges it may certify. */
export interface IssuerPolicy {
  allowDomains: string[];
  allowIps: string[];
}

export const EMPTY_POLICY: IssuerPolicy = { allowDomains: [], allowIps: [] };

/** Everything the decision needs, gathered at the edge (CSR read, zones fetched, clock read). */
export interface IssuanceRequest {
  profile: ProfileName;
  commonName?: string | undefined;
  names: LeafNames;
  days?: number | undefined;
  now: Date;
  policy: IssuerPolicy;
  /** Zones of the realm's name domain (names the realm owns). */
  realmZones: Iterable<string>;
  /** The intermediate's DNS name constraints (permitted subtrees). */
  permittedDns: string[];
  /** The intermediate's own notAfter: a leaf never outlives its issuer. */
  issuerNotAfter: Date;
}

/** The leaf the realm agreed to issue. */
export interface IssuancePlan {
  profile: ProfileName;
  commonName: string;
  names: LeafNames;
  notBefore: Date;
  notAfter: Date;
}

const DAY_MS = 86_400_000;
/** Clock skew allowance: leaves are valid from a minute before issuance. */
const BACKDATE_MS = 60_000;
/** Printable ASCII: what an IA5String SAN (email, URI) may hold here. */
const IA5 = /^[\x21-\x7e]+$/;
const HOSTLIKE = /^[a-z0-9*-]+(\.[a-z0-9-]+)+\.?$/i;

/**
 * Decides what a leaf may carry (pure). DNS names must be owned (in a realm zone or the issuer's allow-list)
 * and inside the intermediate's name constraints; wildcards only where the profile allows them; IP names
 * only inside the policy's ranges; email and URI names only under owned domains. Throws VALIDATION naming
 * the first thing refused.
 */
export function planIssuance(r: IssuanceRequest): IssuancePlan {
  const profile = PROFILES[r.profile];
  if (!profile) throw invalid(`unknown profile ${String(r.profile)}`);
  const owned = [...r.realmZones].map(normalDnsName).concat(r.policy.allowDomains.map(normalDnsName));
  const names: LeafNames = { dns: [], ip: [], email: [], uri: [] };
  const cn = r.commonName?.trim();
  if (cn !== undefined && (cn.length === 0 || cn.length > 64)) throw invalid("the common name must be 1..64 characters");
  const dnsIn = [...r.names.dns];
  // A host-like CN on a profile that serves TLS is also a DNS name (clients only look at SANs).
  if (cn && profile.sans.includes("dns") && profile.requiresHostName && HOSTLIKE.test(cn)) dnsIn.push(cn);
  for (const kind of ["dns", "ip", "email", "uri"] as const) {
    const given = kind === "dns" ? dnsIn : r.names[kind];
    if (given.length > 0 && !profile.sans.includes(kind)) throw invalid(`profile ${profile.name} carries no ${kind.toUpperCase()} names`);
  }
  const ownsDomain = (name: string, what: string) => {
    if (!ownedBy(name, owned)) throw invalid(`${what} ${JSON.stringify(name)} is not a name the realm owns (no zone of the realm or domain of the issuer's allow-list holds it)`);
  };
  for (const raw of dnsIn) {
    const name = normalDnsName(raw);
    if (isWildcard(name) && !profile.wildcards) throw invalid(`${JSON.stringify(name)}: profile ${profile.name} does not allow wildcards (use server-wildcard)`);
    assertDnsName(name, profile.wildcards);
    ownsDomain(name, "DNS name");
    if (r.permittedDns.length > 0 && !r.permittedDns.some((d) => withinDomain(name, d))) throw invalid(`DNS name ${JSON.stringify(name)} is outside the issuer's name constraints (${r.permittedDns.join(", ")})`);
    if (!names.dns.includes(name)) names.dns.push(name);
  }
  for (const raw of r.names.ip) {
    const ip = normalIp(raw);
    if (!r.policy.allowIps.some((c) => ipInCidr(ip, c))) throw invalid(`IP address ${ip} is not in the issuer's allowed ranges (${r.policy.allowIps.join(", ") || "none"})`);
    if (!names.ip.includes(ip)) names.ip.push(ip);
  }
  for (const raw of r.names.email) {
    const email = raw.trim();
    assertEmail(email);
    if (!IA5.test(email)) throw invalid(`email ${JSON.stringify(email)} must be ASCII (an rfc822Name is an IA5String; use the punycode form of the domain)`);
    ownsDomain(email.slice(email.lastIndexOf("@") + 1).toLowerCase(), "email domain");
    if (!names.email.includes(email)) names.email.push(email);
  }
  for (const raw of r.names.uri) {
    if (!IA5.test(raw)) throw invalid(`URI ${JSON.stringify(raw)} must be ASCII (percent-encode it)`);
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw invalid(`${JSON.stringify(raw)} is not a URI`);
    }
    if (!url.hostname) throw invalid(`URI ${JSON.stringify(raw)} names no host (spiffe://<domain>/..., https://<host>/...)`);
    ownsDomain(url.hostname.toLowerCase(), "URI host");
    if (!names.uri.includes(raw)) names.uri.push(raw);
  }
  if (profile.requiresHostName && names.dns.length === 0 && names.ip.length === 0) throw invalid(`profile ${profile.name} needs at least one DNS name or IP address`);
  const commonName = cn ?? names.dns[0] ?? names.ip[0] ?? names.email[0] ?? names.uri[0];
  if (!commonName) throw invalid("the certificate needs a common name or at least one name");
  const days = r.days ?? profile.defaultDays;
  if (!Number.isInteger(days) || days < 1 || days > profile.maxDays) throw invalid(`validity must be 1..${profile.maxDays} days for profile ${profile.name}`);
  const notBefore = new Date(Math.floor((r.now.getTime() - BACKDATE_MS) / 1000) * 1000);
  const wanted = new Date(Math.floor((r.now.getTime() + days * DAY_MS) / 1000) * 1000);
  if (r.issuerNotAfter.getTime() <= r.now.getTime()) throw invalid("the issuer's intermediate has expired: import a new one");
  const notAfter = wanted.getTime() > r.issuerNotAfter.getTime() ? r.issuerNotAfter : wanted;
  return { profile: profile.name, commonName, names, notBefore, notAfter };
}

/** Validates a policy change (pure): domains are DNS names, ranges are CIDRs. */
export function normalPolicy(p: { allowDomains?: string[] | undefined; allowIps?: string[] | undefined }): IssuerPolicy {
  const allowDomains = [...new Set((p.allowDomains ?? []).map(normalDnsName))];
  for (const d of allowDomains) assertDnsName(d, false);
  const allowIps = [...new Set((p.allowIps ?? []).map((c) => c.trim()))];
  for (const c of allowIps) assertCidr(c);
  return { allowDomains, allowIps };
}
