import { isIP } from "node:net";
import { invalid } from "../../services/kernel/errors.js";

/**
 * Name rules for certificates (pure). DNS names: RFC 1123 labels, lowercase, no trailing dot, at most one
 * leading `*.` label (and only where the profile allows wildcards). A name is owned when it equals or is
 * below a domain of the issuer's allow-list (or a zone the realm's name domain holds).
 */
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function normalDnsName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, "");
}

/** Throws VALIDATION unless `name` is a DNS name (a wildcard first label only when `wildcard` is true). */
export function assertDnsName(name: string, wildcard: boolean): void {
  if (name.length === 0 || name.length > 253) throw invalid(`${JSON.stringify(name)} is not a DNS name (1..253 characters)`);
  const labels = name.split(".");
  labels.forEach((l, i) => {
    if (l === "*" && i === 0 && wildcard) return;
    if (l.includes("*")) throw invalid(`${JSON.stringify(name)}: wildcard names are not allowed here`);
    if (!LABEL.test(l)) throw invalid(`${JSON.stringify(name)} is not a DNS name (label ${JSON.stringify(l)})`);
  });
  if (labels[0] === "*" && labels.length < 3) throw invalid(`${JSON.stringify(name)}: a wildcard needs at least two labels below it`);
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) throw invalid(`${JSON.stringify(name)} is not a DNS name (all-numeric top label)`);
}

export const isWildcard = (name: string): boolean => name.startsWith("*.");

/** True when `name` equals `domain` or lies below it (a wildcard `*.a.b` lies below `a.b`). */
export function withinDomain(name: string, domain: string): boolean {
  const n = normalDnsName(name);
  const d = normalDnsName(domain);
  return n === d || n.endsWith(`.${d}`);
}

export function ownedBy(name: string, domains: Iterable<string>): boolean {
  for (const d of domains) if (withinDomain(name, d)) return true;
  return false;
}

/** An IP address (v4 or v6) in canonical text form, or VALIDATION. */
export function normalIp(ip: string): string {
  const v = isIP(ip.trim());
  if (v === 0) throw invalid(`${JSON.stringify(ip)} is not an IP address`);
  return v === 4 ? ip.trim() : expand6(ip.trim()).map((h) => h.toString(16)).join(":");
}

function expand6(ip: string): number[] {
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const parse = (s: string | undefined) => (s ? s.split(":").flatMap((p) => (p.includes(".") ? v4Groups(p) : [parseInt(p, 16)])) : []);
  const h = parse(head);
  const t = parse(tail);
  return tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
}
const v4Groups = (s: string) => {
  const b = s.split(".").map(Number);
  return [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!];
};

function ipBits(ip: string): { v: 4 | 6; bits: bigint } {
  if (isIP(ip) === 4) return { v: 4, bits: ip.split(".").reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n) };
  return { v: 6, bits: expand6(ip).reduce((a, g) => (a << 16n) | BigInt(g), 0n) };
}

/** Throws VALIDATION unless `cidr` is `address/prefix`. */
export function assertCidr(cidr: string): void {
  const [addr, len] = cidr.split("/");
  const v = isIP(addr ?? "");
  const n = Number(len);
  if (v === 0 || !Number.isInteger(n) || n < 0 || n > (v === 4 ? 32 : 128)) throw invalid(`${JSON.stringify(cidr)} is not a CIDR range (address/prefix)`);
}

export function ipInCidr(ip: string, cidr: string): boolean {
  const [addr, len] = cidr.split("/");
  const a = ipBits(ip);
  const r = ipBits(addr!);
  if (a.v !== r.v) return false;
  const width = a.v === 4 ? 32n : 128n;
  const shift = width - BigInt(Number(len));
  return a.bits >> shift === r.bits >> shift;
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,253}$/;
export function assertEmail(e: string): void {
  if (!EMAIL.test(e)) throw invalid(`${JSON.stringify(e)} is not an email address`);
}
