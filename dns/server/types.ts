/** Type names dns-packet encodes natively; anything else goes as `UNKNOWN_<code>` (opaque rdata). */
const NATIVE: Record<number, string> = { 1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 35: "NAPTR", 39: "DNAME", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 50: "NSEC3", 52: "TLSA", 255: "ANY", 257: "CAA" };

export function wireTypeName(code: number): string {
  return NATIVE[code] ?? `UNKNOWN_${code}`;
}
