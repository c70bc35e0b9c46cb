import { invalid } from "../../services/kernel/errors.js";

/**
 * Domain names in the realm are absolute and end in a dot: `web1.example.com.`. Owner names keep the case
 * the zone wrote them in (RFC 1034 3.1: case is preserved, compared case-insensitively); zone names (the
 * aggregate ids) and map keys (`rrKey`) are lower case, so every comparison goes through `lowerName` or
 * `inZone`/`sameName`, never `===` on a name as written.
 * Labels follow RFC 1035/1123 (letters, digits, hyphen, not at either end, 1..63 octets, 255 octets in
 * all) with three allowances every zone needs: a leading `_` for service labels (`_sip._tcp`, `_dnslink`),
 * a lone `*` as the first label of a wildcard, and `/` inside labels under `.arpa.` (RFC 2317 classless
 * delegation: `0/25.2.0.192.in-addr.arpa.`).
 * RFC 1035 5.1 escapes (`\X`, `\DDD`) are read in names; a label that then holds anything but the above
 * (a dot written `\.`, a space `\032`) is refused: the realm keeps to host names.
 */

const LABEL = /^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)$/i;
/** RFC 2317 labels (`0/25`, `0-25`, `64/26`): `/` inside a label, only under .arpa. */
const LABEL_ARPA = /^(?:[a-z0-9_](?:[a-z0-9_/-]{0,61}[a-z0-9_])?)$/i;

export function isValidLabel(label: string, first: boolean, arpa = false): boolean {
  if (label === "*") return first;
  return arpa ? LABEL_ARPA.test(label) : LABEL.test(label);
}

/** The lower-case form of a name: what comparisons and map keys use. */
export const lowerName = (n: string): string => n.toLowerCase();

/** Two names are the same name (RFC 1035 2.3.3: case-insensitive). */
export const sameName = (a: string, b: string): boolean => a === b || a.toLowerCase() === b.toLowerCase();

/**
 * Resolves RFC 1035 5.1 escapes in a name: `\X` is X, `\DDD` the octet DDD. Returns the labels joined by
 * dots and whether the text ended in an unescaped dot. A label that holds a dot after unescaping is
 * refused (the realm's names are host names).
 */
function unescapeName(text: string): { name: string; absolute: boolean } {
  const labels: string[] = [];
  let cur = "";
  let absolute = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    absolute = false;
    if (c === "\\") {
      const ddd = text.slice(i + 1, i + 4);
      if (/^\d{3}$/.test(ddd)) {
        const v = Number(ddd);
        if (v > 255) throw invalid(`escape \\${ddd} in name ${JSON.stringify(text)} is not an octet`);
        cur += String.fromCharCode(v);
        i += 3;
      } else {
        if (i + 1 >= text.length) throw invalid(`name ${JSON.stringify(text)} ends in a lone backslash`);
        cur += text[++i];
      }
      continue;
    }
    if (c === ".") {
      labels.push(cur);
      cur = "";
      absolute = true;
      continue;
    }
    cur += c;
  }
  if (!absolute || cur !== "") labels.push(cur);
  for (const l of labels) if (l.includes(".")) throw invalid(`label ${JSON.stringify(l)} of name ${JSON.stringify(text)} holds a dot (written \\.): not a host name label`);
  if (labels.length === 1 && labels[0] === "" && absolute) return { name: ".", absolute };
  return { name: labels.join(".") + (absolute ? "." : ""), absolute };
}

/**
 * Makes `name` absolute, relative to `origin` when it does not end in a dot (RFC 1035 master-file rules);
 * `@` is the origin. Case is kept. Throws VALIDATION naming the name when a label or the length is wrong.
 */
export function absoluteName(name: string, origin?: string): string {
  let n = name.trim();
  if (n.includes("\\")) n = unescapeName(n).name;
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
  const arpa = n.length > 6 && lowerName(n).endsWith(".arpa.");
  labels.forEach((l, i) => {
    if (l.length === 0) throw invalid(`name ${JSON.stringify(n)} has an empty label`);
    if (l.length > 63) throw invalid(`label ${l} of ${n} is longer than 63 octets`);
    if (!isValidLabel(l, i === 0, arpa)) throw invalid(`label ${JSON.stringify(l)} of ${n} is not a valid host label (RFC 1035/1123${arpa ? ", RFC 2317" : ""})`);
  });
}

