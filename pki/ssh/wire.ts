import { invalid } from "../../services/kernel/errors.js";

/**
 * The SSH wire encoding (RFC 4251 section 5) the certificate and KRL formats are made of: uint32/uint64 big
 * endian, `string` = uint32 length + bytes, `mpint` = two's complement, shortest form, positive with a
 * leading zero byte when the top bit is set.
 */
export class SshWriter {
  private readonly parts: Buffer[] = [];

  byte(v: number): this {
    this.parts.push(Buffer.from([v & 0xff]));
    return this;
  }
  uint32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  uint64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt.asUintN(64, v));
    this.parts.push(b);
    return this;
  }
  string(v: string | Uint8Array): this {
    const bytes = typeof v === "string" ? Buffer.from(v, "utf8") : Buffer.from(v);
    this.uint32(bytes.length);
    this.parts.push(bytes);
    return this;
  }
  /** An unsigned big-endian integer as an SSH mpint. */
  mpint(unsigned: Uint8Array): this {
    let i = 0;
    while (i < unsigned.length && unsigned[i] === 0) i++;
    let body = Buffer.from(unsigned.subarray(i));
    if (body.length > 0 && body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
    return this.string(body);
  }
  raw(v: Uint8Array): this {
    this.parts.push(Buffer.from(v));
    return this;
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Reads the SSH wire encoding; every read past the end or a length that does not fit is VALIDATION `what`. */
export class SshReader {
  private off = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  private need(n: number): void {
    if (n < 0 || this.off + n > this.buf.length) throw invalid(`${this.what} is truncated or malformed`);
  }
  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  uint64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.off);
    this.off += 8;
    return v;
  }
  string(): Buffer {
    const n = this.uint32();
    this.need(n);
    const v = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  text(): string {
    return this.string().toString("utf8");
  }
  /** An mpint as unsigned bytes (negative numbers are refused: no key part is negative). */
  mpint(): Buffer {
    const v = this.string();
    if (v.length > 0 && v[0]! & 0x80) throw invalid(`${this.what} has a negative integer`);
    let i = 0;
    while (i < v.length && v[i] === 0) i++;
    return v.subarray(i);
  }
  /** Bytes read so far. */
  get position(): number {
    return this.off;
  }
  get done(): boolean {
    return this.off === this.buf.length;
  }
  end(): void {
    if (!this.done) throw invalid(`${this.what} has ${this.buf.length - this.off} bytes past its end`);
  }
}
