import { isIPv4 } from "node:net";
import { invalid } from "../../services/kernel/errors.js";
import { absoluteName } from "./names.js";

/** Record types the realm stores and serves by name. Any other data type is stored generically (RFC 3597: `TYPEnnn \# len hex`). */
export const RECORD_TYPES = ["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS", "PTR", "SOA", "HTTPS", "SVCB", "TLSA", "DS", "DNAME", "NAPTR", "SSHFP", "HINFO"] as const;
export type KnownType = (typeof RECORD_TYPES)[number];
/** A type the realm has no name for, kept as RFC 3597 generic data (`TYPE65280`). */
export type GenericType = `TYPE${number}`;
export type RecordType = KnownType | GenericType;

export const TYPE_CODES: Readonly<Record<KnownType, number>> = { A: 1, NS: 2, CNAME: 5, SOA: 6, HINFO: 13, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, NAPTR: 35, DNAME: 39, DS: 43, SSHFP: 44, TLSA: 52, SVCB: 64, HTTPS: 65, CAA: 257 };

/** Codes that are not data types (RFC 6895 3.1: 0, OPT, the meta and question types 128..255) and DNSSEC records the realm must not hold statically. */
const isMetaCode = (code: number) => code === 0 || code === 41 || (code >= 128 && code <= 255);

/**
 * Type code -> the realm's type. A known code gives its mnemonic; any other data type gives its generic
 * name (`TYPE65280`), so a question for a type the realm holds only generically finds it; meta types give
 * undefined, as a Map would.
 */
class TypeByCode extends Map<number, RecordType> {
  override get(code: number): RecordType | undefined {
    const known = super.get(code);
    if (known) return known;
    return Number.isInteger(code) && code > 0 && code <= 65535 && !isMetaCode(code) ? (`TYPE${code}` as GenericType) : undefined;
  }
}
export const TYPE_BY_CODE: Map<number, RecordType> = new TypeByCode(Object.entries(TYPE_CODES).map(([t, c]) => [c, t as KnownType]));

const RECORD_TYPE_SET: ReadonlySet<string> = new Set(RECORD_TYPES);

/** The type code of a realm type (known or generic). */
export function typeCode(type: RecordType): number {
  return isGenericType(type) ? Number(type.slice(4)) : TYPE_CODES[type];
}

/**
 * Reads a type as written: a mnemonic the realm knows, or RFC 3597's `TYPEnnn` (a known code becomes its
 * mnemonic: `TYPE1` is A). Null when it is neither (or a meta type).
 */
export function recordType(text: string): RecordType | null {
  const t = text.toUpperCase();
  if (RECORD_TYPE_SET.has(t)) return t as KnownType;
  if (!/^TYPE\d{1,5}$/.test(t)) return null;
  const code = Number(t.slice(4));
  if (code > 65535 || isMetaCode(code)) return null;
  return TYPE_BY_CODE.get(code) ?? null;
}

/** True when `t` is a type in the realm's own spelling (`A`, `TYPE65280`; not `a`, not `TYPE1`). */
export function isRecordType(t: string): t is RecordType {
  return recordType(t) === t;
}

export const isGenericType = (t: RecordType): t is GenericType => t.startsWith("TYPE");

/**
 * One token of presentation text. `raw` is the text as written (for a quoted token, what was between the
 * quotes); `text` is its octets as a binary string (one char per octet): RFC 1035 5.1 escapes resolved
 * (`\X` is X, `\DDD` the octet), and characters past ASCII as their UTF-8 octets (or, reading `binary`
 * text, where each char already is an octet, as themselves).
 */
export interface Token {
  text: string;
  raw: string;
  quoted: boolean;
}

const NEEDS_DECODING = /[\\\u0080-\uffff]/;

/** The octets (binary string) of presentation text `raw`: escapes resolved, non-ASCII as UTF-8 (or as octets when `binary`). */
export function decodeOctets(raw: string, binary = false): string {
  if (!NEEDS_DECODING.test(raw)) return raw;
  let out = "";
  const n = raw.length;
  for (let i = 0; i < n; i++) {
    const c = raw.charCodeAt(i);
    if (c === 92 /* \ */) {
      if (i + 1 >= n) throw invalid("a lone backslash at the end of a string");
      const d = raw.slice(i + 1, i + 4);
      if (/^\d{3}$/.test(d)) {
        const v = Number(d);
        if (v > 255) throw invalid(`escape \\${d} is not an octet (000..255)`);
        out += String.fromCharCode(v);
        i += 3;
        continue;
      }
      const next = raw.codePointAt(i + 1)!;
      if (next >= 0x80) {
        const ch = String.fromCodePoint(next);
        out += binary && next <= 0xff ? ch : Buffer.from(ch, "utf8").toString("latin1");
        i += ch.length;
        continue;
      }
      out += raw[i + 1];
      i++;
      continue;
    }
    if (c < 0x80 || (binary && c <= 0xff)) {
      out += raw[i];
      continue;
    }
    const cp = raw.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    out += Buffer.from(ch, "utf8").toString("latin1");
    i += ch.length - 1;
  }
  return out;
}

