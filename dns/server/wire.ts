import * as dnsPacket from "dns-packet";
import type { WireRecord } from "./authority.js";
import { wireName } from "./names-wire.js";

/** dns-packet exports its per-record codec; its type definitions leave it out. */
interface AnswerCodec {
  answer: {
    encodingLength(a: dnsPacket.Answer): number;
    encode(a: dnsPacket.Answer, buf: Buffer, offset: number): Buffer;
  };
}
const codec = (dnsPacket as unknown as AnswerCodec).answer;

/** Encoding is synchronous: every message is written into this one buffer, then copied out at its length. */
const scratch = Buffer.allocUnsafe(65_535);

/** A DNS message is at most 65,535 octets (TCP's 16-bit length prefix). */
export const MAX_MESSAGE = 65_535;

/** The parts of a record that never change, encoded once: its type code and (for types whose RDATA is not compressed) the RDATA. */
export interface Fixed {
  type: number;
  klass: number;
  /** RDATA octets, or null for the types written here (COMPRESSED), whose names go through the compression table. */
  rdata: Buffer | null;
}
/** Where a record keeps its Fixed: a symbol property, so copies made by spreading (wildcard synthesis, TTL aging) share it. */
const FIXED = Symbol("fixed");
type WithFixed = WireRecord & { [FIXED]?: Fixed };

/**
 * Types written here rather than by dns-packet: RFC 1035's well-known types, the only ones whose RDATA names
 * may be compressed (RFC 3597 section 4), and SRV and DNAME, whose targets are written whole (RFC 2782,
 * RFC 6672 2.5) but may be pointed at by later names, as knot does.
 */
const COMPRESSED: Record<string, number> = { NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, SRV: 33, DNAME: 39 };

/** Encodes the unchanging parts of a record once (kept on it: call before copying a record to share them). */
export function fixed(r: WireRecord): Fixed {
  let f = (r as WithFixed)[FIXED];
  if (f) return f;
  const t = COMPRESSED[r.type];
  if (t !== undefined) f = { type: t, klass: 1, rdata: null };
  else if (r.type === "A" && typeof r.data === "string" && IPV4.test(r.data)) {
    const p = r.data.split(".");
    f = { type: 1, klass: 1, rdata: Buffer.from([Number(p[0]), Number(p[1]), Number(p[2]), Number(p[3])]) };
  } else {
    // dns-packet encodes the record with a root owner: 1 + type 2 + class 2 + ttl 4 + rdlength 2, then RDATA.
    const a = { ...r, name: "." } as dnsPacket.Answer;
    const b = Buffer.alloc(codec.encodingLength(a));
    codec.encode(a, b, 0);
    f = { type: b.readUInt16BE(1), klass: b.readUInt16BE(3), rdata: Buffer.from(b.subarray(11)) };
  }
  (r as WithFixed)[FIXED] = f;
  return f;
}

