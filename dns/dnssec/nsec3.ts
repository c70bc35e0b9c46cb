import { createHash } from "node:crypto";
import type { WireRecord } from "../server/authority.js";
import { nameOctets } from "../server/names-wire.js";

/**
 * NSEC3 (RFC 5155) with the parameters RFC 9276 asks for: SHA-1, no salt, 0 extra iterations, no opt-out.
 * Hashes are 20 octets, written in base32hex without padding (32 characters) as the first label of an
 * NSEC3 owner.
 */
export const NSEC3_TYPE = 50;
export const NSEC3PARAM_TYPE = 51;
const HASH_LEN = 20;

/** IH(salt, x, 0) = SHA-1(x || salt) over the name's canonical wire form (lower case). */
export function nsec3Hash(name: string): Buffer {
  return createHash("sha1").update(nameOctets(name.toLowerCase())).digest();
}

const B32 = "0123456789abcdefghijklmnopqrstuv";

/** base32hex (RFC 4648 7), lower case, no padding: order-preserving, so owners sort as their hashes. */
export function base32hex(b: Buffer): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of b) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

/** The hash one above or below (modulo 2^160): the ends of a "white lie" span around one hash. */
export function hashStep(h: Buffer, delta: 1 | -1): Buffer {
  const out = Buffer.from(h);
  for (let i = out.length - 1; i >= 0; i--) {
    const v = out[i]! + delta;
    out[i] = v & 0xff;
    if (v >= 0 && v <= 0xff) break;
  }
  return out;
}

/** A type bitmap field (RFC 4034 4.1.2, RFC 5155 3.2.1): windows of the types present, each as short as it can be. */
export function typeBitmap(types: Iterable<number>): Buffer {
  const sorted = [...new Set(types)].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let i = 0;
  while (i < sorted.length) {
    const win = sorted[i]! >> 8;
    const bits = Buffer.alloc(32);
    let len = 0;
    for (; i < sorted.length && sorted[i]! >> 8 === win; i++) {
      const low = sorted[i]! & 0xff;
      bits[low >> 3]! |= 0x80 >> (low & 7);
      len = (low >> 3) + 1;
    }
    parts.push(Buffer.from([win, len]), bits.subarray(0, len));
  }
  return Buffer.concat(parts);
}

/** NSEC3 RDATA: algorithm 1, flags 0, iterations 0, no salt, the next hashed owner, the type bitmap. */
export function nsec3Rdata(next: Buffer, types: Iterable<number>): Buffer {
  return Buffer.concat([Buffer.from([1, 0, 0, 0, 0, HASH_LEN]), next, typeBitmap(types)]);
}

/** NSEC3PARAM RDATA (RFC 5155 4.2): algorithm 1, flags 0, iterations 0, no salt. */
export const NSEC3PARAM_RDATA = Buffer.from([1, 0, 0, 0, 0]);

/** The owner of the NSEC3 of a hash in `zone`. */
export const nsec3Owner = (h: Buffer, zone: string): string => `${base32hex(h)}.${zone}`;

export function nsec3Record(owner: Buffer, next: Buffer, types: Iterable<number>, zone: string, ttl: number): WireRecord {
  return { name: nsec3Owner(owner, zone), type: `UNKNOWN_${NSEC3_TYPE}`, class: "IN", ttl, data: nsec3Rdata(next, types) };
}

/** An NSEC3 whose owner is the hash of `name` (it matches the name: its bitmap says what the name holds). */
export function matching(name: string, types: Iterable<number>, zone: string, ttl: number): WireRecord {
  const h = nsec3Hash(name);
  return nsec3Record(h, hashStep(h, 1), types, zone, ttl);
}

/** An NSEC3 that covers the hash of `name` and nothing else (RFC 7129 appendix B's "white lies", as PowerDNS's narrow mode). */
export function covering(name: string, zone: string, ttl: number): WireRecord {
  const h = nsec3Hash(name);
  return nsec3Record(hashStep(h, -1), hashStep(h, 1), [], zone, ttl);
}