/**
 * Splits presentation text into tokens: white space separates them; `"..."` is one token with its spaces;
 * a backslash escapes the next character everywhere (RFC 1035 5.1), so `a\ b` is one token; a quote inside
 * an unquoted token (`alpn="h2 h3"`) runs to its closing quote. It copies slices of the text rather than
 * characters: a million-record zone file goes through here. `binary`: the text's chars are octets (a file
 * read as latin1), not Unicode.
 */
export function tokenize(text: string, binary = false): Token[] {
  const out: Token[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) {
      i++;
      continue;
    }
    if (c === 34) {
      const from = ++i;
      for (;;) {
        if (i >= n) throw invalid("unterminated quoted string");
        const d = text.charCodeAt(i);
        if (d === 34) break;
        if (d === 92) {
          if (i + 1 >= n) throw invalid("dangling escape in quoted string");
          i += 2;
          continue;
        }
        i++;
      }
      const raw = text.slice(from, i);
      i++;
      out.push({ text: decodeOctets(raw, binary), raw, quoted: true });
      continue;
    }
    const from = i;
    while (i < n) {
      const d = text.charCodeAt(i);
      if (d === 32 || d === 9 || d === 10 || d === 13) break;
      if (d === 92) {
        i += 2;
        continue;
      }
      if (d === 34) {
        for (i++; i < n && text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92) i++;
        if (i >= n) throw invalid("unterminated quoted string");
      }
      i++;
    }
    const raw = text.slice(from, Math.min(i, n));
    out.push({ text: decodeOctets(raw, binary), raw, quoted: false });
  }
  return out;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** A TTL in seconds, or with BIND units (`1h30m`, `2d`); null when it is neither. */
export function parseTtl(text: string): number | null {
  if (/^\d+$/.test(text)) return Number(text);
  if (!/^(\d+[smhdw])+$/i.test(text)) return null;
  let total = 0;
  for (const part of text.toLowerCase().matchAll(/(\d+)([smhdw])/g)) total += Number(part[1]) * UNITS[part[2]!]!;
  return total;
}

/** Octets that stand for themselves inside a quoted presentation string: printable ASCII but `"` and `\`. */
const PLAIN_QUOTED = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * Octets (binary string) as a quoted presentation string: printable ASCII as itself, `"` and `\` escaped
 * with a backslash, every other octet (controls, newlines, everything past ASCII) as `\DDD`. Pure ASCII,
 * one line: what the realm stores and exports.
 */
export function presentString(octets: string): string {
  if (PLAIN_QUOTED.test(octets)) return `"${octets}"`;
  let s = '"';
  for (let i = 0; i < octets.length; i++) {
    const c = octets.charCodeAt(i);
    if (c === 34 || c === 92) s += `\\${octets[i]}`;
    else if (c >= 0x20 && c <= 0x7e) s += octets[i];
    else s += `\\${String(c).padStart(3, "0")}`;
  }
  return `${s}"`;
}

function u(token: Token | undefined, bits: 8 | 16 | 32, what: string): number {
  if (!token || !/^\d+$/.test(token.raw)) throw invalid(`${what} must be a number`);
  const n = Number(token.raw);
  if (n >= 2 ** bits) throw invalid(`${what} ${n} does not fit in ${bits} bits`);
  return n;
}

/** How names inside record data are read: a master file's rules (relative to `$ORIGIN`), or the CLI/API's (names.ts readName). */
export type NameReader = (text: string, what: string) => string;

/** A name inside record data: by `names` (the CLI/API rule) when given, else by master-file rules relative to `origin`; lower case. */
function dataName(t: Token | undefined, what: string, origin: string | undefined, names: NameReader | undefined): string {
  if (!t) throw invalid(`${what} is missing`);
  return (names ? names(t.raw, what) : absoluteName(t.raw, origin)).toLowerCase();
}

function arity(tokens: Token[], n: number, type: string, shape: string): void {
  if (tokens.length !== n) throw invalid(`${type} data must be "${shape}", got ${tokens.length} fields`);
}

function hexOf(tokens: Token[], what: string, allowEmpty = false): string {
  const hex = tokens.map((t) => t.raw).join("").toLowerCase();
  if (hex === "" && allowEmpty) return "";
  if (!/^([0-9a-f]{2})+$/.test(hex)) throw invalid(`${what} must be hex (an even number of digits)`);
  return hex;
}

/** A character-string (RFC 1035 3.3): at most 255 octets. */
function charString(t: Token | undefined, what: string): string {
  if (!t) throw invalid(`${what} is missing`);
  if (t.text.length > 255) throw invalid(`${what} is longer than 255 octets`);
  return presentString(t.text);
}

const DIGEST_LENGTHS: Record<number, number> = { 1: 20, 2: 32, 4: 48 };
const SSHFP_LENGTHS: Record<number, number> = { 1: 20, 2: 32 };

