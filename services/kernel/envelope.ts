import { createHash, randomFillSync } from "node:crypto";
import { v7 as uuidv7, validate as uuidValidate, version as uuidVersion } from "uuid";
import { canonicalJson } from "./canonical.js";
import { invalid } from "./errors.js";

/**
 * The event envelope of DESIGN.md. `cid` covers every field but the seal, `prev` links the aggregate's chain,
 * and the seal (`signer`, `sig`) is the writing context's Ed25519 signature over the CID's text.
 */
export interface EventEnvelope<D = unknown> {
  id: string;
  type: string;
  aggregate: { type: string; id: string };
  /** Per-aggregate sequence, 1 for the first event. */
  version: number;
  occurredAt: string;
  actor: string;
  correlationId: string;
  causationId: string;
  data: D;
  prev: string | null;
  /** Why the request was allowed (permission, binding, role), when it was authorized. */
  authz?: EventAuthzRecord | undefined;
  cid: string;
  /** Key id (in the realm's trust document) of the key that signed `cid`. */
  signer: string;
  /** Ed25519 signature over the UTF-8 bytes of `cid` (or over the root of a batch, see seal-batch.ts), base64url. */
  sig: string;
  /** When sealed in a batch: the Merkle path from this CID to the signed root. */
  proof?: string[];
}

/** See services/kernel/store.ts EventAuthz (kept structural here: the envelope imports nothing of the store). */
export interface EventAuthzRecord {
  permission: string;
  binding?: string | undefined;
  role?: string | undefined;
  via?: string | undefined;
  mode?: string | undefined;
}

export type UnsealedEnvelope<D = unknown> = Omit<EventEnvelope<D>, "cid" | "signer" | "sig" | "proof">;

/** What seals an envelope: a key id and an Ed25519 signature over bytes (services/kernel/trust.ts). */
export interface EnvelopeSigner {
  readonly kid: string;
  sign(message: Uint8Array): string;
}

/**
 * CIDv1 prefix of a `json` (multicodec 0x0200, varint 0x80 0x04), sha2-256 (0x12, 32 bytes) content id.
 * The string form is multibase base32 (`b`, RFC 4648 lower case, no padding) of prefix + digest: written
 * here directly because multiformats' CID objects cost 20 us per event on the append and verify paths (a
 * test holds the two encodings equal).
 */
const CID_PREFIX = Buffer.from([0x01, 0x80, 0x04, 0x12, 0x20]);
const B32 = "abcdefghijklmnopqrstuvwxyz234567";

const B32_CODES = Buffer.from(B32, "latin1");
/** 37 bytes (prefix + digest) make 60 base32 characters; one buffer reused for every CID. */
const cidBytes = Buffer.alloc(CID_PREFIX.length + 32);
CID_PREFIX.copy(cidBytes);
const cidChars = Buffer.alloc(1 + Math.ceil((cidBytes.length * 8) / 5));
cidChars[0] = 0x62; // "b": multibase base32 lower

/** CIDv1 (json, sha2-256) of a sha2-256 digest. */
export function cidOfDigest(digest: Uint8Array): string {
  cidBytes.set(digest, CID_PREFIX.length);
  let bits = 0;
  let value = 0;
  let o = 1;
  for (let i = 0; i < cidBytes.length; i++) {
    value = ((value << 8) | cidBytes[i]!) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      cidChars[o++] = B32_CODES[(value >>> (bits - 5)) & 31]!;
      bits -= 5;
    }
  }
  if (bits > 0) cidChars[o++] = B32_CODES[(value << (5 - bits)) & 31]!;
  return cidChars.toString("latin1", 0, o);
}

/** CIDv1 (json, sha2-256) of canonical JSON text. */
export function cidOfCanonical(canonical: string): string {
  return cidOfDigest(createHash("sha256").update(canonical).digest());
}

/** CIDv1 (json, sha2-256) of the canonical JSON of a value. */
export function cidOf(value: unknown): string {
  return cidOfCanonical(canonicalJson(value));
}

/**
 * Canonical JSON of an envelope without `cid`. The keys of the envelope are fixed, so they are written in
 * their sorted order directly; `data` goes through the general canonical serializer. Equal to
 * `canonicalJson(unsealed)` (a test holds the two together).
 */
