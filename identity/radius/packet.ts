import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/**
 * RADIUS packets (RFC 2865 section 3, RFC 2866 section 3): parsing that never throws anything but a
 * RadiusPacketError, encoding, and the packet cryptography keyed by a client's shared secret:
 * Message-Authenticator (RFC 3579 section 3.2, HMAC-MD5), the Response Authenticator (RFC 2865 3), the
 * Accounting-Request Authenticator (RFC 2866 3) and User-Password hiding (RFC 2865 5.2).
 */
export const Code = {
  AccessRequest: 1,
  AccessAccept: 2,
  AccessReject: 3,
  AccountingRequest: 4,
  AccountingResponse: 5,
  AccessChallenge: 11,
} as const;

export const Attr = {
  UserName: 1,
  UserPassword: 2,
  ChapPassword: 3,
  NasIpAddress: 4,
  ReplyMessage: 18,
  State: 24,
  Class: 25,
  VendorSpecific: 26,
  FilterId: 11,
  NasIdentifier: 32,
  AcctStatusType: 40,
  AcctInputOctets: 42,
  AcctOutputOctets: 43,
  AcctSessionId: 44,
  AcctSessionTime: 46,
  AcctInputPackets: 47,
  AcctOutputPackets: 48,
  AcctTerminateCause: 49,
  AcctInputGigawords: 52,
  AcctOutputGigawords: 53,
  TunnelType: 64,
  TunnelMediumType: 65,
  TunnelPrivateGroupId: 81,
  MessageAuthenticator: 80,
} as const;

export const MIN_LENGTH = 20;
export const MAX_LENGTH = 4096;

export class RadiusPacketError extends Error {
  constructor(
    readonly reason: "short" | "length" | "attribute" | "code",
    message: string,
  ) {
    super(message);
    this.name = "RadiusPacketError";
  }
}

export interface Attribute {
  type: number;
  value: Buffer;
}

export interface Packet {
  code: number;
  identifier: number;
  authenticator: Buffer;
  attributes: Attribute[];
  /** The bytes as received (up to the Length field), for authenticator checks. */
  raw: Buffer;
}

const KNOWN_CODES = new Set<number>(Object.values(Code));

/** Parses a datagram strictly: Length within 20..4096 and not past the datagram, attributes that tile the rest exactly. */
export function decode(buf: Buffer): Packet {
  if (buf.length < MIN_LENGTH) throw new RadiusPacketError("short", `a RADIUS packet has at least ${MIN_LENGTH} bytes, got ${buf.length}`);
  const length = buf.readUInt16BE(2);
  if (length < MIN_LENGTH || length > MAX_LENGTH || length > buf.length) throw new RadiusPacketError("length", `Length field ${length} is out of range for a ${buf.length}-byte datagram`);
  const code = buf[0]!;
  if (!KNOWN_CODES.has(code)) throw new RadiusPacketError("code", `unknown code ${code}`);
  // Octets past Length are padding and ignored (RFC 2865 3).
  const raw = Buffer.from(buf.subarray(0, length));
  const attributes: Attribute[] = [];
  for (let at = MIN_LENGTH; at < length; ) {
    if (at + 2 > length) throw new RadiusPacketError("attribute", `truncated attribute header at offset ${at}`);
    const type = raw[at]!;
    const len = raw[at + 1]!;
    if (len < 2 || at + len > length) throw new RadiusPacketError("attribute", `attribute ${type} at offset ${at} has length ${len}, past the packet`);
    attributes.push({ type, value: raw.subarray(at + 2, at + len) });
    at += len;
  }
  return { code, identifier: raw[1]!, authenticator: raw.subarray(4, 20), attributes, raw };
}

export const attr = (p: Packet, type: number): Buffer | undefined => p.attributes.find((a) => a.type === type)?.value;
export const attrCount = (p: Packet, type: number): number => p.attributes.filter((a) => a.type === type).length;
export const text = (p: Packet, type: number): string | undefined => attr(p, type)?.toString("utf8");
export function int(p: Packet, type: number): number | undefined {
  const v = attr(p, type);
  return v && v.length === 4 ? v.readUInt32BE(0) : undefined;
}

export const str = (type: number, value: string | Buffer): Attribute => ({ type, value: Buffer.isBuffer(value) ? value : Buffer.from(value, "utf8") });
export function u32(type: number, value: number): Attribute {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return { type, value: b };
}
/** A tagged integer (RFC 2868: Tunnel-Type, Tunnel-Medium-Type): one tag octet, three value octets. */
export function tagged(type: number, tag: number, value: number): Attribute {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value & 0xffffff);
  b[0] = tag;
  return { type, value: b };
}

const md5 = (...parts: Buffer[]) => {
  const h = createHash("md5");
  for (const p of parts) h.update(p);
  return h.digest();
};

function encodeAttributes(attributes: Attribute[]): Buffer {
  const parts: Buffer[] = [];
  for (const a of attributes) {
    if (a.value.length > 253) throw new RadiusPacketError("attribute", `attribute ${a.type} value of ${a.value.length} bytes is longer than 253`);
    parts.push(Buffer.from([a.type, a.value.length + 2]), a.value);
  }
  return Buffer.concat(parts);
}

function header(code: number, identifier: number, authenticator: Buffer, body: Buffer): Buffer {
  const length = MIN_LENGTH + body.length;
  if (length > MAX_LENGTH) throw new RadiusPacketError("length", `a ${length}-byte packet is longer than ${MAX_LENGTH}`);
  const h = Buffer.alloc(4);
  h[0] = code;
  h[1] = identifier;
  h.writeUInt16BE(length, 2);
  return Buffer.concat([h, authenticator, body]);
}

