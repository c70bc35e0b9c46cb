import { createHmac, timingSafeEqual } from "node:crypto";
import { canonicalWire, readName, type WireMessage, type WireRR } from "./message.js";

/**
 * TSIG (RFC 8945): verifying signed requests and signing responses, single messages and the messages of a
 * zone transfer (each one signed, its MAC covering the one before). MACs are compared in constant time.
 * The secret never leaves this module's callers' memory: nothing here logs or throws it.
 */
export const TSIG_TYPE = 250;
const CLASS_ANY = 255;

/** TSIG error codes (RFC 8945 3, in the TSIG record's Error field; the header says NOTAUTH). */
export const TsigError = { NOERROR: 0, BADSIG: 16, BADKEY: 17, BADTIME: 18, BADTRUNC: 22 } as const;

export const TSIG_ALGORITHMS = { "hmac-sha256": { hash: "sha256", size: 32 }, "hmac-sha512": { hash: "sha512", size: 64 }, "hmac-sha1": { hash: "sha1", size: 20 } } as const;
export type TsigAlgorithm = keyof typeof TSIG_ALGORITHMS;
export const isTsigAlgorithm = (a: string): a is TsigAlgorithm => Object.hasOwn(TSIG_ALGORITHMS, a);

/** RFC 8945 5.2.3: the fudge the server uses in its answers and allows. */
export const FUDGE = 300;

export interface TsigKey {
  /** Absolute, lower case (`k8s.example.test.`). */
  name: string;
  algorithm: TsigAlgorithm;
  secret: Buffer;
}

/** A TSIG record as read from a message. */
export interface TsigRecord {
  /** Key name, absolute, lower case. */
  keyName: string;
  keyWire: Buffer;
  /** Algorithm name without its trailing dot, lower case (`hmac-sha256`). */
  algorithm: string;
  algorithmWire: Buffer;
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  other: Buffer;
  /** Where the record starts in the message (everything before it is what the MAC covers). */
  start: number;
}

const lowerText = (labels: Buffer[]) => (labels.length === 0 ? "." : labels.map((l) => l.toString("latin1").toLowerCase() + ".").join(""));

/**
 * The message's TSIG record: `none` when it has none, `formerr` when one is there but not as the last record
 * of the additional section, more than once, or unreadable (RFC 8945 5.1).
 */
export function findTsig(buf: Buffer, m: WireMessage): { kind: "none" } | { kind: "formerr" } | { kind: "tsig"; tsig: TsigRecord } {
  const all: WireRR[] = [...m.answers, ...m.authorities, ...m.additionals];
  const at = all.findIndex((r) => r.type === TSIG_TYPE);
  if (at < 0) return { kind: "none" };
  if (at !== all.length - 1 || m.additionals.length === 0) return { kind: "formerr" };
  const rr = all[at]!;
  if (rr.klass !== CLASS_ANY || rr.ttl !== 0) return { kind: "formerr" };
  const t = readTsigRdata(buf, rr);
  return t ? { kind: "tsig", tsig: t } : { kind: "formerr" };
}

function readTsigRdata(buf: Buffer, rr: WireRR): TsigRecord | null {
  const end = rr.rdata + rr.rdlength;
  const alg = readName(buf, rr.rdata);
  // Names inside TSIG RDATA are never compressed (RFC 8945 4.2); refuse a pointer there.
  if (!alg || alg.end > end || alg.end - rr.rdata !== canonicalWire(alg.labels).length) return null;
  let off = alg.end;
  if (off + 10 > end) return null;
  const timeSigned = buf.readUInt16BE(off) * 2 ** 32 + buf.readUInt32BE(off + 2);
  const fudge = buf.readUInt16BE(off + 6);
  const macSize = buf.readUInt16BE(off + 8);
  off += 10;
  if (off + macSize + 6 > end) return null;
  const mac = Buffer.from(buf.subarray(off, off + macSize));
  off += macSize;
  const originalId = buf.readUInt16BE(off);
  const error = buf.readUInt16BE(off + 2);
  const otherLen = buf.readUInt16BE(off + 4);
  off += 6;
  if (off + otherLen !== end) return null;
  const algorithm = lowerText(alg.labels).slice(0, -1);
  return { keyName: lowerText(rr.labels), keyWire: canonicalWire(rr.labels), algorithm, algorithmWire: canonicalWire(alg.labels), timeSigned, fudge, mac, originalId, error, other: Buffer.from(buf.subarray(off, end)), start: rr.start };
}