/**
 * IPv6 in its RFC 5952 form (lower case, no leading zeros, the first longest run of two or more zero groups
 * compressed; an embedded IPv4 tail written as hex), as the WHATWG URL serializer writes it. Parsed by
 * hand: `new URL()` per address cost most of a big zone file's AAAA records. Throws VALIDATION when `ip`
 * is not an IPv6 address.
 */
export function canonicalIPv6(ip: string): string {
  const p = ipv6Pieces(ip);
  if (!p) throw invalid(`${ip} is not an IPv6 address`);
  let compress = -1;
  let longest = 1;
  for (let i = 0; i < 8; ) {
    if (p[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && p[j] === 0) j++;
    if (j - i > longest) {
      longest = j - i;
      compress = i;
    }
    i = j;
  }
  let out = "";
  let skipping = false;
  for (let i = 0; i < 8; i++) {
    if (skipping && p[i] === 0) continue;
    skipping = false;
    if (i === compress) {
      out += i === 0 ? "::" : ":";
      skipping = true;
      continue;
    }
    out += p[i]!.toString(16);
    if (i !== 7) out += ":";
  }
  return out;
}

/** The value of a hex digit's char code, or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * The eight 16-bit pieces of an IPv6 address (`::` and a dotted IPv4 tail allowed), or null. One pass over
 * the characters: no splitting, no regex.
 */
function ipv6Pieces(ip: string): number[] | null {
  const n = ip.length;
  if (n < 2 || n > 45) return null;
  const pieces: number[] = [];
  let compressAt = -1;
  let i = 0;
  if (ip.charCodeAt(0) === 58 /* : */) {
    if (ip.charCodeAt(1) !== 58) return null;
    compressAt = 0;
    i = 2;
  }
  while (i < n) {
    if (pieces.length === 8) return null;
    const start = i;
    let value = 0;
    let d: number;
    while (i < n && i - start < 4 && (d = hexDigit(ip.charCodeAt(i))) >= 0) {
      value = value * 16 + d;
      i++;
    }
    if (i < n && ip.charCodeAt(i) === 46 /* . */) {
      // A dotted IPv4 tail: the last two pieces.
      const v4 = ip.slice(start);
      if (pieces.length > 6 || !isIPv4(v4)) return null;
      const b = v4.split(".");
      pieces.push((Number(b[0]) << 8) | Number(b[1]), (Number(b[2]) << 8) | Number(b[3]));
      i = n;
      break;
    }
    if (i === start) return null;
    pieces.push(value);
    if (i === n) break;
    if (ip.charCodeAt(i) !== 58) return null;
    i++;
    if (i < n && ip.charCodeAt(i) === 58) {
      if (compressAt >= 0) return null;
      compressAt = pieces.length;
      i++;
    } else if (i === n) return null;
  }
  if (compressAt < 0) return pieces.length === 8 ? pieces : null;
  if (pieces.length > 7) return null;
  const out = new Array<number>(8).fill(0);
  for (let k = 0; k < compressAt; k++) out[k] = pieces[k]!;
  for (let k = compressAt, o = 8 - (pieces.length - compressAt); k < pieces.length; k++, o++) out[o] = pieces[k]!;
  return out;
}

/** True when `ip` is an IPv6 address the realm accepts (no zone index). */
export const isIPv6Address = (ip: string): boolean => ipv6Pieces(ip) !== null;

/** The eight groups of an IPv6 address, four hex digits each, joined by `:`. */
export function expandIPv6(ip: string): string {
  const [head, tail] = canonicalIPv6(ip).split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail !== undefined ? (tail ? tail.split(":") : []) : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.map((g) => g.padStart(4, "0")).join(":");
}

/**
 * Parses the data of one record from presentation tokens into the realm's canonical text (the form stored
 * in events and written to zone files): pure printable ASCII on one line (strings quoted, octets outside
 * printable ASCII as `\DDD`), names absolute and in lower case (RFC 4034 6.2's canonical form). Names are
 * read by `names` (a master file's rules relative to `origin` unless given). Data in RFC 3597's generic
 * form (`\# len hex`) is read for any type; for a type the realm knows it becomes that type's own form.
 */
export function canonicalRdata(type: RecordType, tokens: Token[], origin?: string, names?: NameReader): string {
  if (tokens.length > 0 && tokens[0]!.raw === "\\#" && !tokens[0]!.quoted) {
    const wire = genericOctets(tokens);
    if (isGenericType(type)) return `\\# ${wire.length}${wire.length ? ` ${wire.toString("hex")}` : ""}`;
    let text: string;
    try {
      text = wireToPresentation(type, wire);
    } catch (err) {
      throw invalid(`${type} data in RFC 3597 form (\\# ${wire.length} ...) is not a valid ${type} record: ${err instanceof Error ? err.message : String(err)}`);
    }
    return canonicalRdata(type, tokenize(text, true), ".");
  }
  if (isGenericType(type)) throw invalid(`${type} data must be in RFC 3597 form: \\# <length> <hex>`);
  switch (type) {
    case "A": {
      arity(tokens, 1, type, "address");
      if (!isIPv4(tokens[0]!.raw)) throw invalid(`A data ${tokens[0]!.raw} is not an IPv4 address`);
      return tokens[0]!.raw;
    }
    case "AAAA": {
      arity(tokens, 1, type, "address");
      if (!isIPv6Address(tokens[0]!.raw)) throw invalid(`AAAA data ${tokens[0]!.raw} is not an IPv6 address`);
      return canonicalIPv6(tokens[0]!.raw);
    }
    case "CNAME":
    case "NS":
    case "PTR":
    case "DNAME":
      arity(tokens, 1, type, "target");
      return dataName(tokens[0], `${type} target`, origin, names);
    case "MX":
      arity(tokens, 2, type, "preference exchange");
      return `${u(tokens[0], 16, "MX preference")} ${dataName(tokens[1], "MX exchange", origin, names)}`;
    case "SRV":
      arity(tokens, 4, type, "priority weight port target");
      return `${u(tokens[0], 16, "SRV priority")} ${u(tokens[1], 16, "SRV weight")} ${u(tokens[2], 16, "SRV port")} ${dataName(tokens[3], "SRV target", origin, names)}`;
    case "TXT": {
      if (tokens.length === 0) throw invalid("TXT data needs at least one string");
      let out = "";
      for (const t of tokens) {
        if (t.text.length > 255) throw invalid("a TXT character-string is longer than 255 octets (split it into several quoted strings)");
        out += (out ? " " : "") + presentString(t.text);
      }
      return out;
    }
    case "HINFO":
      arity(tokens, 2, type, '"cpu" "os"');
      return `${charString(tokens[0], "HINFO cpu")} ${charString(tokens[1], "HINFO os")}`;
    case "CAA": {
      arity(tokens, 3, type, 'flags tag "value"');
      // RFC 8659 4.1: tags are matched case-insensitively, and kept as written (so is the value, octet for octet).
      const tag = tokens[1]!.raw;
      if (!/^[a-z0-9]{1,15}$/i.test(tag)) throw invalid(`CAA tag ${tag} is not 1..15 letters or digits`);
      return `${u(tokens[0], 8, "CAA flags")} ${tag} ${presentString(tokens[2]!.text)}`;
    }
    case "SOA": {
      arity(tokens, 7, type, "mname rname serial refresh retry expire minimum");
      const nums = tokens.slice(2).map((t, i) => (i === 0 ? u(t, 32, "serial") : u({ raw: String(parseTtl(t.raw) ?? t.raw), text: "", quoted: false }, 32, ["serial", "refresh", "retry", "expire", "minimum"][i]!)));
      return `${dataName(tokens[0], "SOA mname", origin, names)} ${dataName(tokens[1], "SOA rname", origin, names)} ${nums.join(" ")}`;
    }
    case "TLSA": {
      if (tokens.length < 4) throw invalid('TLSA data must be "usage selector matching-type hex"');
      const hex = hexOf(tokens.slice(3), "TLSA certificate association data");
      return `${u(tokens[0], 8, "TLSA usage")} ${u(tokens[1], 8, "TLSA selector")} ${u(tokens[2], 8, "TLSA matching type")} ${hex}`;
    }
    case "DS": {
      if (tokens.length < 4) throw invalid('DS data must be "key-tag algorithm digest-type digest"');
      const digestType = u(tokens[2], 8, "DS digest type");
      const hex = hexOf(tokens.slice(3), "DS digest");
      const want = DIGEST_LENGTHS[digestType];
      if (want !== undefined && hex.length !== want * 2) throw invalid(`DS digest of type ${digestType} must be ${want} octets, not ${hex.length / 2}`);
      return `${u(tokens[0], 16, "DS key tag")} ${u(tokens[1], 8, "DS algorithm")} ${digestType} ${hex}`;
    }
    case "SSHFP": {
      if (tokens.length < 3) throw invalid('SSHFP data must be "algorithm fp-type fingerprint"');
      const fpType = u(tokens[1], 8, "SSHFP fingerprint type");
      const hex = hexOf(tokens.slice(2), "SSHFP fingerprint");
      const want = SSHFP_LENGTHS[fpType];
      if (want !== undefined && hex.length !== want * 2) throw invalid(`SSHFP fingerprint of type ${fpType} must be ${want} octets, not ${hex.length / 2}`);
      return `${u(tokens[0], 8, "SSHFP algorithm")} ${fpType} ${hex}`;
    }
    case "NAPTR": {
      arity(tokens, 6, type, 'order preference "flags" "services" "regexp" replacement');
      const flags = tokens[2]!.text;
      if (!/^[a-z0-9]*$/i.test(flags)) throw invalid(`NAPTR flags ${JSON.stringify(flags)} must be letters and digits (RFC 3403 4.1)`);
      const replacement = tokens[5]!.raw === "." ? "." : dataName(tokens[5], "NAPTR replacement", origin, names);
      return `${u(tokens[0], 16, "NAPTR order")} ${u(tokens[1], 16, "NAPTR preference")} ${charString(tokens[2], "NAPTR flags")} ${charString(tokens[3], "NAPTR services")} ${charString(tokens[4], "NAPTR regexp")} ${replacement}`;
    }
    case "HTTPS":
    case "SVCB": {
      if (tokens.length < 2) throw invalid(`${type} data must be "priority target [key=value ...]"`);
      const prio = u(tokens[0], 16, `${type} priority`);
      const target = tokens[1]!.raw === "." ? "." : dataName(tokens[1], `${type} target`, origin, names);
      const params = svcParams(tokens.slice(2), type);
      return [String(prio), target, ...params.map((p) => p.text)].join(" ");
    }
  }
}

/** The octets of RFC 3597 generic data: `\# <length> <hex...>`, the length matching the hex. */
function genericOctets(tokens: Token[]): Buffer {
  const len = tokens[1];
  if (!len || !/^\d+$/.test(len.raw)) throw invalid("RFC 3597 data must be \\# <length> <hex>");
  const n = Number(len.raw);
  if (n > 65535) throw invalid(`RFC 3597 data length ${n} is more than 65535 octets`);
  const hex = hexOf(tokens.slice(2), "RFC 3597 data", true);
  if (hex.length !== n * 2) throw invalid(`RFC 3597 data says ${n} octets and holds ${hex.length / 2}`);
  return Buffer.from(hex, "hex");
}

/**
 * The canonical form of data as stored. Data written by this realm is its own canonical form; TXT and CAA
 * data from events of earlier versions may hold raw characters (those versions stored what `\DDD` escapes
 * and UTF-8 input gave, unescaped): a character up to U+00FF is the octet they served for it, anything past
 * that its UTF-8 octets. Cheap for canonical data (one regex test).
 */
export function storedForm(type: RecordType, data: string): string {
  if (!NOT_PRINTABLE.test(data) || (type !== "TXT" && type !== "CAA" && type !== "HINFO" && type !== "NAPTR" && type !== "SVCB" && type !== "HTTPS")) return data;
  try {
    return canonicalRdata(type, tokenize(data, true), ".");
  } catch {
    return data;
  }
}
const NOT_PRINTABLE = /[^\x20-\x7e]/;

interface SvcParam {
  key: number;
  text: string;
  wire: Buffer;
}

/**
 * SvcParamKeys by name. RFC 9460's own (0..6) are written by name; dohpath (RFC 9461) and ohttp (RFC 9540)
 * are read by name too but written `key7`/`key8`, the generic form every RFC 9460 reader takes (Knot 3.2,
 * say, knows neither name).
 */
const SVC_KEYS: Record<string, number> = { mandatory: 0, alpn: 1, "no-default-alpn": 2, port: 3, ipv4hint: 4, ech: 5, ipv6hint: 6, dohpath: 7, ohttp: 8 };
const SVC_NAMES = new Map<number, string>(Object.entries(SVC_KEYS).filter(([, v]) => v <= 6).map(([k, v]) => [v, k]));
const svcKeyName = (key: number) => SVC_NAMES.get(key) ?? `key${key}`;

/** A SvcParamKey as written: a name RFC 9460 (or 9461, 9540) gives, or `keyNNNNN` for any other key. */
function svcKey(name: string, lenient = false): number {
  const known = SVC_KEYS[name];
  if (known !== undefined) return known;
  if (!/^key\d{1,5}$/.test(name)) throw invalid(`unknown SvcParamKey ${name}`);
  const key = Number(name.slice(3));
  if (key > 65535) throw invalid(`SvcParamKey ${name} is not a 16-bit number`);
  if (lenient) return key;
  if (key === 65535) throw invalid(`SvcParamKey ${name} is reserved (RFC 9460 14.3.2)`);
  if (SVC_NAMES.has(key)) throw invalid(`write SvcParamKey ${name} by its name, ${SVC_NAMES.get(key)}`);
  return key;
}

/** A SvcParamValue for presentation: bare when it is plain, else a quoted string with escapes. */
const BARE_VALUE = /^[\x21\x23-\x27\x2a-\x3a\x3c-\x5b\x5d-\x7e]+$/;
const presentValue = (octets: string) => (BARE_VALUE.test(octets) ? octets : presentString(octets));

const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};

