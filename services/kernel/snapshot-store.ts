import type { NatsConnection } from "@nats-io/nats-core";
import { openBucket, bindBucket } from "./buckets.js";
import { JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { type KV } from "@nats-io/kv";

/**
 * Where projection snapshots are kept: one KV bucket per context, `realm_snapshots_<context>`, that only
 * that context's NATS identity may write (services/cli/identities.ts) and the identities that read the
 * context's stream may read. Signatures (projection-snapshot.ts) make a snapshot trustworthy; the bucket's
 * permissions only keep others from filling or wiping it.
 *
 * A projection's snapshots live under one key prefix `<stream>.<projection>.v<version>.f<format>` (a new
 * projection or format version looks elsewhere, and so rebuilds from zero) in two slots, `a` and `b`: the
 * newest snapshot and the one before it. A new snapshot overwrites the older slot: its manifest is deleted
 * first, then the chunks `<slot>.c<n>` are put, then the manifest `<slot>.m`; chunks the slot had beyond
 * the new count are deleted. The bucket keeps one value per key, so storage stays at two snapshots (and a
 * few delete markers), and a writer that dies half-way leaves the other slot intact.
 */
export const snapshotBucket = (context: string): string => `realm_snapshots_${context}`;
export const SNAPSHOT_SLOTS = ["a", "b"] as const;
export type SnapshotSlot = (typeof SNAPSHOT_SLOTS)[number];

const KEY_TOKEN = /^[A-Za-z0-9_-]+$/;

/** True when a name can be a token of a snapshot key (KV keys allow fewer characters than subjects). */
export const isSnapshotKeyToken = (s: string): boolean => KEY_TOKEN.test(s);

export class SnapshotStore {
  private constructor(
    readonly bucket: string,
    private readonly kv: KV,
  ) {}

  /**
   * The context's snapshot bucket. A writer creates it when it is missing (outside operator mode; `realm
   * up` provisions it); a reader only looks (stream info), and gets undefined when there is none.
   */
  static async open(nc: NatsConnection, context: string, opts: { create: boolean; replicas?: number | undefined }): Promise<SnapshotStore | undefined> {
    const bucket = snapshotBucket(context);
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(`KV_${bucket}`);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === 10059 /* stream not found */)) throw err;
      if (!opts.create) return undefined;
      return new SnapshotStore(bucket, await openBucket(nc, bucket, { history: 1, replicas: opts.replicas ?? 1 }));
    }
    // Bound without another request: the bucket exists, and realm buckets are made with direct gets.
    return new SnapshotStore(bucket, await bindBucket(nc, bucket, { allow_direct: true }));
  }

  private async value(key: string): Promise<Uint8Array | undefined> {
    const e = await this.kv.get(key);
    return e && e.operation === "PUT" ? e.value : undefined;
  }

  manifest(prefix: string, slot: SnapshotSlot): Promise<Uint8Array | undefined> {
    return this.value(`${prefix}.${slot}.m`);
  }

  chunk(prefix: string, slot: SnapshotSlot, n: number): Promise<Uint8Array | undefined> {
    return this.value(`${prefix}.${slot}.c${n}`);
  }

  /** Invalidates a slot before its chunks are overwritten. */
  async clear(prefix: string, slot: SnapshotSlot): Promise<void> {
    await this.kv.delete(`${prefix}.${slot}.m`);
  }

  async putChunk(prefix: string, slot: SnapshotSlot, n: number, data: Uint8Array): Promise<void> {
    await this.kv.put(`${prefix}.${slot}.c${n}`, data);
  }

  async putManifest(prefix: string, slot: SnapshotSlot, data: Uint8Array): Promise<void> {
    await this.kv.put(`${prefix}.${slot}.m`, data);
  }

  /** Deletes chunks `from` .. `to - 1` of a slot (what an earlier, longer snapshot left there). */
  async dropChunks(prefix: string, slot: SnapshotSlot, from: number, to: number): Promise<void> {
    for (let n = from; n < to; n++) await this.kv.delete(`${prefix}.${slot}.c${n}`);
  }
}
