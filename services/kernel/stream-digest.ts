import { createHash, type Hash } from "node:crypto";

/**
 * The digest of a stream, as checkpoints record it and every reader recomputes it.
 *
 * Version 2 (current), segmented so that it can be resumed: messages are framed as seq (64-bit) | length
 * (32-bit) | data (big endian) and grouped, in stream order, into segments that close after
 * SEGMENT_MESSAGES messages or once they hold SEGMENT_BYTES bytes of data (whichever comes first; a rule of
 * the stream's own content, so every reader cuts the same segments). With C_0 = 32 zero bytes and
 * C_j = sha256(C_{j-1} | frames of segment j), the digest after the message at seq s of segment j is
 * sha256(C_{j-1} | frames of segment j up to s): one running hash, a hash update per message as before, plus
 * one finalisation per segment. A node Hash cannot be serialised, but (C_{j-1}, the seq before segment j)
 * can: a reader that holds them re-hashes at most one segment and goes on (snapshots, snapshot.ts).
 *
 * Version 1 (checkpoints written before version 2): one running sha256 over every frame, not resumable.
 * Kept as LegacyStreamDigest so `realm audit verify` still checks those checkpoints.
 */
export const STREAM_DIGEST_VERSION = 2;
export const SEGMENT_MESSAGES = 1024;
export const SEGMENT_BYTES = 4 * 1024 * 1024;

/** Where a version-2 digest can be resumed from: the chain value before the open segment, and its last seq. */
export interface DigestResumePoint {
  /** Hex of C_{j-1} (64 zeros before the first segment). */
  chain: string;
  /** Stream sequence of the last message of segment j-1 (0 before the first segment). */
  afterSeq: number;
}

const ZERO_CHAIN = Buffer.alloc(32);

/** The framing both versions share: seq | length | data. */
class Framer {
  private readonly head = Buffer.alloc(12);

  frame(h: Hash, seq: number, data: Uint8Array): void {
    this.head.writeUInt32BE(Math.floor(seq / 2 ** 32), 0);
    this.head.writeUInt32BE(seq % 2 ** 32, 4);
    this.head.writeUInt32BE(data.length, 8);
    h.update(this.head).update(data);
  }
}

export class StreamDigest {
  private chain: Buffer = ZERO_CHAIN;
  private afterSeq = 0;
  private lastSeq = 0;
  private inSegment = 0;
  private bytesInSegment = 0;
  private h: Hash = StreamDigest.open(ZERO_CHAIN);
  private readonly framer = new Framer();

  private static open(chain: Buffer): Hash {
    return createHash("sha256").update(chain);
  }

  /** Goes on from a resume point instead: feed it the messages after `p.afterSeq` (a snapshot's open segment). */
  resumeAt(p: DigestResumePoint): void {
    const chain = Buffer.from(p.chain, "hex");
    if (chain.length !== 32 || !/^[0-9a-f]{64}$/.test(p.chain) || !Number.isSafeInteger(p.afterSeq) || p.afterSeq < 0) throw new TypeError("not a stream digest resume point");
    this.reset();
    this.chain = chain;
    this.afterSeq = p.afterSeq;
    this.lastSeq = p.afterSeq;
    this.h = StreamDigest.open(chain);
  }

  update(seq: number, data: Uint8Array): void {
    if (this.inSegment >= SEGMENT_MESSAGES || this.bytesInSegment >= SEGMENT_BYTES) {
      this.chain = this.h.digest();
      this.afterSeq = this.lastSeq;
      this.h = StreamDigest.open(this.chain);
      this.inSegment = 0;
      this.bytesInSegment = 0;
    }
    this.framer.frame(this.h, seq, data);
    this.inSegment++;
    this.bytesInSegment += data.length;
    this.lastSeq = seq;
  }

  /** The digest of everything so far (the running hash goes on). */
  get hex(): string {
    return this.h.copy().digest("hex");
  }

  /** What a snapshot keeps to resume this digest (the open segment is re-read from the stream). */
  get resumePoint(): DigestResumePoint {
    return { chain: this.chain.toString("hex"), afterSeq: this.afterSeq };
  }

  reset(): void {
    this.chain = ZERO_CHAIN;
    this.afterSeq = 0;
    this.lastSeq = 0;
    this.inSegment = 0;
    this.bytesInSegment = 0;
    this.h = StreamDigest.open(ZERO_CHAIN);
  }
}

/** Version 1: one running sha256 over every frame (see above). */
export class LegacyStreamDigest {
  private h: Hash = createHash("sha256");
  private readonly framer = new Framer();

  update(seq: number, data: Uint8Array): void {
    this.framer.frame(this.h, seq, data);
  }

  get hex(): string {
    return this.h.copy().digest("hex");
  }
}

/** The digest version a checkpoint was written with (those without the field predate version 2). */
export const digestVersionOf = (cp: { digestVersion?: number | undefined }): number => cp.digestVersion ?? 1;
