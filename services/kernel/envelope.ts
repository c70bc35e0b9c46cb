import { createHash } from "node:crypto";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { v7 as uuidv7, validate as uuidValidate, version as uuidVersion } from "uuid";
import { canonicalJson } from "./canonical.js";
import { invalid } from "./errors.js";

/** The event envelope of DESIGN.md. `cid` covers every other field, `prev` links the aggregate's chain. */
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
  cid: string;
}

export type UnsealedEnvelope<D = unknown> = Omit<EventEnvelope<D>, "cid">;

/** multicodec `json` and multihash `sha2-256`. */
const JSON_CODEC = 0x0200;
const SHA2_256 = 0x12;

/** CIDv1 (json, sha2-256) of the canonical JSON of a value. */
export function cidOf(value: unknown): string {
  const bytes = Buffer.from(canonicalJson(value), "utf8");
  const digest = Digest.create(SHA2_256, createHash("sha256").update(bytes).digest());
  return CID.createV1(JSON_CODEC, digest).toString();
}

export function seal<D>(unsealed: UnsealedEnvelope<D>): EventEnvelope<D> {
  return { ...unsealed, cid: cidOf(unsealed) };
}

/** Recomputes the CID of a stored envelope; true when it matches the one it carries. */
export function verifyCid(e: EventEnvelope): boolean {
  const { cid, ...rest } = e;
  return cidOf(rest) === cid;
}

export const newId = (): string => uuidv7();

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
  const ts = Buffer.from(commandId.replace(/-/g, "").slice(0, 12), "hex");
  const h = createHash("sha256").update(`${commandId}/${n}`).digest();
  const b = Buffer.concat([ts, h.subarray(0, 10)]);
  b[6] = (b[6]! & 0x0f) | 0x70; // version 7
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 9562 variant
  const hex = b.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