/**
 * SvcParams (RFC 9460 2.1, 7, 8) from their presentation tokens: each key at most once (2.2: a duplicate
 * makes the RR malformed), the keys `mandatory` lists present (and not `mandatory` itself, nor twice),
 * `no-default-alpn` only with `alpn`; sorted by key, as the wire format must be.
 */
function svcParams(tokens: Token[], type: string): SvcParam[] {
  const params = tokens.map((t) => svcParam(t.raw));
  params.sort((a, b) => a.key - b.key);
  for (let i = 1; i < params.length; i++) if (params[i]!.key === params[i - 1]!.key) throw invalid(`${type} SvcParamKey ${svcKeyName(params[i]!.key)} appears more than once (RFC 9460 2.2: the record is malformed)`);
  const keys = new Set(params.map((p) => p.key));
  const mandatory = params.find((p) => p.key === 0);
  if (mandatory) {
    for (let o = 0; o < mandatory.wire.length; o += 2) {
      const k = mandatory.wire.readUInt16BE(o);
      if (!keys.has(k)) throw invalid(`${type} mandatory lists ${svcKeyName(k)}, which the record does not have (RFC 9460 8)`);
    }
  }
  if (keys.has(2) && !keys.has(1)) throw invalid(`${type} no-default-alpn needs alpn (RFC 9460 7.1.1)`);
  return params;
}