const IPV4 = /^(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** Thrown (and caught here) when a record would pass the end of the message. */
class Overflow extends Error {}
const overflow = new Overflow("message full");

/**
 * Writes resource records after a question into one message, compressing owner names and the names in
 * NS/CNAME/SOA/PTR/MX RDATA (RFC 1035 4.1.4); SRV and DNAME targets are written whole but later names may
 * point into them. Pointers go only to names already written with exactly the same octets (compression
 * keeps the case of every name). An RRset is written whole or not at all.
 */
export class MessageWriter {
  readonly buf: Buffer;
  off: number;
  private readonly dict = new Map<string, number>();
  private added: string[] = [];
  private readonly limit: number;
  private readonly keepNames: boolean;

  /**
   * @param start offset after the question (12 + question length)
   * @param qname the question's name in lower case (null: no pointers into it)
   * @param limit the message may not pass this offset
   * @param opts.from names may point into the question's name from this label on (the labels the query wrote
   *   in lower case; default 0)
   * @param opts.buf the message's buffer (default: one shared by synchronous encodings; a writer that waits
   *   between records, as a zone transfer does, brings its own)
   * @param opts.keepNames keep parsed names for later messages (default true; a zone transfer's names pass once)
   */
  constructor(start: number, qname: string | null, limit: number, opts: { from?: number; buf?: Buffer; keepNames?: boolean } = {}) {
    const buf = opts.buf ?? scratch;
    const from = opts.from ?? 0;
    this.keepNames = opts.keepNames ?? true;
    this.limit = Math.min(limit, buf.length);
    this.buf = buf;
    this.off = start;
    if (qname !== null) {
      const w = wireName(qname, false);
      let at = 12;
      for (let i = 0; i < w.labels.length; i++) {
        if (i >= from) this.dict.set(w.keys[i]!, at);
        at += w.labels[i]!.length + 1;
      }
    }
  }

  private need(n: number): void {
    if (this.off + n > this.limit) throw overflow;
  }

  /** Writes a name, with a pointer for the longest suffix already written (unless `compress` is false); later names may point into it. */
  name(n: string, compress = true): void {
    const w = wireName(n, this.keepNames);
    for (let i = 0; i < w.labels.length; i++) {
      const key = w.keys[i]!;
      const at = compress ? this.dict.get(key) : undefined;
      if (at !== undefined) {
        this.need(2);
        this.buf.writeUInt16BE(0xc000 | at, this.off);
        this.off += 2;
        return;
      }
      if (this.off < 0x4000 && !this.dict.has(key)) {
        this.dict.set(key, this.off);
        this.added.push(key);
      }
      const l = w.labels[i]!;
      this.need(l.length + 1);
      this.buf[this.off++] = l.length;
      this.buf.write(l, this.off, l.length, "latin1");
      this.off += l.length;
    }
    this.need(1);
    this.buf[this.off++] = 0;
  }

  private u16(v: number): void {
    this.need(2);
    this.buf.writeUInt16BE(v & 0xffff, this.off);
    this.off += 2;
  }

  private u32(v: number): void {
    this.need(4);
    this.buf.writeUInt32BE(v >>> 0, this.off);
    this.off += 4;
  }

  record(r: WireRecord): void {
    const f = fixed(r);
    this.name(r.name);
    this.u16(f.type);
    this.u16(f.klass);
    this.u32(r.ttl);
    const lenAt = this.off;
    this.u16(0);
    if (f.rdata) {
      this.need(f.rdata.length);
      f.rdata.copy(this.buf, this.off);
      this.off += f.rdata.length;
    } else this.compressedRdata(r);
    this.buf.writeUInt16BE(this.off - lenAt - 2, lenAt);
  }

  private compressedRdata(r: WireRecord): void {
    switch (r.type) {
      case "MX": {
        const d = r.data as { preference: number; exchange: string };
        this.u16(d.preference);
        this.name(d.exchange);
        return;
      }
      case "SRV": {
        const d = r.data as { priority: number; weight: number; port: number; target: string };
        this.u16(d.priority);
        this.u16(d.weight);
        this.u16(d.port);
        this.name(d.target, false);
        return;
      }
      case "SOA": {
        const d = r.data as { mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number };
        this.name(d.mname);
        this.name(d.rname);
        for (const v of [d.serial, d.refresh, d.retry, d.expire, d.minimum]) this.u32(v);
        return;
      }
      case "DNAME":
        this.name(r.data as string, false);
        return;
      default:
        this.name(r.data as string);
    }
  }

  /**
   * Writes the records of one RRset (records from `from` while name and type stay the same) if they all fit
   * below the limit; returns the index after the RRset, or -1 (nothing written) when it does not fit.
   */
  rrset(records: readonly WireRecord[], from: number): number {
    const first = records[from]!;
    let end = from + 1;
    while (end < records.length && records[end]!.type === first.type && records[end]!.name === first.name) end++;
    return this.attempt(() => {
      for (let i = from; i < end; i++) this.record(records[i]!);
    })
      ? end
      : -1;
  }

  /** Writes one record if it fits below the limit; false (nothing written) when it does not. */
  tryRecord(r: WireRecord): boolean {
    return this.attempt(() => this.record(r));
  }

  /** Runs `write`; when it would pass the limit, undoes what it wrote (octets and names) and answers false. */
  private attempt(write: () => void): boolean {
    const off = this.off;
    const mark = this.added.length;
    try {
      write();
      return true;
    } catch (err) {
      if (!(err instanceof Overflow)) throw err;
    }
    this.off = off;
    for (let i = mark; i < this.added.length; i++) this.dict.delete(this.added[i]!);
    this.added.length = mark;
    return false;
  }
}

export interface Sections {
  answers: readonly WireRecord[];
  authorities: readonly WireRecord[];
  additionals: readonly WireRecord[];
  /** Additional records that do not fit set TC (a referral's glue) instead of being left out. */
  glueRequired?: boolean | undefined;
}

export interface EncodedBody {
  /** The octets after the question. */
  body: Buffer;
  an: number;
  ns: number;
  ar: number;
  /** An answer or authority RRset did not fit (RFC 2181 9): the reply goes out with TC. */
  tc: boolean;
}

/**
 * Encodes the sections that follow a question of `qlen` octets, within `limit` octets for the whole message;
 * names point into the question's name (`qname`, lower case) from label `from` on.
 * Answer and authority RRsets that do not fit end the message with TC (what fitted before stays, as knot
 * does); additional RRsets that do not fit are left out without TC (RFC 2181 9), except a referral's glue,
 * which sets TC where it stops (RFC 9471 3).
 */
export function encodeSections(s: Sections, qlen: number, qname: string | null, limit: number, from = 0): EncodedBody {
  const start = 12 + qlen;
  const w = new MessageWriter(start, qname, Math.min(limit, MAX_MESSAGE), { from });
  const counts = [0, 0, 0];
  let tc = false;
  const sections = [s.answers, s.authorities, s.additionals];
  for (let k = 0; k < 3 && !tc; k++) {
    const rs = sections[k]!;
    for (let i = 0; i < rs.length; ) {
      const next = w.rrset(rs, i);
      if (next < 0) {
        if (k < 2 || s.glueRequired) tc = true;
        else {
          // Skip the RRset that does not fit: later (smaller) additional RRsets may still fit.
          const t = rs[i]!;
          while (i < rs.length && rs[i]!.type === t.type && rs[i]!.name === t.name) i++;
          continue;
        }
        break;
      }
      counts[k]! += next - i;
      i = next;
    }
  }
  return { body: Buffer.from(w.buf.subarray(start, w.off)), an: counts[0]!, ns: counts[1]!, ar: counts[2]!, tc };
}
