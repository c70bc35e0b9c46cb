import { createHash, randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import { Kvm, type KV } from "@nats-io/kv";
import type { Sealer } from "../services/kernel/seal.js";
import { DNS_TSIG_BUCKET } from "./contract.js";

/**
 * The secrets of TSIG keys, sealed (AES-256-GCM with the realm's seal key, bound to bucket and key) in the KV
 * bucket `realm_dns_tsig`, one entry per key version: `k.<base64url name>.<fingerprint>`. Only the dns
 * context's identity reads or writes it. A version's entry is written before its TsigKeyCreated event, so a
 * key the events know has its secret; a retried create writes an entry no event names (never used).
 */
export class TsigSecrets {
  private readonly cache = new Map<string, Buffer>();

  private constructor(
    private readonly kv: KV,
    private readonly sealer: Sealer,
  ) {}

  static async open(nc: NatsConnection, sealer: Sealer, replicas = 1): Promise<TsigSecrets> {
    const kv = await new Kvm(nc).create(DNS_TSIG_BUCKET, { history: 1, replicas });
    return new TsigSecrets(kv, sealer);
  }

  /** A fresh 256-bit secret and its fingerprint. */
  static generate(): { secret: Buffer; fingerprint: string } {
    const secret = randomBytes(32);
    return { secret, fingerprint: fingerprintOf(secret) };
  }

  private static keyOf(name: string, fingerprint: string): string {
    return `k.${Buffer.from(name, "utf8").toString("base64url")}.${fingerprint}`;
  }

  async put(name: string, fingerprint: string, secret: Buffer): Promise<void> {
    const key = TsigSecrets.keyOf(name, fingerprint);
    await this.kv.put(key, this.sealer.seal(secret, `${DNS_TSIG_BUCKET}/${key}`));
  }

  /** The secret of a key version, or null when the bucket has none (purged at revocation). */
  async get(name: string, fingerprint: string): Promise<Buffer | null> {
    const key = TsigSecrets.keyOf(name, fingerprint);
    const hit = this.cache.get(key);
    if (hit) return hit;
    const e = await this.kv.get(key);
    if (!e || e.operation !== "PUT") return null;
    const secret = this.sealer.open(e.string(), `${DNS_TSIG_BUCKET}/${key}`);
    if (fingerprintOf(secret) !== fingerprint) return null;
    this.cache.set(key, secret);
    return secret;
  }

  /** Forgets a key version's secret for good (its entry purged). */
  async purge(name: string, fingerprint: string): Promise<void> {
    const key = TsigSecrets.keyOf(name, fingerprint);
    this.cache.delete(key);
    await this.kv.purge(key);
  }
}

export function fingerprintOf(secret: Buffer): string {
  return createHash("sha256").update(secret).digest("hex").slice(0, 32);
}