/**
 * One SvcParam from its presentation text. `lenient` is for encoding data already stored: data that
 * versions before this one accepted (`key1=...`, an unchecked ech, an empty list item) is encoded as those
 * versions did instead of refused, so serving never throws.
 */
function svcParam(raw: string, lenient = false): SvcParam {
  const eq = raw.indexOf("=");
  const name = (eq < 0 ? raw : raw.slice(0, eq)).toLowerCase();
  const key = svcKey(name, lenient);
  let valueRaw = eq < 0 ? "" : raw.slice(eq + 1);
  if (valueRaw.length >= 2 && valueRaw.startsWith('"') && valueRaw.endsWith('"')) valueRaw = valueRaw.slice(1, -1);
  const value = decodeOctets(valueRaw);
  const needsValue = () => {
    if (!lenient && (eq < 0 || value === "")) throw invalid(`SvcParam ${name} needs a value`);
  };
  const list = () => {
    needsValue();
    const items = value.split(",");
    if (lenient) return items.filter((s) => s !== "");
    if (items.some((s) => s === "")) throw invalid(`SvcParam ${name} has an empty item in ${JSON.stringify(value)}`);
    return items;
  };
  switch (key) {
    case 0: {
      const codes = list().map((k) => svcKey(k.toLowerCase(), lenient));
      if (codes.includes(0) && !lenient) throw invalid("mandatory must not list mandatory itself (RFC 9460 8)");
      codes.sort((a, b) => a - b);
      if (!lenient) for (let i = 1; i < codes.length; i++) if (codes[i] === codes[i - 1]) throw invalid(`mandatory lists ${svcKeyName(codes[i]!)} twice (RFC 9460 8)`);
      return { key, text: `mandatory=${codes.map(svcKeyName).join(",")}`, wire: Buffer.concat(codes.map(u16)) };
    }
    case 1: {
      const ids = list();
      for (const id of ids) if (id.length > 255) throw invalid("an alpn protocol id is longer than 255 octets");
      return { key, text: `alpn=${presentValue(ids.join(","))}`, wire: Buffer.concat(ids.map((id) => Buffer.concat([Buffer.from([id.length]), Buffer.from(id, "latin1")]))) };
    }
    case 2:
    case 8:
      if (eq >= 0 && !lenient) throw invalid(`${name} takes no value`);
      return { key, text: svcKeyName(key), wire: Buffer.alloc(0) };
    case 3: {
      needsValue();
      if (!/^\d+$/.test(value) || Number(value) > 65535) throw invalid(`port ${value} is not a port number`);
      return { key, text: `port=${Number(value)}`, wire: u16(Number(value)) };
    }
    case 4: {
      const ips = list();
      for (const ip of ips) if (!isIPv4(ip)) throw invalid(`ipv4hint ${ip} is not an IPv4 address`);
      return { key, text: `ipv4hint=${ips.join(",")}`, wire: Buffer.from(ips.flatMap((ip) => ip.split(".").map(Number))) };
    }
    case 6: {
      const ips = list();
      for (const ip of ips) if (!isIPv6Address(ip)) throw invalid(`ipv6hint ${ip} is not an IPv6 address`);
      return { key, text: `ipv6hint=${ips.map(canonicalIPv6).join(",")}`, wire: Buffer.concat(ips.map((ip) => Buffer.from(expandIPv6(ip).replace(/:/g, ""), "hex"))) };
    }
    case 5: {
      needsValue();
      if (!lenient && (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || value.length % 4 !== 0)) throw invalid("ech must be base64 (RFC 9460 7.3)");
      return { key, text: `ech=${value}`, wire: Buffer.from(value, "base64") };
    }
    default: {
      if (key === 7) needsValue();
      if (eq < 0) return { key, text: svcKeyName(key), wire: Buffer.alloc(0) };
      return { key, text: `${svcKeyName(key)}=${presentValue(value)}`, wire: Buffer.from(value, "latin1") };
    }
  }
}

