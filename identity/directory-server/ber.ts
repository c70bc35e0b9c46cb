/**
 * A minimal, strict BER reader and DER-style writer for LDAP (RFC 4511 section 5.1): definite lengths
 * only, at most 4 length octets, no constructed strings, bounded nesting. Anything else is a `BerError`;
 * the reader never reads past the buffer it was given.
 */
export class BerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BerError";
  }
}

/** One decoded element: its tag octet and its contents (a view into the input, not a copy). */
export interface Tlv {
  tag: number;
  value: Buffer;
}

export const Tag = { Boolean: 0x01, Integer: 0x02, OctetString: 0x04, Null: 0x05, Enumerated: 0x0a, Sequence: 0x30, Set: 0x31 } as const;

/** Classes and the constructed bit of a tag octet. */
export const CONTEXT = 0x80;
export const APPLICATION = 0x40;
export const CONSTRUCTED = 0x20;

const MAX_DEPTH = 32;

/**
 * The length of the first complete element in `buf`, or undefined when more octets are needed. Throws on
 * an encoding no LDAP peer may send (indefinite length, multi-octet tag, over-long length field) or a
 * length above `max`.
 */
export function frameLength(buf: Buffer, max: number): number | undefined {
  if (buf.length < 2) return undefined;
  if ((buf[0]! & 0x1f) === 0x1f) throw new BerError("multi-octet tags are not used by LDAP");
  const first = buf[1]!;
  let len: number;
  let head = 2;
  if (first < 0x80) len = first;
  else {
    const n = first & 0x7f;
    if (n === 0) throw new BerError("indefinite lengths are not allowed in LDAP (RFC 4511 5.1)");
    if (n > 4) throw new BerError("length field too long");
    if (buf.length < 2 + n) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[2 + i]!;
    head += n;
  }
  if (len > max) throw new BerError(`message of ${len} octets is above the limit of ${max}`);
  return buf.length < head + len ? undefined : head + len;
}

/** Reads the elements of one constructed value (or a whole buffer) in order. */
export class BerReader {
  private pos = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly depth = 0,
  ) {
    if (depth > MAX_DEPTH) throw new BerError("elements nested too deeply");
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  peekTag(): number | undefined {
    return this.done ? undefined : this.buf[this.pos];
  }

  /** The next element, whatever its tag. */
  next(): Tlv {
    const len = frameLength(this.buf.subarray(this.pos), Number.MAX_SAFE_INTEGER);
    if (len === undefined) throw new BerError("truncated element");
    const tag = this.buf[this.pos]!;
    const lenOctet = this.buf[this.pos + 1]!;
    const head = lenOctet < 0x80 ? 2 : 2 + (lenOctet & 0x7f);
    const value = this.buf.subarray(this.pos + head, this.pos + len);
    this.pos += len;
    return { tag, value };
  }

  /** The next element, which must carry `tag`. */
  expect(tag: number, what: string): Buffer {
    const t = this.next();
    if (t.tag !== tag) throw new BerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`);
    return t.value;
  }

  /** A reader over the contents of a constructed element. */
  sub(value: Buffer): BerReader {
    return new BerReader(value, this.depth + 1);
  }

  end(what: string): void {
    if (!this.done) throw new BerError(`${what}: unexpected trailing elements`);
  }
}

export function readInt(v: Buffer, what: string): number {
  if (v.length === 0 || v.length > 4) throw new BerError(`${what}: integer of ${v.length} octets`);
  return v.readIntBE(0, v.length);
}

export function readBool(v: Buffer, what: string): boolean {
  if (v.length !== 1) throw new BerError(`${what}: boolean of ${v.length} octets`);
  return v[0] !== 0;
}

/** UTF-8 text of an octet string; invalid UTF-8 is a protocol error, not a replacement character. */
export function readText(v: Buffer, what: string): string {
  const s = v.toString("utf8");
  if (!Buffer.from(s, "utf8").equals(v)) throw new BerError(`${what}: not UTF-8`);
  return s;
}

// ---- writing ----

function lengthOf(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const out: number[] = [];
  for (let x = n; x > 0; x = Math.floor(x / 256)) out.unshift(x & 0xff);
  return Buffer.from([0x80 | out.length, ...out]);
}

export function tlv(tag: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthOf(value.length), value]);
}

export function seq(tag: number, parts: Buffer[]): Buffer {
  return tlv(tag, Buffer.concat(parts));
}

export function int(n: number, tag: number = Tag.Integer): Buffer {
  const out: number[] = [];
  let x = n;
  do {
    out.unshift(x & 0xff);
    x = Math.floor(x / 256);
  } while (x !== 0 && x !== -1);
  // Keep the sign bit right: a positive number whose top bit is set gets a leading zero octet.
  if (n >= 0 && out[0]! & 0x80) out.unshift(0);
  if (n < 0 && !(out[0]! & 0x80)) out.unshift(0xff);
  return tlv(tag, Buffer.from(out));
}

export function str(s: string | Buffer, tag: number = Tag.OctetString): Buffer {
  return tlv(tag, typeof s === "string" ? Buffer.from(s, "utf8") : s);
}

export function bool(b: boolean): Buffer {
  return tlv(Tag.Boolean, Buffer.from([b ? 0xff : 0]));
}