/** Offset of the Message-Authenticator value in an encoded packet, or -1. */
function messageAuthenticatorOffset(raw: Buffer): number {
  for (let at = MIN_LENGTH; at + 2 <= raw.length; at += raw[at + 1]!) {
    if (raw[at + 1]! < 2) return -1;
    if (raw[at] === Attr.MessageAuthenticator && raw[at + 1] === 18) return at + 2;
  }
  return -1;
}

/** HMAC-MD5 of the packet with the Message-Authenticator zeroed and `authenticator` in the Authenticator field. */
function hmacOf(raw: Buffer, authenticator: Buffer, secret: Buffer): Buffer {
  const copy = Buffer.from(raw);
  authenticator.copy(copy, 4);
  const off = messageAuthenticatorOffset(copy);
  if (off >= 0) copy.fill(0, off, off + 16);
  return createHmac("md5", secret).update(copy).digest();
}

/**
 * The Message-Authenticator check (RFC 3579 3.2): exactly one attribute of 16 octets whose HMAC-MD5 over the
 * packet (with the request's own Authenticator) matches. "missing" and "wrong" are told apart for the log only.
 */
export function checkMessageAuthenticator(p: Packet, secret: Buffer, authenticator: Buffer = p.authenticator): "ok" | "missing" | "wrong" {
  const all = p.attributes.filter((a) => a.type === Attr.MessageAuthenticator);
  if (all.length === 0) return "missing";
  if (all.length > 1 || all[0]!.value.length !== 16) return "wrong";
  return timingSafeEqual(hmacOf(p.raw, authenticator, secret), all[0]!.value) ? "ok" : "wrong";
}

/** RFC 2866 3: MD5(Code+Identifier+Length+16 zero octets+Attributes+Secret) must be the Request Authenticator. */
export function checkAccountingAuthenticator(p: Packet, secret: Buffer): boolean {
  const copy = Buffer.from(p.raw);
  copy.fill(0, 4, 20);
  return timingSafeEqual(md5(copy, secret), p.authenticator);
}

/**
 * A response to `request`: Message-Authenticator first (RFC 3579 computes it with the request's
 * Authenticator in the field; BlastRADIUS guidance, RFC 9765, puts it first in the packet), then the Response
 * Authenticator MD5(Code+ID+Length+RequestAuth+Attributes+Secret) over the packet with it filled in.
 */
export function encodeResponse(code: number, request: Packet, attributes: Attribute[], secret: Buffer, opts: { messageAuthenticator?: boolean } = {}): Buffer {
  const withMa = opts.messageAuthenticator ?? true;
  const attrs = withMa ? [{ type: Attr.MessageAuthenticator, value: Buffer.alloc(16) }, ...attributes] : attributes;
  const packet = header(code, request.identifier, request.authenticator, encodeAttributes(attrs));
  if (withMa) hmacOf(packet, request.authenticator, secret).copy(packet, MIN_LENGTH + 2);
  md5(packet, secret).copy(packet, 4);
  return packet;
}

/** An Access-Request with a Message-Authenticator (used by the bench and the tests that craft packets). */
export function encodeAccessRequest(identifier: number, authenticator: Buffer, attributes: Attribute[], secret: Buffer, opts: { messageAuthenticator?: "good" | "wrong" | "none" } = {}): Buffer {
  const mode = opts.messageAuthenticator ?? "good";
  const attrs = mode === "none" ? attributes : [{ type: Attr.MessageAuthenticator, value: Buffer.alloc(16) }, ...attributes];
  const packet = header(Code.AccessRequest, identifier, authenticator, encodeAttributes(attrs));
  if (mode !== "none") {
    const mac = hmacOf(packet, authenticator, secret);
    if (mode === "wrong") mac[0]! ^= 0xff;
    mac.copy(packet, MIN_LENGTH + 2);
  }
  return packet;
}

/** RFC 2865 5.2: hides a User-Password with the secret and Request Authenticator (16-octet blocks, zero padded). */
export function hidePassword(password: string, secret: Buffer, authenticator: Buffer): Buffer {
  const plain = Buffer.from(password, "utf8");
  const padded = Buffer.alloc(Math.max(16, Math.ceil(plain.length / 16) * 16));
  plain.copy(padded);
  const out = Buffer.alloc(padded.length);
  let prev = authenticator;
  for (let i = 0; i < padded.length; i += 16) {
    const b = md5(secret, prev);
    for (let j = 0; j < 16; j++) out[i + j] = padded[i + j]! ^ b[j]!;
    prev = out.subarray(i, i + 16);
  }
  return out;
}

/** The User-Password in clear, or undefined when its length is not a multiple of 16 in 16..128 (RFC 2865 5.2). */
export function revealPassword(hidden: Buffer, secret: Buffer, authenticator: Buffer): string | undefined {
  if (hidden.length < 16 || hidden.length > 128 || hidden.length % 16 !== 0) return undefined;
  const out = Buffer.alloc(hidden.length);
  let prev = authenticator;
  for (let i = 0; i < hidden.length; i += 16) {
    const b = md5(secret, prev);
    for (let j = 0; j < 16; j++) out[i + j] = hidden[i + j]! ^ b[j]!;
    prev = hidden.subarray(i, i + 16);
  }
  let end = out.length;
  while (end > 0 && out[end - 1] === 0) end--;
  return out.subarray(0, end).toString("utf8");
}

/** Checks a response's authenticator against the request it answers (the bench's and tests' client side). */
export function checkResponseAuthenticator(response: Packet, requestAuthenticator: Buffer, secret: Buffer): boolean {
  const copy = Buffer.from(response.raw);
  requestAuthenticator.copy(copy, 4);
  return timingSafeEqual(md5(copy, secret), response.authenticator);
}
