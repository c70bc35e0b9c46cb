import { isIPv4 } from "node:net";
import { invalid } from "../../services/kernel/errors.js";
import { absoluteName } from "./names.js";

/** Record types the realm stores and serves. */
export const RECORD_TYPES = ["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS", "PTR", "SOA", "HTTPS", "SVCB", "TLSA"] as const;
export type RecordType = (typeof RECORD_TYPES)[number];

export const TYPE_CODES: Record<RecordType, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, TLSA: 52, SVCB: 64, HTTPS: 65, CAA: 257 };
export const TYPE_BY_CODE = new Map<number, RecordType>(Object.entries(TYPE_CODES).map(([t, c]) => [c, t as RecordType]));

const RECORD_TYPE_SET: ReadonlySet<string> = new Set(RECORD_TYPES);

export function isRecordType(t: string): t is RecordType {
  return RECORD_TYPE_SET.has(t);
}

/** One token of presentation text: `quoted` tokens came from "..." (escapes already resolved). */
export interface Token {
  text: string;
  quoted: boolean;
}

/**
 * Splits presentation text into tokens (quoted strings keep their spaces; `\"`, `\\` and `\DDD` escapes).
 * It copies slices of the text rather than characters: a million-record zone file goes through here.
 */
export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9) {
      i++;
      continue;
    }
    if (c === 34) {
      let s = "";
      let from = ++i;
      for (;;) {
        if (i >= n) throw invalid("unterminated quoted string");
        const d = text.charCodeAt(i);
        if (d === 34) break;
        if (d === 92) {
          s += text.slice(from, i);
          const digits = text.slice(i + 1, i + 4);
          if (/^\d{3}$/.test(digits)) {
            s += String.fromCharCode(Number(digits));
            i += 4;
          } else {
            if (i + 1 >= n) throw invalid("dangling escape in quoted string");
            s += text[i + 1];
            i += 2;
          }
          from = i;
          continue;
        }
        i++;
      }
      s += text.slice(from, i);
      i++;
      out.push({ text: s, quoted: true });
      continue;
    }
    const from = i;
    while (i < n) {
      const d = text.charCodeAt(i);
      if (d === 32 || d === 9) break;
      i++;
    }
    out.push({ text: text.slice(from, i), quoted: false });
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

const quote = (s: string) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;

function u(token: Token | undefined, bits: 8 | 16 | 32, what: string): number {
  if (!token || !/^\d+$/.test(token.text)) throw invalid(`${what} must be a number`);
  const n = Number(token.text);
  if (n >= 2 ** bits) throw invalid(`${what} ${n} does not fit in ${bits} bits`);
  return n;
}

function nameArg(token: Token | undefined, origin: string | undefined, what: string): string {
  if (!token) throw invalid(`${what} is missing`);
  return absoluteName(token.text, origin);
}

function arity(tokens: Token[], n: number, type: string, shape: string): void {
  if (tokens.length !== n) throw invalid(`${type} data must be "${shape}", got ${tokens.length} fields`);
}

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
 * in events and written to zone files). Relative names are completed with `origin`.
 */