export function canonicalEnvelope(u: UnsealedEnvelope): string {
  const q = JSON.stringify;
  return (
    `{"actor":${q(u.actor)},"aggregate":{"id":${q(u.aggregate.id)},"type":${q(u.aggregate.type)}},` +
    (u.authz ? `"authz":${canonicalJson(u.authz)},` : "") +
    `"causationId":${q(u.causationId)},"correlationId":${q(u.correlationId)},"data":${canonicalJson(u.data)},` +
    `"id":${q(u.id)},"occurredAt":${q(u.occurredAt)},"prev":${u.prev === null ? "null" : q(u.prev)},` +
    `"type":${q(u.type)},"version":${q(u.version)}}`
  );
}

/** The seal of an envelope: key id, signature and (when sealed in a batch) the Merkle path to the signed root. */
export interface Seal {
  kid: string;
  sig: string;
  proof?: string[];
}

/**
 * An envelope and its stored form from its canonical text, CID and seal: the canonical text with `cid`,
 * `proof` (batch only), `sig` and `signer` appended.
 */
export function sealedEnvelope<D>(unsealed: UnsealedEnvelope<D>, canonical: string, cid: string, seal: Seal): { envelope: EventEnvelope<D>; json: string } {
  const q = JSON.stringify;
  const proof = seal.proof ? `,"proof":${q(seal.proof)}` : "";
  return {
    envelope: { ...unsealed, cid, signer: seal.kid, sig: seal.sig, ...(seal.proof ? { proof: seal.proof } : {}) },
    json: `${canonical.slice(0, -1)},"cid":"${cid}"${proof},"sig":${q(seal.sig)},"signer":${q(seal.kid)}}`,
  };
}

/** Seals an envelope on its own: its CID, signed by `signer`. */
export function sealWithJson<D>(unsealed: UnsealedEnvelope<D>, signer: EnvelopeSigner): { envelope: EventEnvelope<D>; json: string } {
  const canonical = canonicalEnvelope(unsealed);
  const cid = cidOfCanonical(canonical);
  return sealedEnvelope(unsealed, canonical, cid, { kid: signer.kid, sig: signer.sign(Buffer.from(cid, "utf8")) });
}

/** An envelope sealed without a key: it verifies nowhere. For pure folds in tests that never reach a stream. */
const UNSIGNED: EnvelopeSigner = { kid: "", sign: () => "" };

export function seal<D>(unsealed: UnsealedEnvelope<D>, signer: EnvelopeSigner = UNSIGNED): EventEnvelope<D> {
  return sealWithJson(unsealed, signer).envelope;
}

/** The CID a stored envelope's content has (its seal and `cid` left out). */
export function contentCid(e: EventEnvelope): string {
  return cidOfCanonical(canonicalEnvelope(e));
}

/** Recomputes the CID of a stored envelope; true when it matches the one it carries. */
export function verifyCid(e: EventEnvelope): boolean {
  return contentCid(e) === e.cid;
}

/**
 * Random bytes for ids come from a pool filled 4 KiB at a time: uuid's default source asks WebCrypto for
 * 16 bytes per id, which profiled at a tenth of the append path.
 */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;
function random16(): Uint8Array {
  if (poolOffset + 16 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = new Uint8Array(pool.buffer, pool.byteOffset + poolOffset, 16).slice();
  poolOffset += 16;
  return out;
}

/** A new UUIDv7 (time-ordered) for a command or an event. */
export const newId = (): string => uuidv7({ random: random16() });

export function assertCommandId(id: string): string {
  if (!uuidValidate(id) || uuidVersion(id) !== 7) throw invalid(`command id must be a UUIDv7: ${JSON.stringify(id)}`);
  return id;
}

/**
 * The id of the n-th event a command produces: a UUIDv7 with the command's timestamp and the rest
 * derived from (command id, n). A retried command therefore yields the same event ids, and JetStream's
 * `Nats-Msg-Id` dedupe keeps exactly one copy.
 */
export function eventIdFor(commandId: string, n: number): string {
  const h = createHash("sha256").update(`${commandId}/${n}`).digest();
  h[0] = (h[0]! & 0x0f) | 0x70; // version 7
  h[2] = (h[2]! & 0x3f) | 0x80; // RFC 9562 variant
  const hex = h.toString("hex", 0, 10);
  // 48-bit timestamp (first 13 characters with the dash) taken from the command id.
  return `${commandId.slice(0, 13)}-${hex.slice(0, 4)}-${hex.slice(4, 8)}-${hex.slice(8, 20)}`;
}
