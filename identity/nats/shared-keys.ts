import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { KvWatchInclude, type KV, type KvEntry, type KvWatchEntry } from "@nats-io/kv";
import { openBucket } from "../../services/kernel/buckets.js";
import { followKv, type KvFollowLog } from "../../services/kernel/kv-follow.js";
import type { Sealer } from "../../services/kernel/seal.js";
import { nkeyFromSeed } from "./jwt-encode.js";
import { KeyStore } from "./keystore.js";

/** The NATS account and signing-key seeds the accounts context makes online, sealed, for every instance. */
export const NATS_KEYS_BUCKET = "realm_identity_nats_keys";
const context = (key: string) => `${NATS_KEYS_BUCKET}/${key}`;

/**
 * The accounts context's key store when several instances serve one realm (docs/ARCHITECTURE.md "Stateless
 * instances"): the seed files stay the store each instance signs from (`KeyStore`, read synchronously), and
 * every seed is also kept sealed in KV (`k.<public key>`, sealed with the realm's seal key, which every
 * instance holds), so that an account or signing key made by one instance is held by the others within
 * milliseconds. At open, seeds the files hold and the bucket lacks (keys made before the bucket, or by the
 * bootstrap) are added to it; seeds the bucket holds are written as files; then the bucket is followed.
 */
export class SharedKeyStore extends KeyStore {
  private stopWatch: (() => void) | undefined;
  private writes: Promise<unknown>[] = [];

  private constructor(
    dir: string,
    private readonly kv: KV,
    private readonly sealer: Sealer,
    private readonly onError: (err: unknown) => void,
  ) {
    super(dir);
  }

  static async open(nc: NatsConnection, dir: string, sealer: Sealer, opts: { replicas?: number | undefined; log?: KvFollowLog | undefined; onError?: (err: unknown) => void } = {}): Promise<SharedKeyStore> {
    const kv = await openBucket(nc, NATS_KEYS_BUCKET, { history: 1, replicas: opts.replicas ?? 1 });
    const store = new SharedKeyStore(dir, kv, sealer, opts.onError ?? (() => undefined));
    const shared = new Set<string>();
    for await (const name of await kv.keys("k.>")) {
      shared.add(name.slice(2));
      const e = await kv.get(name);
      if (e) store.take(e);
    }
    const keysDir = join(dir, "keys");
    for (const f of existsSync(keysDir) ? readdirSync(keysDir) : []) {
      const pub = /^([A-Z0-9]+)\.nk$/.exec(f)?.[1];
      if (pub && !shared.has(pub)) store.share(pub, readFileSync(join(keysDir, f), "utf8").trim());
    }
    await store.flush();
    store.stopWatch = await followKv(
      NATS_KEYS_BUCKET,
      (after, reopen) => kv.watch(after !== undefined ? { key: "k.>", include: KvWatchInclude.UpdatesOnly, resumeFromRevision: after + 1 } : { key: "k.>", include: reopen ? KvWatchInclude.LastValue : KvWatchInclude.UpdatesOnly }),
      (e) => store.take(e),
      opts.log,
    );
    return store;
  }

  /** Written as a file at once (this instance signs with it now) and to the bucket (`flush` awaits that). */
  override put(publicKey: string, seed: string): void {
    super.put(publicKey, seed);
    this.share(publicKey, seed);
  }

  /** Waits until every seed put so far is in the bucket (a command answers only once the others can sign). */
  override async flush(): Promise<void> {
    const w = this.writes;
    this.writes = [];
    await Promise.all(w);
  }

  override close(): void {
    this.stopWatch?.();
  }

  private share(publicKey: string, seed: string): void {
    this.writes.push(this.kv.put(`k.${publicKey}`, this.sealer.seal(seed, context(`k.${publicKey}`))));
  }

  /** A seed another instance shared: kept as a file when it opens under this realm's seal key and is the key its name says. */
  private take(e: KvEntry | KvWatchEntry): void {
    if (e.operation !== "PUT") return;
    const publicKey = e.key.slice(2);
    if (this.has(publicKey)) return;
    try {
      const seed = this.sealer.openString(e.string(), context(e.key));
      if (nkeyFromSeed(seed, { cache: false }).publicKey !== publicKey) throw new Error(`${NATS_KEYS_BUCKET}: ${e.key} holds another key`);
      super.put(publicKey, seed);
    } catch (err) {
      this.onError(err);
    }
  }
}
