import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { openBucket } from "../services/kernel/buckets.js";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { KvWatchInclude, type KV, type KvEntry, type KvWatchEntry } from "@nats-io/kv";
import { RealmError } from "../services/kernel/errors.js";
import type { Sealer } from "../services/kernel/seal.js";
import { followKv, type KvFollowLog } from "../services/kernel/kv-follow.js";
import { privateKeyFromPem, privateKeyPem, spkiDer } from "./x509/keys.js";

import { PKI_KEYS_BUCKET } from "./contract.js";
export { PKI_KEYS_BUCKET };

/** Where an older realm kept the keys: one PEM file per key in the PKI data dir (moved into the bucket at start). */
const LEGACY_FILE = /^([0-9a-f]{64})\.key\.pem$/;

const keyName = (sha: string) => `k.${sha}`;
const context = (name: string) => `${PKI_KEYS_BUCKET}/${name}`;

/**
 * Online intermediate keys, shared by every PKI instance of the realm: each is a PEM sealed with the realm's
 * seal key (AES-256-GCM, bound to its key name) in the KV bucket `realm_pki_keys`, named by the SHA-256 of
 * its public key. Every instance holds them all in memory (an issuer has one or two) and follows the bucket,
 * so an intermediate prepared through one instance signs at all. Only intermediate keys live here: the root
 * key never reaches an online service. A reader of the JetStream store sees sealed bytes only.
 */
export class IssuerKeyStore {
  private readonly cache = new Map<string, KeyObject>();
  private readonly waiting = new Map<string, (() => void)[]>();
  private stopWatch: (() => void) | undefined;

  private constructor(
    private readonly kv: KV,
    private readonly sealer: Sealer,
  ) {}

  /**
   * Opens the bucket, reads every key, moves keys an older realm kept as files in `legacyDir` into it (the
   * files stay where they are), and follows keys other instances add.
   */
  static async open(nc: NatsConnection, sealer: Sealer, opts: { legacyDir?: string | undefined; replicas?: number | undefined; onError?: (err: unknown) => void; log?: KvFollowLog | undefined } = {}): Promise<IssuerKeyStore> {
    const kv = await openBucket(nc, PKI_KEYS_BUCKET, { history: 1, replicas: opts.replicas ?? 1 });
    const store = new IssuerKeyStore(kv, sealer);
    for await (const name of await kv.keys("k.>")) {
      const e = await kv.get(name);
      if (e) store.take(e, opts.onError);
    }
    if (opts.legacyDir && existsSync(opts.legacyDir)) {
      for (const f of readdirSync(opts.legacyDir)) {
        const m = LEGACY_FILE.exec(f);
        if (!m || store.cache.has(m[1]!)) continue;
        await store.save(privateKeyFromPem(readFileSync(join(opts.legacyDir, f), "utf8")));
      }
    }
    // Reopened after an outage (followKv): from the revision after the last one seen, or with every current
    // key again when none was (take skips the keys it holds).
    store.stopWatch = await followKv(
      PKI_KEYS_BUCKET,
      (after, reopen) => kv.watch(after !== undefined ? { key: "k.>", include: KvWatchInclude.UpdatesOnly, resumeFromRevision: after + 1 } : { key: "k.>", include: reopen ? KvWatchInclude.LastValue : KvWatchInclude.UpdatesOnly }),
      (e) => store.take(e, opts.onError),
      opts.log,
    );
    return store;
  }

  private take(e: KvEntry | KvWatchEntry, onError?: (err: unknown) => void): void {
    if (e.operation !== "PUT") return;
    const sha = e.key.slice(2);
    if (this.cache.has(sha)) return;
    try {
      const key = privateKeyFromPem(this.sealer.openString(e.string(), context(e.key)));
      if (publicKeySha256(createPublicKey(key)) !== sha) throw new RealmError("INTEGRITY", `${PKI_KEYS_BUCKET}: ${e.key} holds another key`);
      this.cache.set(sha, key);
      for (const done of this.waiting.get(sha) ?? []) done();
      this.waiting.delete(sha);
    } catch (err) {
      // Sealed under another seal key, or moved under another name: not a key of this realm's PKI.
      onError?.(err);
    }
  }

  /** Keeps a new intermediate key (sealed in the bucket, every instance sees it); returns its public key's SHA-256. */
  async save(key: KeyObject): Promise<string> {
    const sha = publicKeySha256(createPublicKey(key));
    if (this.cache.has(sha)) return sha;
    const name = keyName(sha);
    try {
      await this.kv.create(name, this.sealer.seal(privateKeyPem(key), context(name)));
    } catch (err) {
      // Already there (the same key saved by another instance, or a retry): it is the same key by its name.
      if (!(await this.kv.get(name))) throw err;
    }
    this.cache.set(sha, key);
    return sha;
  }

  /**
   * Resolves once the key is here: at once when it is, else when the bucket delivers it (another instance
   * saved it a moment ago), or after `ms` (then `load` says UNAVAILABLE).
   */
  wait(publicKeySha256: string, ms = 5_000): Promise<void> {
    if (this.cache.has(publicKeySha256)) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      const list = this.waiting.get(publicKeySha256) ?? [];
      list.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.waiting.set(publicKeySha256, list);
    });
  }

  load(publicKeySha256: string): KeyObject {
    const hit = this.cache.get(publicKeySha256);
    if (hit) return hit;
    throw new RealmError("UNAVAILABLE", `the intermediate key ${publicKeySha256.slice(0, 16)} is not in ${PKI_KEYS_BUCKET} as this instance reads it (yet)`);
  }

  stop(): void {
    this.stopWatch?.();
  }
}

export const publicKeySha256 = (pub: KeyObject): string => createHash("sha256").update(spkiDer(pub)).digest("hex");