/** True when `name` is `zone` or below it (case-insensitive). Both absolute. */
export function inZone(name: string, zone: string): boolean {
  if (zone === ".") return true;
  const n = lowerName(name);
  const z = lowerName(zone);
  return n === z || n.endsWith(`.${z}`);
}

/** The parent of an absolute name (`a.b.` -> `b.`), `.` for a TLD, null for the root. */
export function parentName(name: string): string | null {
  if (name === ".") return null;
  const i = name.indexOf(".");
  const rest = name.slice(i + 1);
  return rest === "" ? "." : rest;
}

/** `Web1.example.com.` relative to `example.com.` is `Web1` (its case kept); the apex is `@`. */
export function relativeName(name: string, origin: string): string {
  if (sameName(name, origin)) return "@";
  if (origin !== "." && name.length > origin.length + 1 && name[name.length - origin.length - 1] === "." && sameName(name.slice(-origin.length), origin)) return name.slice(0, -origin.length - 1);
  return name;
}

/**
 * How the CLI and the API read a name (an owner, a zone's name server, a target inside record data), in
 * one place. Zone files keep RFC 1035's rules (`absoluteName`); a name typed at a prompt is read so that
 * `--ns ns1.lab.example` in zone `lab.example` means `ns1.lab.example.`, not `ns1.lab.example.lab.example.`:
 *
 * - `@` is the zone; a name ending in a dot is absolute;
 * - a name that ends in the zone's name (or is it) is absolute: `ns1.lab.example`; so is one that ends in
 *   an ancestor of the zone of two labels or more (`ns1.lab.example` for zone `eu.lab.example`: its
 *   relative reading, `ns1.lab.example.eu.lab.example.`, would repeat the zone's own parent);
 * - a single label is relative to the zone: `www`; so is a name whose last label is a service label
 *   (`_sip._tcp`, `sel._domainkey`: `_` labels are never top-level domains);
 * - any other name with a dot (`www.other.example` in `lab.example`) is ambiguous, and refused naming both
 *   readings, never guessed.
 *
 * Without a zone (the zone is then found from the name), a name is absolute with or without its trailing
 * dot; a single label is refused. `what` names the field in errors.
 */
export function readName(input: string, zone: string | undefined, what = "name"): string {
  const t = input.trim();
  if (t === "") throw invalid(`${what} is empty`);
  if (t === "@") {
    if (!zone) throw invalid(`${what} "@" needs a zone`);
    return zone;
  }
  const dotted = t.endsWith(".") && !/(^|[^\\])(\\\\)*\\\.$/.test(t);
  if (dotted) return absoluteName(t);
  if (!zone) {
    if (!t.includes(".")) throw invalid(`${what} ${JSON.stringify(t)} is a single label and no zone is given: give the zone, or write the name in full with a trailing dot`);
    return absoluteName(`${t}.`);
  }
  const abs = absoluteName(`${t}.`);
  if (inZone(abs, zone)) return abs;
  for (let p = parentName(lowerName(zone)); p && p.indexOf(".") < p.length - 1; p = parentName(p)) if (inZone(abs, p)) return abs;
  const labels = abs.slice(0, -1).split(".");
  if (labels.length === 1 || labels[labels.length - 1]!.startsWith("_")) return absoluteName(t, zone);
  const rel = absoluteName(t, zone);
  throw invalid(
    `${what} ${JSON.stringify(t)} is ambiguous in zone ${zone}: it does not end in the zone and has a dot, so it could be ${abs} (absolute) or ${rel} (relative to the zone). Write "${abs}" (with the trailing dot) for the first, or "${rel.slice(0, -1)}" for the second`,
  );
}

/** Reverse-zone owner of an address: `10.0.0.5` -> `5.0.0.10.in-addr.arpa.`, IPv6 by nibbles under ip6.arpa. */
export function reverseName(ip: string, expandV6: (ip: string) => string): string {
  if (ip.includes(":")) {
    const hex = expandV6(ip).replace(/:/g, "");
    return `${hex.split("").reverse().join(".")}.ip6.arpa.`;
  }
  return `${ip.split(".").reverse().join(".")}.in-addr.arpa.`;
}