const bare = (n: string) => (n === "." ? "." : n.slice(0, -1));

/** An absolute name in wire format, uncompressed (RFC 3597 4: the types after RFC 1035 are never compressed). */
function nameWire(n: string): Buffer {
  if (n === ".") return Buffer.from([0]);
  const parts = n.slice(0, -1).split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, "latin1")]));
  return Buffer.concat([...parts, Buffer.from([0])]);
}

const stringWire = (octets: string) => Buffer.concat([Buffer.from([octets.length]), Buffer.from(octets, "latin1")]);

/** The RDATA of canonical (or earlier versions' stored) data in wire format, for the types dns-packet is not given. */
export function rdataWire(type: RecordType, data: string): Buffer {
  if (isGenericType(type)) {
    const t = data.split(" ");
    return Buffer.from(t[2] ?? "", "hex");
  }
  const t = tokenize(data, true);
  const num = (i: number) => Number(t[i]!.raw);
  const byte = (i: number) => Buffer.from([num(i)]);
  switch (type) {
    case "A":
      return Buffer.from(data.split(".").map(Number));
    case "AAAA":
      return Buffer.from(expandIPv6(data).replace(/:/g, ""), "hex");
    case "CNAME":
    case "NS":
    case "PTR":
    case "DNAME":
      return nameWire(data);
    case "MX":
      return Buffer.concat([u16(num(0)), nameWire(t[1]!.raw)]);
    case "SRV":
      return Buffer.concat([u16(num(0)), u16(num(1)), u16(num(2)), nameWire(t[3]!.raw)]);
    case "TXT":
      return Buffer.concat(t.map((s) => stringWire(s.text)));
    case "HINFO":
      return Buffer.concat([stringWire(t[0]!.text), stringWire(t[1]!.text)]);
    case "CAA":
      return Buffer.concat([byte(0), Buffer.from([t[1]!.raw.length]), Buffer.from(t[1]!.raw, "latin1"), Buffer.from(t[2]!.text, "latin1")]);
    case "SOA": {
      const n = Buffer.alloc(20);
      for (let i = 0; i < 5; i++) n.writeUInt32BE(num(2 + i), i * 4);
      return Buffer.concat([nameWire(t[0]!.raw), nameWire(t[1]!.raw), n]);
    }
    case "TLSA":
      return Buffer.concat([byte(0), byte(1), byte(2), Buffer.from(t[3]!.raw, "hex")]);
    case "DS":
      return Buffer.concat([u16(num(0)), byte(1), byte(2), Buffer.from(t[3]!.raw, "hex")]);
    case "SSHFP":
      return Buffer.concat([byte(0), byte(1), Buffer.from(t[2]!.raw, "hex")]);
    case "NAPTR":
      return Buffer.concat([u16(num(0)), u16(num(1)), stringWire(t[2]!.text), stringWire(t[3]!.text), stringWire(t[4]!.text), nameWire(t[5]!.raw)]);
    case "HTTPS":
    case "SVCB": {
      const params = t.slice(2).map((p) => {
        const sp = svcParam(p.raw, true);
        return Buffer.concat([u16(sp.key), u16(sp.wire.length), sp.wire]);
      });
      return Buffer.concat([u16(num(0)), nameWire(t[1]!.raw), ...params]);
    }
  }
}

