import { createHash } from "node:crypto";
import { canonicalJson } from "./canonical.js";
import type { EventSigningKey, TrustVerifier } from "./trust.js";
import { STREAM_DIGEST_VERSION } from "./stream-digest.js";

/**
 * A snapshot's manifest: what it is a snapshot of (projection and version, stream, owner), where in the
 * stream (seq, the CID of the event there, messages seen, the stream digest and where it resumes), and the
 * sha256 of each chunk of its body. Signed by the owner context's event-signing key (a key the trust
 * document lists for that writer) over `cim-realm-snapshot:<base64url sha256 of the canonical JSON of the
 * manifest without signer and sig>`: that prefix is neither a CID (no colon) nor a batch root
 * (`cim-realm-batch:`), so a snapshot signature can never pass for an event's, nor one of those for this.
 */
export const SNAPSHOT_FORMAT = "cim-realm-snapshot/1";
export const SNAPSHOT_FORMAT_VERSION = 1;
const SIGNED_PREFIX = "cim-realm-snapshot:";

export interface SnapshotManifest {
  format: typeof SNAPSHOT_FORMAT;
  projection: string;
  /** The projection definition's version: another version's snapshot is never used. */
  version: number;
  stream: string;
  /** The context whose identity writes this bucket and whose key signs. */
  owner: string;
  slot: string;
  /** The stream sequence the state is at, the CID of the event there (null: that message is no event). */
  seq: number;
  headCid: string | null;
  messages: number;
  digest: { version: number; hex: string; chain: string; afterSeq: number };
  chunks: string[];
  bytes: number;
  records: number;
  takenAt: string;
  signer: string;
  sig: string;
}

export type UnsignedManifest = Omit<SnapshotManifest, "signer" | "sig">;

const signedMessage = (m: UnsignedManifest): Buffer => {
  const { signer: _s, sig: _g, ...body } = m as SnapshotManifest;
  return Buffer.from(`${SIGNED_PREFIX}${createHash("sha256").update(canonicalJson(body), "utf8").digest("base64url")}`, "utf8");
};

export function signManifest(m: UnsignedManifest, key: EventSigningKey): SnapshotManifest {
  return { ...m, signer: key.kid, sig: key.sign(signedMessage(m)) };
}

/** What a reader expects a manifest to be about. */
export interface ManifestExpectation {
  projection: string;
  version: number;
  stream: string;
  owner: string;
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isStr = (v: unknown): v is string => typeof v === "string";

/** The manifest in `bytes` when it is well-formed, about what is expected and signed by the owner; else why not. */
export function verifyManifest(bytes: Uint8Array, expect: ManifestExpectation, trust: TrustVerifier): SnapshotManifest | string {
  let m: SnapshotManifest;
  try {
    m = JSON.parse(Buffer.from(bytes).toString("utf8")) as SnapshotManifest;
  } catch {
    return "its manifest is not JSON";
  }
  if (typeof m !== "object" || m === null || m.format !== SNAPSHOT_FORMAT) return `its format is ${JSON.stringify((m as { format?: unknown } | null)?.format)}, not ${SNAPSHOT_FORMAT}`;
  if (m.projection !== expect.projection || m.version !== expect.version) return `it is of projection ${String(m.projection)} v${String(m.version)}, not ${expect.projection} v${expect.version}`;
  if (m.stream !== expect.stream || m.owner !== expect.owner) return `it is of stream ${String(m.stream)} by ${String(m.owner)}, not ${expect.stream} by ${expect.owner}`;
  const d = m.digest as Partial<SnapshotManifest["digest"]> | undefined;
  if (!isInt(m.seq) || m.seq < 1 || !isInt(m.messages) || !(m.headCid === null || isStr(m.headCid)) || !Array.isArray(m.chunks) || !m.chunks.every(isStr) || !d || !isStr(d.hex) || !isStr(d.chain) || !isInt(d.afterSeq) || d.afterSeq >= m.seq) return "its manifest is malformed";
  if (d.version !== STREAM_DIGEST_VERSION) return `its stream digest is of version ${String(d.version)}, not ${STREAM_DIGEST_VERSION}`;
  if (!isStr(m.signer) || !isStr(m.sig)) return "it is not signed";
  if (!trust.verifyBy(expect.owner, m.signer, signedMessage(m), m.sig)) return `its signature (by ${m.signer}) is not by a key the trust document gives ${expect.owner}`;
  return m;
}