const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u48 = (n: number) => {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(Math.floor(n / 2 ** 32));
  b.writeUInt32BE(n % 2 ** 32, 2);
  return b;
};
const nameWire = (name: string) => canonicalWire(name === "." ? [] : name.slice(0, -1).split(".").map((l) => Buffer.from(l, "latin1")));

/** The TSIG variables (RFC 8945 4.3.3): key name, class, TTL, algorithm, time, fudge, error, other data. */
function variables(keyWire: Buffer, algWire: Buffer, time: number, fudge: number, error: number, other: Buffer): Buffer {
  return Buffer.concat([keyWire, u16(CLASS_ANY), Buffer.alloc(4), algWire, u48(time), u16(fudge), u16(error), u16(other.length), other]);
}

function hmac(key: TsigKey, parts: Buffer[]): Buffer {
  const h = createHmac(TSIG_ALGORITHMS[key.algorithm].hash, key.secret);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** The message the MAC covers: without the TSIG record, ARCOUNT one less, the original id in the header. */
function strippedMessage(buf: Buffer, t: TsigRecord): Buffer {
  const b = Buffer.from(buf.subarray(0, t.start));
  b.writeUInt16BE(t.originalId, 0);
  b.writeUInt16BE(b.readUInt16BE(10) - 1, 10);
  return b;
}

export type Verdict =
  | { ok: true; key: TsigKey }
  /** Refused: answer NOTAUTH with this TSIG error; `key` set when the answer is to be signed (BADTIME, BADTRUNC). */
  | { ok: false; error: number; key?: TsigKey }
  /** The TSIG record itself is malformed (MAC longer than the hash, or shorter than RFC 8945 5.2.2.1 allows). */
  | { ok: false; formerr: true };

/**
 * Verifies a signed request (RFC 8945 5.2): the key known and of the record's algorithm (else BADKEY), the
 * MAC's length, the MAC (BADSIG), then the time (BADTIME), then truncation (BADTRUNC: the realm signs and
 * wants full-length MACs).
 */
export function verifyRequest(buf: Buffer, t: TsigRecord, key: TsigKey | null, now = Math.floor(Date.now() / 1000)): Verdict {
  if (!key || key.name !== t.keyName || key.algorithm !== t.algorithm) return { ok: false, error: TsigError.BADKEY };
  const size = TSIG_ALGORITHMS[key.algorithm].size;
  if (t.mac.length > size || t.mac.length < Math.max(10, size / 2)) return { ok: false, formerr: true };
  const want = hmac(key, [strippedMessage(buf, t), variables(t.keyWire, t.algorithmWire, t.timeSigned, t.fudge, t.error, t.other)]);
  if (!timingSafeEqual(want.subarray(0, t.mac.length), t.mac)) return { ok: false, error: TsigError.BADSIG };
  if (Math.abs(now - t.timeSigned) > t.fudge) return { ok: false, error: TsigError.BADTIME, key };
  if (t.mac.length < size) return { ok: false, error: TsigError.BADTRUNC, key };
  return { ok: true, key };
}

/** Appends a TSIG record to a message (ARCOUNT + 1). */
function appendTsig(msg: Buffer, keyWire: Buffer, algWire: Buffer, time: number, fudge: number, mac: Buffer, originalId: number, error: number, other: Buffer): Buffer {
  const rdata = Buffer.concat([algWire, u48(time), u16(fudge), u16(mac.length), mac, u16(originalId), u16(error), u16(other.length), other]);
  const rr = Buffer.concat([keyWire, u16(TSIG_TYPE), u16(CLASS_ANY), Buffer.alloc(4), u16(rdata.length), rdata]);
  const out = Buffer.concat([msg, rr]);
  out.writeUInt16BE(msg.readUInt16BE(10) + 1, 10);
  return out;
}

/** Octets a TSIG record of `key` adds to a message (for room kept free in transfer messages). */
export function tsigSize(key: TsigKey, otherLen = 6): number {
  return nameWire(key.name).length + 10 + nameWire(`${key.algorithm}.`).length + 16 + TSIG_ALGORITHMS[key.algorithm].size + otherLen;
}

/**
 * Signs the response(s) to a verified request, in order: the first MAC covers the request's MAC, the message
 * and all the TSIG variables; each later one (the messages of a transfer, RFC 8945 5.3.1) the MAC before it,
 * the message and the timers only.
 */
export class TsigResponder {
  private prior: Buffer;
  private first = true;
  private readonly keyWire: Buffer;
  private readonly algWire: Buffer;

  constructor(
    private readonly key: TsigKey,
    private readonly request: TsigRecord,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
  ) {
    this.prior = request.mac;
    this.keyWire = nameWire(key.name);
    this.algWire = nameWire(`${key.algorithm}.`);
  }

  /**
   * Signs one response message (its id is the request's original id). `error` BADTIME signs with the
   * request's time and puts the server's time in Other Data (RFC 8945 5.2.3).
   */
  sign(msg: Buffer, error: number = TsigError.NOERROR): Buffer {
    const serverTime = this.now();
    const time = error === TsigError.BADTIME ? this.request.timeSigned : serverTime;
    const other = error === TsigError.BADTIME ? u48(serverTime) : Buffer.alloc(0);
    const prior = Buffer.concat([u16(this.prior.length), this.prior]);
    const vars = this.first ? variables(this.keyWire, this.algWire, time, FUDGE, error, other) : Buffer.concat([u48(time), u16(FUDGE)]);
    const mac = hmac(this.key, [prior, msg, vars]);
    this.prior = mac;
    this.first = false;
    return appendTsig(msg, this.keyWire, this.algWire, time, FUDGE, mac, msg.readUInt16BE(0), error, other);
  }
}

/**
 * An unsigned error answer's TSIG (BADKEY, BADSIG: RFC 8945 5.3.2, MAC size 0), naming the request's key and
 * algorithm and time.
 */
export function unsignedTsig(msg: Buffer, request: TsigRecord, error: number): Buffer {
  return appendTsig(msg, request.keyWire, request.algorithmWire, request.timeSigned, request.fudge, Buffer.alloc(0), msg.readUInt16BE(0), error, Buffer.alloc(0));
}

/** Signs a request (tests and tools that speak to other servers): a TSIG over the message with `time`. */
export function signRequest(msg: Buffer, key: TsigKey, time = Math.floor(Date.now() / 1000), fudge = FUDGE): { message: Buffer; mac: Buffer } {
  const keyWire = nameWire(key.name);
  const algWire = nameWire(`${key.algorithm}.`);
  const mac = hmac(key, [msg, variables(keyWire, algWire, time, fudge, 0, Buffer.alloc(0))]);
  return { message: appendTsig(msg, keyWire, algWire, time, fudge, mac, msg.readUInt16BE(0), 0, Buffer.alloc(0)), mac };
}

/** Verifies a response to a request we signed (tests: the first message, or with `prior` set a later one of a transfer). */
export function verifyResponse(buf: Buffer, t: TsigRecord, key: TsigKey, priorMac: Buffer, first: boolean): boolean {
  const stripped = strippedMessage(buf, t);
  const vars = first ? variables(t.keyWire, t.algorithmWire, t.timeSigned, t.fudge, t.error, t.other) : Buffer.concat([u48(t.timeSigned), u16(t.fudge)]);
  const want = hmac(key, [u16(priorMac.length), priorMac, stripped, vars]);
  return t.mac.length === want.length && timingSafeEqual(want, t.mac);
}
