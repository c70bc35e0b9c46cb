import { createHash } from "node:crypto";
import type { EnvelopeSigner } from "./envelope.js";

/**
 * Sealing many events with one Ed25519 signature. An Ed25519 signature costs ~70 us on the realm's
 * machines, more than the rest of an append; under load many appends are sealed in the same turn of the
 * event loop. Their CIDs become the leaves of a Merkle tree (RFC 6962 hashing: leaf = sha256(0x00 | cid),
 * node = sha256(0x01 | left | right)); the writer signs the root once, and each envelope carries the
 * signature and its `proof` (the sibling hashes from its leaf up, each marked l/r for the side it sits
 * on). A batch of one is a signature over the CID itself, with no proof, exactly as a single seal.
 *
 * The signed message of a batch is `cim-realm-batch:<base64url root>`, which no CID can be (a CID starts
 * with `b` and holds no colon), so a batch signature can never be taken for a single one.
 */
export interface EventSeal {
  kid: string;
  sig: string;
  proof?: string[];
}

const BATCH_PREFIX = "cim-realm-batch:";

export const leafHash = (cid: string): Buffer => createHash("sha256").update(Buffer.from([0])).update(cid, "utf8").digest();
const nodeHash = (l: Buffer, r: Buffer): Buffer => createHash("sha256").update(Buffer.from([1])).update(l).update(r).digest();

/** The bytes a seal's signature is over: the CID, or the batch root the proof leads to (undefined: bad proof). */
export function signedMessage(cid: string, proof: unknown): Buffer | undefined {
  if (proof === undefined) return Buffer.from(cid, "utf8");
  if (!Array.isArray(proof) || proof.length === 0 || proof.length > 32) return undefined;
  let h = leafHash(cid);
  for (const p of proof) {
    if (typeof p !== "string" || p.length !== 44 || (p[0] !== "l" && p[0] !== "r")) return undefined;
    const sib = Buffer.from(p.slice(1), "base64url");
    if (sib.length !== 32) return undefined;
    h = p[0] === "l" ? nodeHash(sib, h) : nodeHash(h, sib);
  }
  return Buffer.from(`${BATCH_PREFIX}${h.toString("base64url")}`, "utf8");
}

/** Merkle root and per-leaf proofs of a batch of CIDs (an odd node at a level moves up unpaired). */
export function batchProofs(cids: string[]): { root: Buffer; proofs: string[][] } {
  let level = cids.map(leafHash);
  // For each leaf: the index of its ancestor in the current level.
  const at = cids.map((_, i) => i);
  const proofs: string[][] = cids.map(() => []);
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? nodeHash(level[i]!, level[i + 1]!) : level[i]!);
    for (let leaf = 0; leaf < cids.length; leaf++) {
      const i = at[leaf]!;
      const sib = i % 2 === 0 ? i + 1 : i - 1;
      if (sib < level.length) proofs[leaf]!.push(`${i % 2 === 0 ? "r" : "l"}${level[sib]!.toString("base64url")}`);
      at[leaf] = i >> 1;
    }
    level = next;
  }
  return { root: level[0]!, proofs };
}

/**
 * Collects the seals asked for in one turn of the event loop (at most `max`) and signs them together.
 * `seal` resolves once the batch is signed (after the current I/O callbacks: setImmediate).
 */
export class BatchSealer {
  private pending: { cid: string; resolve: (s: EventSeal) => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;
  /** Signatures made and events sealed, for the bench. */
  signatures = 0;
  sealed = 0;

  constructor(
    private readonly signer: EnvelopeSigner,
    private readonly max = 32,
  ) {}

  get kid(): string {
    return this.signer.kid;
  }

  seal(cid: string): Promise<EventSeal> {
    return new Promise((resolve, reject) => {
      this.pending.push({ cid, resolve, reject });
      if (this.pending.length >= this.max) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending.splice(0, this.max);
    if (this.pending.length && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    if (batch.length === 0) return;
    try {
      this.signatures++;
      this.sealed += batch.length;
      if (batch.length === 1) {
        const b = batch[0]!;
        b.resolve({ kid: this.signer.kid, sig: this.signer.sign(Buffer.from(b.cid, "utf8")) });
        return;
      }
      const { root, proofs } = batchProofs(batch.map((b) => b.cid));
      const sig = this.signer.sign(Buffer.from(`${BATCH_PREFIX}${root.toString("base64url")}`, "utf8"));
      batch.forEach((b, i) => b.resolve({ kid: this.signer.kid, sig, proof: proofs[i]! }));
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }
}
