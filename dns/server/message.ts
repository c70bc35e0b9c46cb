/**
 * A bounded reader of whole DNS messages (UPDATE and signed messages need every section, not just the
 * question): names with compression pointers (only backwards, at most 128 hops), every length checked
 * against the buffer. It never throws: an unreadable message is `null`.
 */
export interface WireRR {
  /** Offset of the record's first octet (its owner name). */
  start: number;
  /** Offset just after the record. */
  end: number;
  /** The owner's labels as octets. */
  labels: Buffer[];
  type: number;
  klass: number;
  ttl: number;
  /** Offset and length of the RDATA. */
  rdata: number;
  rdlength: number;
}

export interface WireMessage {
  id: number;
  flags: number;
  opcode: number;
  /** Question (zone section of an UPDATE). */
  questions: { labels: Buffer[]; type: number; klass: number; end: number }[];
  answers: WireRR[];
  authorities: WireRR[];
  additionals: WireRR[];
}

/** Names are read into labels; a name over 255 octets, a forward pointer or a loop makes the message unreadable. */
export function readName(buf: Buffer, off: number): { labels: Buffer[]; end: number } | null {
  const labels: Buffer[] = [];
  let end = -1;
  let total = 1;
  for (let hops = 0; hops < 128; hops++) {
    if (off >= buf.length) return null;
    const len = buf[off]!;
    if (len === 0) return { labels, end: end < 0 ? off + 1 : end };
    if ((len & 0xc0) === 0xc0) {
      if (off + 1 >= buf.length) return null;
      const ptr = ((len & 0x3f) << 8) | buf[off + 1]!;
      if (end < 0) end = off + 2;
      if (ptr >= off) return null; // only backwards: no loops
      off = ptr;
      continue;
    }
    if (len > 63 || off + 1 + len > buf.length) return null;
    total += len + 1;
    if (total > 255) return null;
    labels.push(buf.subarray(off + 1, off + 1 + len));
    off += len + 1;
  }
  return null;
}

export function readMessage(buf: Buffer): WireMessage | null {
  if (buf.length < 12) return null;
  const flags = buf.readUInt16BE(2);
  const counts = [buf.readUInt16BE(4), buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10)] as const;
  const m: WireMessage = { id: buf.readUInt16BE(0), flags, opcode: (flags >> 11) & 0xf, questions: [], answers: [], authorities: [], additionals: [] };
  let off = 12;
  for (let i = 0; i < counts[0]; i++) {
    const n = readName(buf, off);
    if (!n || n.end + 4 > buf.length) return null;
    m.questions.push({ labels: n.labels, type: buf.readUInt16BE(n.end), klass: buf.readUInt16BE(n.end + 2), end: n.end + 4 });
    off = n.end + 4;
  }
  const sections = [m.answers, m.authorities, m.additionals];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      const n = readName(buf, off);
      if (!n || n.end + 10 > buf.length) return null;
      const rdlength = buf.readUInt16BE(n.end + 8);
      const rdata = n.end + 10;
      if (rdata + rdlength > buf.length) return null;
      sections[s]!.push({ start: off, end: rdata + rdlength, labels: n.labels, type: buf.readUInt16BE(n.end), klass: buf.readUInt16BE(n.end + 2), ttl: buf.readUInt32BE(n.end + 4), rdata, rdlength });
      off = rdata + rdlength;
    }
  }
  if (off !== buf.length) return null; // trailing octets: not a message this reader vouches for
  return m;
}

/** Labels as a presentation name (absolute, trailing dot), octets outside letters/digits/`-_*` escaped as `\DDD`; case kept. */
export function presentName(labels: Buffer[]): string {
  if (labels.length === 0) return ".";
  let out = "";
  for (const l of labels) {
    for (const c of l) {
      if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x5f || c === 0x2a || c === 0x2f) out += String.fromCharCode(c);
      else out += `\\${c.toString().padStart(3, "0")}`;
    }
    out += ".";
  }
  return out;
}

/** A name's canonical wire form (RFC 4034 6.2: uncompressed, ASCII letters in lower case). */
export function canonicalWire(labels: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const l of labels) {
    const b = Buffer.alloc(l.length + 1);
    b[0] = l.length;
    for (let i = 0; i < l.length; i++) {
      const c = l[i]!;
      b[i + 1] = c >= 0x41 && c <= 0x5a ? c + 32 : c;
    }
    parts.push(b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}
