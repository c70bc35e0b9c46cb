import { isIPv4, isIPv6 } from "node:net";
import { expandIPv6 } from "../domain/rdata.js";
import { invalid } from "../../services/kernel/errors.js";

export interface RateLimitOptions {
  /** Answers per second per source prefix (the bucket's refill). Default 20. */
  rate?: number;
  /** Answers a prefix may have at once (the bucket's size). Default `rate`. */
  burst?: number;
  /**
   * Of the answers over the limit, every `slip`-th goes out truncated (TC=1, no records: a real client asks
   * again over TCP, which is not limited), the others are dropped. 0 drops them all, 1 truncates them all.
   * Default 2.
   */
  slip?: number;
  /** Sources counted together: IPv4 prefix length (default 24), IPv6 prefix length (default 56). */
  ipv4Prefix?: number;
  ipv6Prefix?: number;
  /** Prefixes tracked at most (default 100,000): past it those not seen for longest are forgotten (a forgotten prefix starts with a full bucket). */
  entries?: number;
  /** The clock (ms); tests give their own. */
  now?: () => number;
}

export type RateVerdict = "answer" | "slip" | "drop";

interface Bucket {
  tokens: number;
  at: number;
  /** Answers over the limit so far (the slip counter). */
  over: number;
}

/**
 * Response rate limiting over UDP: a token bucket per source prefix (/24, /56 by default), so a flood of
 * spoofed queries cannot make the server a reflector at more than `rate` answers per second per network;
 * answers over the limit are slipped (TC=1) every `slip`-th and dropped otherwise. TCP is never limited
 * (the handshake proves the source). Memory: one small entry per prefix seen, at most `entries`.
 */
export class ResponseRateLimiter {
  /**
   * Two generations of buckets: new prefixes go into `current`; when it holds half of `entries` it becomes
   * `previous` (the one before is forgotten) and a prefix seen again moves back. O(1) per decision at any
   * table size and source spread (deleting a Map's oldest entries one by one is not: V8 skips the holes).
   */
  private current = new Map<string, Bucket>();
  private previous = new Map<string, Bucket>();
  private readonly rate: number;
  private readonly burst: number;
  private readonly slip: number;
  private readonly v4: number;
  private readonly v6: number;
  private readonly entries: number;
  private readonly now: () => number;
  readonly stats = { answered: 0, slipped: 0, dropped: 0 };

  constructor(opts: RateLimitOptions = {}) {
    this.rate = positive(opts.rate ?? 20, "rate");
    this.burst = positive(opts.burst ?? this.rate, "burst");
    this.slip = opts.slip ?? 2;
    if (!Number.isInteger(this.slip) || this.slip < 0) throw invalid(`rate limit slip must be a whole number >= 0, not ${opts.slip}`);
    this.v4 = prefix(opts.ipv4Prefix ?? 24, 32, "ipv4Prefix");
    this.v6 = prefix(opts.ipv6Prefix ?? 56, 128, "ipv6Prefix");
    this.entries = opts.entries ?? 100_000;
    this.now = opts.now ?? Date.now;
  }

  /** What to do with the answer to a datagram from `address`. */
  decide(address: string): RateVerdict {
    const key = prefixKey(address, this.v4, this.v6);
    const now = this.now();
    let b = this.current.get(key);
    if (!b) {
      b = this.previous.get(key);
      if (b) this.previous.delete(key);
      if (this.current.size >= this.entries / 2) {
        this.previous = this.current;
        this.current = new Map();
      }
      this.current.set(key, b ?? (b = { tokens: this.burst, at: now, over: 0 }));
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      this.stats.answered++;
      return "answer";
    }
    b.over++;
    if (this.slip > 0 && b.over % this.slip === 0) {
      this.stats.slipped++;
      return "slip";
    }
    this.stats.dropped++;
    return "drop";
  }
}

function positive(n: number, what: string): number {
  if (!Number.isFinite(n) || n <= 0) throw invalid(`rate limit ${what} must be a number above 0, not ${n}`);
  return n;
}

function prefix(n: number, max: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > max) throw invalid(`rate limit ${what} must be 0..${max}, not ${n}`);
  return n;
}

/** The source's network: the address with its bits past the prefix cleared (`::ffff:a.b.c.d` counts as v4). */
export function prefixKey(address: string, v4: number, v6: number): string {
  const a = address.startsWith("::ffff:") && isIPv4(address.slice(7)) ? address.slice(7) : address;
  if (isIPv4(a)) {
    const n = a.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
    const mask = v4 === 0 ? 0 : Number((0xffffffffn << BigInt(32 - v4)) & 0xffffffffn);
    return `4/${(n & mask) >>> 0}`;
  }
  if (isIPv6(a)) {
    const hex = expandIPv6(a).replace(/:/g, "");
    const bits = BigInt(`0x${hex}`);
    const mask = v6 === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - v6)) - 1n);
    return `6/${(bits & mask).toString(16)}`;
  }
  return `?/${address}`;
}

/**
 * The truncated answer to a query (RFC 1035 4.1.1 TC): its id, opcode, RD and question, QR and TC set, no
 * records. `questionEnd` from readQuery (the caller has read `msg` as a query).
 */
export function slipReply(msg: Buffer, questionEnd: number): Buffer {
  const out = Buffer.from(msg.subarray(0, questionEnd));
  out.writeUInt16BE(0x8000 | (msg.readUInt16BE(2) & 0x7900) | 0x0200, 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(0, 6);
  out.writeUInt16BE(0, 10);
  return out;
}