/** Reads wire-format RDATA (RFC 3597 data of a known type) into that type's presentation text. */
function wireToPresentation(type: KnownType, b: Buffer): string {
  let o = 0;
  const need = (n: number) => {
    if (o + n > b.length) throw new Error("the data ends early");
  };
  const u8 = () => (need(1), b[o++]!);
  const r16 = () => (need(2), (o += 2), b.readUInt16BE(o - 2));
  const r32 = () => (need(4), (o += 4), b.readUInt32BE(o - 4));
  const str = () => {
    const n = u8();
    need(n);
    o += n;
    return presentString(b.subarray(o - n, o).toString("latin1"));
  };
  const name = () => {
    const labels: string[] = [];
    for (;;) {
      const n = u8();
      if (n === 0) break;
      if (n > 63) throw new Error("a compressed or extended label");
      need(n);
      labels.push([...b.subarray(o, o + n)].map((c) => (/[a-zA-Z0-9_*/-]/.test(String.fromCharCode(c)) ? String.fromCharCode(c) : `\\${String(c).padStart(3, "0")}`)).join(""));
      o += n;
    }
    return labels.length ? `${labels.join(".")}.` : ".";
  };
  const rest = () => {
    const h = b.subarray(o).toString("hex");
    o = b.length;
    return h;
  };
  const out = (() => {
    switch (type) {
      case "A":
        if (b.length !== 4) throw new Error("A data is 4 octets");
        o = 4;
        return [...b].join(".");
      case "AAAA":
        if (b.length !== 16) throw new Error("AAAA data is 16 octets");
        o = 16;
        return canonicalIPv6(b.toString("hex").replace(/(.{4})(?!$)/g, "$1:"));
      case "CNAME":
      case "NS":
      case "PTR":
      case "DNAME":
        return name();
      case "MX":
        return `${r16()} ${name()}`;
      case "SRV":
        return `${r16()} ${r16()} ${r16()} ${name()}`;
      case "TXT": {
        const s: string[] = [];
        while (o < b.length) s.push(str());
        return s.join(" ");
      }
      case "HINFO":
        return `${str()} ${str()}`;
      case "CAA": {
        const flags = u8();
        const n = u8();
        need(n);
        const tag = b.subarray(o, o + n).toString("latin1");
        o += n;
        const value = presentString(b.subarray(o).toString("latin1"));
        o = b.length;
        return `${flags} ${tag} ${value}`;
      }
      case "SOA":
        return `${name()} ${name()} ${r32()} ${r32()} ${r32()} ${r32()} ${r32()}`;
      case "TLSA":
        return `${u8()} ${u8()} ${u8()} ${rest()}`;
      case "DS":
        return `${r16()} ${u8()} ${u8()} ${rest()}`;
      case "SSHFP":
        return `${u8()} ${u8()} ${rest()}`;
      case "NAPTR":
        return `${r16()} ${r16()} ${str()} ${str()} ${str()} ${name()}`;
      case "HTTPS":
      case "SVCB": {
        const parts = [String(r16()), name()];
        while (o < b.length) {
          const key = r16();
          const len = r16();
          need(len);
          const v = b.subarray(o, o + len);
          o += len;
          parts.push(svcParamText(key, v));
        }
        return parts.join(" ");
      }
    }
  })();
  if (o !== b.length) throw new Error(`${b.length - o} octets left over`);
  return out;
}

