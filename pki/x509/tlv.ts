import { malformed } from "../../services/kernel/errors.js";

/**
 * A strict DER tag-length-value reader that only slices: it finds where each element starts and ends so
 * hot paths (CSR reading, leaf building) can hand raw bytes to node:crypto and decode small parts with the
 * ASN.1 schemas, instead of decoding whole structures. Indefinite or non-minimal lengths, multi-byte tags
 * and elements running past their parent are MALFORMED.
 */
export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

export function readTlv(buf: Uint8Array, at: number, limit = buf.length): Tlv {
  if (at + 2 > limit) throw malformed("DER element truncated");
  const tag = buf[at]!;
  if ((tag & 0x1f) === 0x1f) throw malformed("DER multi-byte tags are not supported here");
  let len = buf[at + 1]!;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw malformed("DER length is indefinite or too long");
    if (p + n > limit) throw malformed("DER length truncated");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    if (len < 0x80 || buf[p] === 0) throw malformed("DER length is not minimal");
    p += n;
  }
  if (p + len > limit) throw malformed("DER element runs past its container");
  return { tag, start: at, contentStart: p, end: p + len };
}

/** The elements inside a constructed element, which must fill it exactly. */
export function childrenOf(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.contentStart; p < parent.end; ) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

/** Reads one whole element that must span `buf` exactly, with the expected tag. */
export function readWhole(buf: Uint8Array, tag: number, what: string): Tlv {
  const t = readTlv(buf, 0);
  if (t.tag !== tag || t.end !== buf.length) throw malformed(`${what} is not a single DER element of the expected type`);
  return t;
}

export const raw = (buf: Uint8Array, t: Tlv): Buffer => Buffer.from(buf.buffer, buf.byteOffset + t.start, t.end - t.start);
export const content = (buf: Uint8Array, t: Tlv): Buffer => Buffer.from(buf.buffer, buf.byteOffset + t.contentStart, t.end - t.contentStart);

/** DER length octets. */
export function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export const derTlv = (tag: number, ...parts: Uint8Array[]): Buffer => {
  const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
};

/** INTEGER from unsigned big-endian bytes (leading zeros dropped, a 0x00 added when the top bit is set). */
export function derUnsignedInteger(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = bytes.subarray(i);
  return derTlv(0x02, v[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

/** UTCTime for 1950-2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5), whole seconds, Z. */
export function derTime(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const two = (n: number) => String(n).padStart(2, "0");
  const rest = `${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return derTlv(0x17, Buffer.from(`${two(y % 100)}${rest}`, "ascii"));
  return derTlv(0x18, Buffer.from(`${String(y).padStart(4, "0")}${rest}`, "ascii"));
}
