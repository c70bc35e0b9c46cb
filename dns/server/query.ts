/**
 * A bounded, allocation-light reader of DNS queries. It never throws and never loops: names are read
 * label by label with no compression pointers (a question never needs one), every length is checked
 * against the buffer, and anything unexpected yields a verdict instead of an exception.
 */
export interface ParsedQuery {
  id: number;
  opcode: number;
  rd: boolean;
  /** Absolute, lower case (`www.example.com.`). */
  qname: string;
  /** End offset of the question (the question's bytes are [12, questionEnd)). */
  questionEnd: number;
  qtype: number;
  qclass: number;
  /** UDP payload size the client advertised with EDNS0, or null without an OPT record. */
  ednsPayload: number | null;
  ednsVersion: number;
  /** The DO bit of the query's OPT (RFC 3225), copied into the reply's OPT. */
  dnssecOk: boolean;
  /** Records in the authority section (an IXFR question carries the client's SOA there, RFC 1995 3). */
  nscount: number;
}

export type QueryVerdict =
  | { kind: "query"; q: ParsedQuery }
  /** Too short or a response: nothing is sent back. */
  | { kind: "drop" }
  /**
   * A header was readable but the rest is not: FORMERR with the header's id and opcode; `q` when the
   * question was readable (it is echoed, with an OPT when the query had one).
   */
  | { kind: "formerr"; id: number; opcode: number; rd: boolean; q?: ParsedQuery };

export function readQuery(buf: Buffer): QueryVerdict {
  if (buf.length < 12) return { kind: "drop" };
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  if (flags & 0x8000) return { kind: "drop" }; // a response: never answer one (no reflection loops)
  const opcode = (flags >> 11) & 0xf;
  const rd = (flags & 0x0100) !== 0;
  const formerr = { kind: "formerr" as const, id, opcode, rd };
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  const ns = buf.readUInt16BE(8);
  const ar = buf.readUInt16BE(10);
  if (qd !== 1) return formerr;
  let off = 12;
  let qname = "";
  let total = 0;
  for (;;) {
    if (off >= buf.length) return formerr;
    const len = buf[off]!;
    off++;
    if (len === 0) break;
    if (len > 63) return formerr; // compression pointer or reserved label type in a question
    if (off + len > buf.length) return formerr;
    total += len + 1;
    if (total > 254) return formerr;
    for (let i = off; i < off + len; i++) {
      const c = buf[i]!;
      // Lower-case ASCII; bytes that are not printable are escaped so they cannot forge label breaks.
      if (c >= 0x41 && c <= 0x5a) qname += String.fromCharCode(c + 32);
      else if (c === 0x2e || c === 0x5c || c <= 0x20 || c >= 0x7f) qname += `\\${c.toString().padStart(3, "0")}`;
      else qname += String.fromCharCode(c);
    }
    qname += ".";
    off += len;
  }
  if (qname === "") qname = ".";
  if (off + 4 > buf.length) return formerr;
  const qtype = buf.readUInt16BE(off);
  const qclass = buf.readUInt16BE(off + 2);
  const questionEnd = off + 4;
  const q: ParsedQuery = { id, opcode, rd, qname, questionEnd, qtype, qclass, ednsPayload: null, ednsVersion: 0, dnssecOk: false, nscount: ns };
  // The other sections: records are skipped (bounded by the buffer: each takes at least 11 octets); an OPT
  // in the additional section is read. Two OPTs, an OPT outside the additional section or with an owner
  // other than the root, or a record running past the end: FORMERR (RFC 6891 6.1.1).
  off = questionEnd;
  let opts = 0;
  const records = an + ns + ar;
  for (let i = 0; i < records; i++) {
    const nameStart = off;
    off = skipName(buf, off);
    if (off < 0 || off + 10 > buf.length) return { ...formerr, q };
    const type = buf.readUInt16BE(off);
    const rdlen = buf.readUInt16BE(off + 8);
    if (off + 10 + rdlen > buf.length) return { ...formerr, q };
    if (type === 41) {
      // Two OPTs: FORMERR without an OPT (which of them would it answer?), as knot does.
      if (++opts > 1) return { ...formerr, q: { ...q, ednsPayload: null, ednsVersion: 0, dnssecOk: false } };
      if (i < an + ns || buf[nameStart] !== 0) return { ...formerr, q };
      withEdns(q, buf, off);
    }
    off += 10 + rdlen;
  }
  return { kind: "query", q };
}

function withEdns(q: ParsedQuery, buf: Buffer, typeAt: number): ParsedQuery {
  if (q.ednsPayload !== null) return q;
  q.ednsPayload = Math.max(512, buf.readUInt16BE(typeAt + 2));
  q.ednsVersion = buf[typeAt + 5]!;
  q.dnssecOk = (buf[typeAt + 6]! & 0x80) !== 0;
  return q;
}

/** The offset after a (possibly compressed) name, or -1. A pointer ends the name; nothing is followed. */
function skipName(buf: Buffer, off: number): number {
  for (let n = 0; n < 128; n++) {
    if (off >= buf.length) return -1;
    const len = buf[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= buf.length ? off + 2 : -1;
    if (len > 63) return -1;
    off += len + 1;
  }
  return -1;
}

/** A header-only reply (FORMERR, NOTIMP, ...) with the query's id and opcode. */
export function headerOnly(id: number, opcode: number, rd: boolean, rcode: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(0x8000 | (opcode << 11) | (rd ? 0x0100 : 0) | (rcode & 0xf), 2);
  return b;
}
