import type { KeyObject } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import { Kvm, type KV } from "@nats-io/kv";
import { RealmError } from "../../services/kernel/errors.js";
import type { Sealer } from "../../services/kernel/seal.js";
import { DNS_DNSSEC_BUCKET } from "../contract.js";
import { keyFromDer, keyId, keyToDer, publicKeyField } from "./keys.js";

/**
 * The private halves of the zones' DNSSEC keys, as the PKI keeps its online intermediate keys
 * (pki/keystore.ts): PKCS#8 sealed with the realm's seal key (AES-256-GCM, bound to bucket and entry name)
 * in the KV bucket `realm_dns_dnssec`, one entry per key, `k.<base64url zone>.<key id>`. A key is written
 * here before the event that names it; every key is read into memory when the dns context starts (answers
 * are signed synchronously), and a key missing from memory is read on demand. Only the dns context's
 * identity reads or writes the bucket.
 */
export class DnssecKeyStore {
  private readonly cache = new Map<string, KeyObject>();
  private readonly loading = new Set<string>();

  private constructor(
    private readonly kv: KV,
    private readonly sealer: Sealer,
  ) {}

  static async open(nc: NatsConnection, sealer: Sealer, replicas = 1): Promise<DnssecKeyStore> {
    const kv = await new Kvm(nc).create(DNS_DNSSEC_BUCKET, { history: 1, replicas });
    const store = new DnssecKeyStore(kv, sealer);
    for await (const name of await kv.keys("k.>")) {
      const e = await kv.get(name);
      if (e?.operation === "PUT") store.take(name, e.string());
    }
    return store;
  }

  private static entry(zone: string, id: string): string {
    return `k.${Buffer.from(zone, "utf8").toString("base64url")}.${id}`;
  }

  private take(name: string, sealed: string): void {
    try {
      const key = keyFromDer(this.sealer.open(sealed, `${DNS_DNSSEC_BUCKET}/${name}`));
      // The entry's name says which key it holds: a key moved under another name is not used.
      if (name.endsWith(`.${keyId(publicKeyField(key))}`)) this.cache.set(name, key);
    } catch {
      // Sealed under another seal key: not a key of this realm.
    }
  }

  /** Seals and keeps a new key of a zone; returns its id. */
  async save(zone: string, key: KeyObject): Promise<string> {
    const id = keyId(publicKeyField(key));
    const name = DnssecKeyStore.entry(zone, id);
    await this.kv.put(name, this.sealer.seal(keyToDer(key), `${DNS_DNSSEC_BUCKET}/${name}`));
    this.cache.set(name, key);
    return id;
  }

  /** The private key, or undefined when this instance has not read it (a read is started: the next call may have it). */
  get(zone: string, id: string): KeyObject | undefined {
    const name = DnssecKeyStore.entry(zone, id);
    const hit = this.cache.get(name);
    if (hit || this.loading.has(name)) return hit;
    this.loading.add(name);
    void this.kv
      .get(name)
      .then((e) => {
        if (e?.operation === "PUT") this.take(name, e.string());
      })
      .catch(() => undefined)
      .finally(() => this.loading.delete(name));
    return undefined;
  }

  /** Waits until a key is in memory (after `get` started a read), or throws UNAVAILABLE. */
  async require(zone: string, id: string): Promise<KeyObject> {
    for (let i = 0; i < 50; i++) {
      const k = this.get(zone, id);
      if (k) return k;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new RealmError("UNAVAILABLE", `the DNSSEC key ${id} of ${zone} is not in ${DNS_DNSSEC_BUCKET}`);
  }

  /** Forgets a removed key for good. */
  async purge(zone: string, id: string): Promise<void> {
    const name = DnssecKeyStore.entry(zone, id);
    this.cache.delete(name);
    await this.kv.purge(name);
  }
}
