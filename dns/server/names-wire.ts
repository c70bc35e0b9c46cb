/**
 * Presentation names (`www.example.test.`, `a\.b.example.`, `\226.example.`) as wire labels, parsed once and
 * kept: answers name the same owners and targets again and again. Each parsed name also carries, for every
 * suffix, the key the compressing writer looks it up by (the suffix's uncompressed wire bytes as a latin1
 * string: exact bytes, so compression never changes a name's case).
 */
export interface WireName {
  /** Each label's octets (no length octet), as a latin1 string: one char per octet. */
  labels: string[];
  /** keys[i] names the suffix that starts at label i. */
  keys: string[];
  /** Uncompressed length on the wire, including the root octet. */
  length: number;
}

/** Parsed names kept for reuse (owners and targets of the zones; question names come and go). */
const cache = new Map<string, WireName>();
const CACHE_MAX = 50_000;

/** Parses a presentation name (trailing dot optional; `.` or `` is the root). Labels over 63 octets are cut (never thrown). */
export function wireName(name: string, keep = true): WireName {
  let w = cache.get(name);
  if (w) return w;
  w = parse(name);
  if (keep) {
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(name, w);
  }
  return w;
}

/** Plain names (letters, digits, `-`, `_`, `*`, dots, no escapes or other octets) split without a scan per char. */
const PLAIN = /^[A-Za-z0-9_*-]+(?:\.[A-Za-z0-9_*-]+)*\.?$/;

function parse(name: string): WireName {
  let labels: string[];
  if (name === "" || name === ".") labels = [];
  else if (PLAIN.test(name)) labels = (name.endsWith(".") ? name.slice(0, -1) : name).split(".").map((l) => (l.length > 63 ? l.slice(0, 63) : l));
  else labels = parseEscaped(name);
  const keys: string[] = new Array<string>(labels.length);
  let key = "\0";
  let length = 1;
  for (let k = labels.length - 1; k >= 0; k--) {
    const l = labels[k]!;
    key = String.fromCharCode(l.length) + l + key;
    keys[k] = key;
    length += l.length + 1;
  }
  return { labels, keys, length };
}

/** Labels of a name with RFC 1035 5.1 escapes (`\.`, `\DDD`) or characters past ASCII (as UTF-8 octets). */
function parseEscaped(name: string): string[] {
  const labels: string[] = [];
  let cur: number[] = [];
  const flush = () => {
    if (cur.length > 0) labels.push(String.fromCharCode(...cur.slice(0, 63)));
    cur = [];
  };
  let i = 0;
  const n = name.length;
  while (i < n) {
    const c = name.charCodeAt(i);
    if (c === 0x2e) {
      flush();
      i++;
      continue;
    }
    if (c === 0x5c && i + 1 < n) {
      const d = name.slice(i + 1, i + 4);
      if (/^[0-9]{3}$/.test(d)) {
        cur.push(Number(d) & 0xff);
        i += 4;
      } else {
        cur.push(name.charCodeAt(i + 1) & 0xff);
        i += 2;
      }
      continue;
    }
    if (c < 0x80) cur.push(c);
    else for (const b of Buffer.from(String.fromCodePoint(name.codePointAt(i)!), "utf8")) cur.push(b);
    i += c >= 0xd800 && c <= 0xdbff ? 2 : 1;
  }
  flush();
  return labels;
}

/**
 * The index of the first label of a question's name (at `start`, uncompressed, already checked) from which no
 * label holds an upper-case ASCII letter: 0 for a name in lower case, the label count when the last label has one.
 */
export function lowerCaseFrom(buf: Buffer, start: number): number {
  let from = 0;
  let label = 0;
  for (let off = start; off < buf.length; label++) {
    const len = buf[off]!;
    if (len === 0) break;
    for (let i = off + 1; i <= off + len; i++) {
      const c = buf[i]!;
      if (c >= 0x41 && c <= 0x5a) {
        from = label + 1;
        break;
      }
    }
    off += len + 1;
  }
  return from;
}

/** A name's uncompressed wire octets. */
export function nameOctets(name: string): Buffer {
  const w = wireName(name, false);
  const out = Buffer.alloc(w.length);
  let off = 0;
  for (const l of w.labels) {
    out[off++] = l.length;
    out.write(l, off, l.length, "latin1");
    off += l.length;
  }
  return out;
}