export function canonicalRdata(type: RecordType, tokens: Token[], origin?: string): string {
  switch (type) {
    case "A": {
      arity(tokens, 1, type, "address");
      if (!isIPv4(tokens[0]!.text)) throw invalid(`A data ${tokens[0]!.text} is not an IPv4 address`);
      return tokens[0]!.text;
    }
    case "AAAA": {
      arity(tokens, 1, type, "address");
      if (!isIPv6Address(tokens[0]!.text)) throw invalid(`AAAA data ${tokens[0]!.text} is not an IPv6 address`);
      return canonicalIPv6(tokens[0]!.text);
    }
    case "CNAME":
    case "NS":
    case "PTR":
      arity(tokens, 1, type, "target");
      return nameArg(tokens[0], origin, `${type} target`);
    case "MX":
      arity(tokens, 2, type, "preference exchange");
      return `${u(tokens[0], 16, "MX preference")} ${nameArg(tokens[1], origin, "MX exchange")}`;
    case "SRV":
      arity(tokens, 4, type, "priority weight port target");
      return `${u(tokens[0], 16, "SRV priority")} ${u(tokens[1], 16, "SRV weight")} ${u(tokens[2], 16, "SRV port")} ${nameArg(tokens[3], origin, "SRV target")}`;
    case "TXT": {
      if (tokens.length === 0) throw invalid("TXT data needs at least one string");
      for (const t of tokens) if (Buffer.byteLength(t.text, "latin1") > 255) throw invalid("a TXT character-string is longer than 255 octets (split it into several quoted strings)");
      return tokens.map((t) => quote(t.text)).join(" ");
    }
    case "CAA": {
      arity(tokens, 3, type, 'flags tag "value"');
      const tag = tokens[1]!.text.toLowerCase();
      if (!/^[a-z0-9]{1,15}$/.test(tag)) throw invalid(`CAA tag ${tag} is not 1..15 letters or digits`);
      return `${u(tokens[0], 8, "CAA flags")} ${tag} ${quote(tokens[2]!.text)}`;
    }
    case "SOA": {
      arity(tokens, 7, type, "mname rname serial refresh retry expire minimum");
      const nums = tokens.slice(2).map((t, i) => (i === 0 ? u(t, 32, "serial") : u({ text: String(parseTtl(t.text) ?? t.text), quoted: false }, 32, ["serial", "refresh", "retry", "expire", "minimum"][i]!)));
      return `${nameArg(tokens[0], origin, "SOA mname")} ${nameArg(tokens[1], origin, "SOA rname")} ${nums.join(" ")}`;
    }
    case "TLSA": {
      if (tokens.length < 4) throw invalid('TLSA data must be "usage selector matching-type hex"');
      const hex = tokens.slice(3).map((t) => t.text).join("").toLowerCase();
      if (!/^([0-9a-f]{2})+$/.test(hex)) throw invalid("TLSA certificate association data must be hex");
      return `${u(tokens[0], 8, "TLSA usage")} ${u(tokens[1], 8, "TLSA selector")} ${u(tokens[2], 8, "TLSA matching type")} ${hex}`;
    }
    case "HTTPS":
    case "SVCB": {
      if (tokens.length < 2) throw invalid(`${type} data must be "priority target [key=value ...]"`);
      const prio = u(tokens[0], 16, `${type} priority`);
      const target = tokens[1]!.text === "." ? "." : nameArg(tokens[1], origin, `${type} target`);
      const params = tokens.slice(2).map((t) => svcParam(t.text));
      params.sort((a, b) => a.key - b.key);
      return [String(prio), target, ...params.map((p) => p.text)].join(" ");
    }
  }
}

interface SvcParam {
  key: number;
  text: string;
  wire: Buffer;
}

const SVC_KEYS: Record<string, number> = { mandatory: 0, alpn: 1, "no-default-alpn": 2, port: 3, ipv4hint: 4, ech: 5, ipv6hint: 6 };

