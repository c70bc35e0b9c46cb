import * as dnsPacket from "dns-packet";
import type { KeyObject } from "node:crypto";
import type { WireRecord } from "../server/authority.js";
import { nameOctets, wireName } from "../server/names-wire.js";
import { fixed } from "../server/wire.js";
import { signData } from "./keys.js";

/** dns-packet's per-record codec (its type definitions leave it out); it never compresses names. */
interface AnswerCodec {
  answer: { encodingLength(a: dnsPacket.Answer): number; encode(a: dnsPacket.Answer, buf: Buffer, offset: number): Buffer };
}
const codec = (dnsPacket as unknown as AnswerCodec).answer;

export const RRSIG_TYPE = 46;

/** A record's type code and RDATA octets, uncompressed (names inside RDATA are stored in lower case, RFC 4034 6.2). */
export function rdataOf(r: WireRecord): { type: number; rdata: Buffer } {
  const f = fixed(r);
  if (f.rdata) return { type: f.type, rdata: f.rdata };
  return { type: f.type, rdata: namedRdata(r) };
}

const n = (name: string) => nameOctets(name.toLowerCase());
const u16 = (v: number) => Buffer.from([(v >> 8) & 0xff, v & 0xff]);
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};

/** RDATA of the types the message writer compresses (NS, CNAME, PTR, DNAME, MX, SRV, SOA), written whole. */
function namedRdata(r: WireRecord): Buffer {
  switch (r.type) {
    case "NS":
    case "CNAME":
    case "PTR":
    case "DNAME":
      return n(r.data as string);
    case "MX": {
      const d = r.data as { preference: number; exchange: string };
      return Buffer.concat([u16(d.preference), n(d.exchange)]);
    }
    case "SRV": {
      const d = r.data as { priority: number; weight: number; port: number; target: string };
      return Buffer.concat([u16(d.priority), u16(d.weight), u16(d.port), n(d.target)]);
    }
    case "SOA": {
      const d = r.data as { mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number };
      return Buffer.concat([n(d.mname), n(d.rname), u32(d.serial), u32(d.refresh), u32(d.retry), u32(d.expire), u32(d.minimum)]);
    }
    default: {
      const a = { ...r, name: "." } as dnsPacket.Answer;
      const b = Buffer.alloc(codec.encodingLength(a));
      codec.encode(a, b, 0);
      return Buffer.from(b.subarray(11));
    }
  }
}

/** Labels of an owner for the RRSIG Labels field (RFC 4034 3.1.3): the root and a leading `*` not counted. */
export function labelCount(owner: string): number {
  const labels = wireName(owner, false).labels;
  return labels[0] === "*" ? labels.length - 1 : labels.length;
}

export interface SigningKey {
  tag: number;
  algorithm: number;
  key: KeyObject;
}

export interface Validity {
  /** Seconds since the epoch. */
  inception: number;
  expiration: number;
}

/**
 * The RRSIG RDATA over one RRset (RFC 4034 3.1.8.1): the RRSIG fields without the signature, then each
 * record in canonical form (owner in lower case, uncompressed; the original TTL), in canonical order
 * (RFC 4034 6.3: RDATA as octet strings), duplicates once.
 */
export function signRRset(owner: string, type: number, ttl: number, rdatas: Buffer[], signer: string, k: SigningKey, v: Validity): Buffer {
  const signerWire = nameOctets(signer.toLowerCase());
  const head = Buffer.alloc(18);
  head.writeUInt16BE(type, 0);
  head[2] = k.algorithm;
  head[3] = labelCount(owner);
  head.writeUInt32BE(ttl >>> 0, 4);
  head.writeUInt32BE(v.expiration >>> 0, 8);
  head.writeUInt32BE(v.inception >>> 0, 12);
  head.writeUInt16BE(k.tag, 16);
  const ownerWire = nameOctets(owner.toLowerCase());
  const sorted = [...rdatas].sort(Buffer.compare).filter((d, i, a) => i === 0 || !d.equals(a[i - 1]!));
  const parts: Buffer[] = [head, signerWire];
  for (const d of sorted) {
    const fixedPart = Buffer.alloc(10);
    fixedPart.writeUInt16BE(type, 0);
    fixedPart.writeUInt16BE(1, 2);
    fixedPart.writeUInt32BE(ttl >>> 0, 4);
    fixedPart.writeUInt16BE(d.length, 8);
    parts.push(ownerWire, fixedPart, d);
  }
  const signature = signData(k.key, Buffer.concat(parts));
  return Buffer.concat([head, signerWire, signature]);
}

/** An RRSIG record for the encoder (RDATA as octets, never compressed). */
export function rrsigRecord(owner: string, ttl: number, rdata: Buffer): WireRecord {
  return { name: owner, type: `UNKNOWN_${RRSIG_TYPE}`, class: "IN", ttl, data: rdata };
}

/** The RRSIG of `records` (one RRset: same owner, type, TTL) by each key. */
export function rrsigsOf(records: WireRecord[], signer: string, keys: SigningKey[], v: Validity, originalTtl?: number): WireRecord[] {
  const first = records[0]!;
  const parts = records.map(rdataOf);
  const ttl = originalTtl ?? first.ttl;
  return keys.map((k) => rrsigRecord(first.name, first.ttl, signRRset(first.name, parts[0]!.type, ttl, parts.map((p) => p.rdata), signer, k, v)));
}
