import { invalid } from "../../services/kernel/errors.js";

/**
 * Domain names in the realm are absolute, lower case and end in a dot: `web1.example.com.`.
 * Labels follow RFC 1035/1123 (letters, digits, hyphen, not at either end, 1..63 octets, 255 octets in
 * all) with two allowances every zone needs: a leading `_` for service labels (`_sip._tcp`, `_dnslink`)
 * and a lone `*` as the first label of a wildcard.
 */

const LABEL = /^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)$/;

export function isValidLabel(label: string, first: boolean): boolean {
  if (label === "*") return first;
  return LABEL.test(label);
}

/**
 * Makes `name` absolute and lower case, relative to `origin` when it does not end in a dot; `@` is the
 * origin. Throws VALIDATION naming the name when a label or the length is wrong.
 */
export function absoluteName(name: string, origin?: string): string {
  let n = name.trim().toLowerCase();
  if (n === "@") {
    if (!origin) throw invalid(`"@" needs an origin`);
    return origin;
  }
  if (n === ".") return ".";
  if (!n.endsWith(".")) {
    if (!origin) throw invalid(`name ${JSON.stringify(name)} is relative and there is no origin`);
    n = origin === "." ? `${n}.` : `${n}.${origin}`;
  }
  assertName(n);
  return n;
}

export function assertName(n: string): void {
  if (n === ".") return;
  if (n.length > 254) throw invalid(`name ${n} is longer than 255 octets`);
  const labels = n.slice(0, -1).split(".");
  labels.forEach((l, i) => {
    if (l.length === 0) throw invalid(`name ${JSON.stringify(n)} has an empty label`);
    if (l.length > 63) throw invalid(`label ${l} of ${n} is longer than 63 octets`);
    if (!isValidLabel(l, i === 0)) throw invalid(`label ${JSON.stringify(l)} of ${n} is not a valid host label (RFC 1035/1123)`);
  });
}

/** True when `name` is `zone` or below it. Both absolute. */
export function inZone(name: string, zone: string): boolean {
  return zone === "." || name === zone || name.endsWith(`.${zone}`);
}

/** The parent of an absolute name (`a.b.` -> `b.`), `.` for a TLD, null for the root. */
export function parentName(name: string): string | null {
  if (name === ".") return null;
  const i = name.indexOf(".");
  const rest = name.slice(i + 1);
  return rest === "" ? "." : rest;
}

/** `web1.example.com.` relative to `example.com.` is `web1`; the apex is `@`. */
export function relativeName(name: string, origin: string): string {
  if (name === origin) return "@";
  if (origin !== "." && name.endsWith(`.${origin}`)) return name.slice(0, -origin.length - 1);
  return name;
}

/** Reverse-zone owner of an address: `10.0.0.5` -> `5.0.0.10.in-addr.arpa.`, IPv6 by nibbles under ip6.arpa. */
export function reverseName(ip: string, expandV6: (ip: string) => string): string {
  if (ip.includes(":")) {
    const hex = expandV6(ip).replace(/:/g, "");
    return `${hex.split("").reverse().join(".")}.ip6.arpa.`;
  }
  return `${ip.split(".").reverse().join(".")}.in-addr.arpa.`;
}