/** One SvcParam from wire format into presentation text. */
function svcParamText(key: number, v: Buffer): string {
  const name = svcKeyName(key);
  const list16 = () => {
    const ks: string[] = [];
    for (let i = 0; i + 1 < v.length; i += 2) ks.push(svcKeyName(v.readUInt16BE(i)));
    return ks.join(",");
  };
  switch (key) {
    case 0:
      return `${name}=${list16()}`;
    case 1: {
      const ids: string[] = [];
      for (let i = 0; i < v.length; ) {
        const n = v[i]!;
        ids.push(v.subarray(i + 1, i + 1 + n).toString("latin1"));
        i += 1 + n;
      }
      return `${name}=${presentValue(ids.join(","))}`;
    }
    case 2:
    case 8:
      return name;
    case 3:
      return `${name}=${v.readUInt16BE(0)}`;
    case 4: {
      const ips: string[] = [];
      for (let i = 0; i + 3 < v.length; i += 4) ips.push([...v.subarray(i, i + 4)].join("."));
      return `${name}=${ips.join(",")}`;
    }
    case 6: {
      const ips: string[] = [];
      for (let i = 0; i + 15 < v.length; i += 16) ips.push(canonicalIPv6(v.subarray(i, i + 16).toString("hex").replace(/(.{4})(?!$)/g, "$1:")));
      return `${name}=${ips.join(",")}`;
    }
    case 5:
      return `${name}=${v.toString("base64")}`;
    default:
      return v.length ? `${name}=${presentValue(v.toString("latin1"))}` : name;
  }
}

/** The dns-packet record `{type, data}` of canonical data, for encoding answers. */
export function packetData(type: RecordType, data: string): { type: string; data: unknown } {
  switch (type) {
    case "A":
    case "AAAA":
      return { type, data };
    case "CNAME":
    case "NS":
    case "PTR":
      return { type, data: bare(data) };
    case "MX": {
      const f = data.split(" ");
      return { type, data: { preference: Number(f[0]), exchange: bare(f[1]!) } };
    }
    case "SRV": {
      const f = data.split(" ");
      return { type, data: { priority: Number(f[0]), weight: Number(f[1]), port: Number(f[2]), target: bare(f[3]!) } };
    }
    case "TXT":
      return { type, data: tokenize(data, true).map((s) => Buffer.from(s.text, "latin1")) };
    case "SOA": {
      const f = data.split(" ");
      return {
        type,
        data: { mname: bare(f[0]!), rname: bare(f[1]!), serial: Number(f[2]), refresh: Number(f[3]), retry: Number(f[4]), expire: Number(f[5]), minimum: Number(f[6]) },
      };
    }
    case "TLSA": {
      const f = data.split(" ");
      return { type, data: { usage: Number(f[0]), selector: Number(f[1]), matchingType: Number(f[2]), certificate: Buffer.from(f[3]!, "hex") } };
    }
    default:
      // Everything else goes out as its exact RDATA octets (dns-packet's generic record): CAA and HINFO
      // octet for octet (its own encoders would re-encode strings as UTF-8), the rest never compressed.
      return { type: `UNKNOWN_${typeCode(type)}`, data: rdataWire(type, data) };
  }
}

/** The name a record points at, for additional-section processing and CNAME chasing. */
export function targetOf(type: RecordType, data: string): string | undefined {
  const f = data.split(" ");
  switch (type) {
    case "CNAME":
    case "NS":
    case "DNAME":
      return f[0];
    case "MX":
      return f[1];
    case "SRV":
      return f[3];
    default:
      return undefined;
  }
}
