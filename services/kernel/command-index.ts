import { createHash } from "node:crypto";

/**
 * Which event ids a stream holds, so a resent command (its event ids derive from its command id) is
 * recognised without reading the aggregate's history. Recent ids are kept exactly (with their stream
 * sequence and aggregate) in a bounded map; every id ever seen goes into a scalable Bloom filter, so an
 * old id answers "maybe" (then the caller checks the stream) and an unseen one "no" with certainty.
 */
export type IndexAnswer = { seq: number; key: string } | "maybe" | undefined;

class Bloom {
  readonly bits: Uint32Array;
  count = 0;

  constructor(
    readonly m: number,
    readonly k: number,
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

/**
 * The index as snapshot records (JSON values, projection-snapshot.ts): the filters' shapes, their bits in
 * base64 slices, then the exact part oldest first, with aggregate keys written once and referred to by number.
 */
export type CommandIndexRecord =
  | ["filters", [m: number, k: number, count: number][]]
  | ["bits", filter: number, word: number, base64: string]
  | ["key", key: string]
  | ["recent", eventId: string, seq: number, key: number];

/** Bytes of filter bits per record: a multiple of 4 (whole words) and of 3 (base64 without padding). */
const BITS_PER_RECORD = 3 * 64 * 1024;

export class CommandIndex {
  private readonly recent = new Map<string, { seq: number; key: string }>();
  /** Filters of growing size: 20 bits and 7 hashes per id (~0.02% false positives each). */
  private filters: Bloom[] = [new Bloom(1 << 20, 7)];

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

  *records(): Generator<CommandIndexRecord> {
    yield ["filters", this.filters.map((f) => [f.m, f.k, f.count])];
    for (const [i, f] of this.filters.entries()) {
      const bytes = Buffer.from(f.bits.buffer, f.bits.byteOffset, f.bits.byteLength);
      for (let at = 0; at < bytes.length; at += BITS_PER_RECORD) yield ["bits", i, at / 4, bytes.subarray(at, at + BITS_PER_RECORD).toString("base64")];
    }
    const keys = new Map<string, number>();
    for (const [id, { seq, key }] of this.recent) {
      let n = keys.get(key);
      if (n === undefined) {
        keys.set(key, (n = keys.size));
        yield ["key", key];
      }
      yield ["recent", id, seq, n];
    }
  }

  /** Takes back one record of `records()` (in order) into an empty index; false when it is not one. */
  restore(r: unknown[], keys: string[]): boolean {
    switch (r[0]) {
      case "filters": {
        const shapes = r[1] as [number, number, number][];
        this.filters = shapes.map(([m, k, count]) => Object.assign(new Bloom(m, k), { count }));
        return true;
      }
      case "bits": {
        const f = this.filters[r[1] as number];
        if (!f) return false;
        const bytes = Buffer.from(r[3] as string, "base64");
        new Uint8Array(f.bits.buffer, f.bits.byteOffset, f.bits.byteLength).set(bytes, (r[2] as number) * 4);
        return true;
      }
      case "key":
        keys.push(r[1] as string);
        return true;
      case "recent": {
        const key = keys[r[3] as number];
        if (key === undefined) return false;
        if (this.recent.size >= this.maxRecent) this.recent.delete(this.recent.keys().next().value!);
        this.recent.set(r[1] as string, { seq: r[2] as number, key });
        return true;
      }
      default:
        return false;
    }
  }

  /** Memory held, roughly, for metrics. */
  get size(): { recent: number; bloomBytes: number } {
    return { recent: this.recent.size, bloomBytes: this.filters.reduce((n, f) => n + f.m / 8, 0) };
  }
}