function svcParam(text: string): SvcParam {
  const eq = text.indexOf("=");
  const name = (eq < 0 ? text : text.slice(0, eq)).toLowerCase();
  const value = eq < 0 ? "" : text.slice(eq + 1).replace(/^"|"$/g, "");
  const key = SVC_KEYS[name] ?? (/^key\d+$/.test(name) ? Number(name.slice(3)) : -1);
  if (key < 0 || key > 65535) throw invalid(`unknown SvcParam ${name}`);
  const t = (v: string) => (eq < 0 ? name : `${name}=${v}`);
  switch (key) {
    case 1: {
      const ids = value.split(",").filter((s) => s.length > 0);
      if (ids.length === 0) throw invalid("alpn needs at least one protocol id");
      return { key, text: t(ids.join(",")), wire: Buffer.concat(ids.map((id) => Buffer.concat([Buffer.from([id.length]), Buffer.from(id)]))) };
    }
    case 2:
      if (eq >= 0) throw invalid("no-default-alpn takes no value");
      return { key, text: name, wire: Buffer.alloc(0) };
    case 3: {
      if (!/^\d+$/.test(value) || Number(value) > 65535) throw invalid(`port ${value} is not a port number`);
      const b = Buffer.alloc(2);
      b.writeUInt16BE(Number(value));
      return { key, text: t(String(Number(value))), wire: b };
    }
    case 4: {
      const ips = value.split(",");
      for (const ip of ips) if (!isIPv4(ip)) throw invalid(`ipv4hint ${ip} is not an IPv4 address`);
      return { key, text: t(ips.join(",")), wire: Buffer.from(ips.flatMap((ip) => ip.split(".").map(Number))) };
    }
    case 6: {
      const ips = value.split(",");
      for (const ip of ips) if (!isIPv6Address(ip)) throw invalid(`ipv6hint ${ip} is not an IPv6 address`);
      return { key, text: t(ips.map(canonicalIPv6).join(",")), wire: Buffer.concat(ips.map((ip) => Buffer.from(expandIPv6(ip).replace(/:/g, ""), "hex"))) };
    }
    case 0: {
      const keys = value.split(",").map((k) => SVC_KEYS[k] ?? -1);
      if (keys.some((k) => k < 0)) throw invalid(`mandatory ${value} names an unknown key`);
      const b = Buffer.alloc(keys.length * 2);
      keys.forEach((k, i) => b.writeUInt16BE(k, i * 2));
      return { key, text: t(value), wire: b };
    }
    default: {
      const wire = key === 5 ? Buffer.from(value, "base64") : Buffer.from(value, "utf8");
      return { key, text: t(value), wire };
    }
  }
}

const bare = (n: string) => (n === "." ? "." : n.slice(0, -1));

function nameWire(n: string): Buffer {
  if (n === ".") return Buffer.from([0]);
  const parts = n.slice(0, -1).split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  return Buffer.concat([...parts, Buffer.from([0])]);
}

/** The dns-packet record `{type, data}` of canonical data, for encoding answers. */
export function packetData(type: RecordType, data: string): { type: string; data: unknown } {
  const f = type === "TXT" || type === "CAA" ? tokenize(data).map((t) => t.text) : data.split(" ");
  switch (type) {
    case "A":
    case "AAAA":
      return { type, data };
    case "CNAME":
    case "NS":
    case "PTR":
      return { type, data: bare(data) };
    case "MX":
      return { type, data: { preference: Number(f[0]), exchange: bare(f[1]!) } };
    case "SRV":
      return { type, data: { priority: Number(f[0]), weight: Number(f[1]), port: Number(f[2]), target: bare(f[3]!) } };
    case "TXT":
      return { type, data: f.map((s) => Buffer.from(s, "latin1")) };
    case "CAA":
      return { type, data: { flags: Number(f[0]), tag: f[1], value: f[2] } };
    case "SOA":
      return {
        type,
        data: { mname: bare(f[0]!), rname: bare(f[1]!), serial: Number(f[2]), refresh: Number(f[3]), retry: Number(f[4]), expire: Number(f[5]), minimum: Number(f[6]) },
      };
    case "TLSA":
      return { type, data: { usage: Number(f[0]), selector: Number(f[1]), matchingType: Number(f[2]), certificate: Buffer.from(f[3]!, "hex") } };
    case "HTTPS":
    case "SVCB": {
      const prio = Buffer.alloc(2);
      prio.writeUInt16BE(Number(f[0]));
      const params = f.slice(2).map((p) => {
        const sp = svcParam(p);
        const h = Buffer.alloc(4);
        h.writeUInt16BE(sp.key, 0);
        h.writeUInt16BE(sp.wire.length, 2);
        return Buffer.concat([h, sp.wire]);
      });
      return { type: `UNKNOWN_${TYPE_CODES[type]}`, data: Buffer.concat([prio, nameWire(f[1]!), ...params]) };
    }
  }
}

/** The name a record points at, for additional-section processing and CNAME chasing. */
export function targetOf(type: RecordType, data: string): string | undefined {
  const f = data.split(" ");
  switch (type) {
    case "CNAME":
    case "NS":
      return f[0];
    case "MX":
      return f[1];
    case "SRV":
      return f[3];
    default:
      return undefined;
  }
}
