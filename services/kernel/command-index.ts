import { createHash } from "node:crypto";

/**
 * Which event ids a stream holds, so a resent command (its event ids derive from its command id) is
 * recognised without reading the aggregate's history. Recent ids are kept exactly (with their stream
 * sequence and aggregate) in a bounded map; every id ever seen goes into a scalable Bloom filter, so an
 * old id answers "maybe" (then the caller checks the stream) and an unseen one "no" with certainty.
 */
export type IndexAnswer = { seq: number; key: string } | "maybe" | undefined;

class Bloom {
  private readonly bits: Uint32Array;
  count = 0;

  constructor(
    readonly m: number,
    private readonly k: number,
  ) {
    this.bits = new Uint32Array(Math.ceil(m / 32));
  }

  /** Double hashing over two 32-bit halves of the id's SHA-256 (ids are UUIDs: one hash is cheap enough). */
  private positions(id: string): number[] {
    const h = createHash("sha256").update(id).digest();
    const a = h.readUInt32LE(0);
    const b = (h.readUInt32LE(4) | 1) >>> 0;
    const out: number[] = [];
    for (let i = 0; i < this.k; i++) out.push((a + i * b) % this.m);
    return out;
  }

  add(id: string): void {
    for (const p of this.positions(id)) this.bits[p >>> 5]! |= 1 << (p & 31);
    this.count++;
  }

  has(id: string): boolean {
    return this.positions(id).every((p) => (this.bits[p >>> 5]! & (1 << (p & 31))) !== 0);
  }
}

export class CommandIndex {
  private readonly recent = new Map<string, { seq: number; key: string }>();
  /** Filters of growing size: 20 bits and 7 hashes per id (~0.02% false positives each). */
  private readonly filters: Bloom[] = [new Bloom(1 << 20, 7)];

  constructor(private readonly maxRecent = 200_000) {}

  add(eventId: string, seq: number, key: string): void {
    if (this.recent.size >= this.maxRecent) {
      let n = this.maxRecent >> 3;
      for (const k of this.recent.keys()) {
        this.recent.delete(k);
        if (--n <= 0) break;
      }
    }
    this.recent.set(eventId, { seq, key });
    let f = this.filters[this.filters.length - 1]!;
    if (f.count >= f.m / 20) this.filters.push((f = new Bloom(f.m * 2, 7)));
    f.add(eventId);
  }

  lookup(eventId: string): IndexAnswer {
    const hit = this.recent.get(eventId);
    if (hit) return hit;
    return this.filters.some((f) => f.has(eventId)) ? "maybe" : undefined;
  }

  /** Memory held, roughly, for metrics. */
  get size(): { recent: number; bloomBytes: number } {
    return { recent: this.recent.size, bloomBytes: this.filters.reduce((n, f) => n + f.m / 8, 0) };
  }
}
