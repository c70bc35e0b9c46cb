import type { KV } from "@nats-io/kv";
import { openBucket, writeSubject } from "../../services/kernel/buckets.js";

import type { NatsConnection } from "@nats-io/nats-core";
import type { Adapter, AdapterPayload } from "oidc-provider";
import { Sealer } from "../../services/kernel/seal.js";
import { CAS_HISTORY, KvGuard } from "../../services/kernel/kv-guard.js";
import { AckedPublisher } from "../../services/kernel/acked-publish.js";

/**
 * oidc-provider adapter over the JetStream KV bucket `realm_identity_oidc`, so every realm replica can
 * serve every step of a flow (a code issued by one, redeemed at another). Entries carry their own expiry
 * (`exp`, epoch seconds) checked on every read; the bucket's max age (the longest TTL) lets the server drop
 * them for good. nats-server 2.9 has no per-message TTL, hence the field.
 *
 * For access tokens, refresh tokens, codes and sessions the id IS the bearer secret, so nothing in the
 * bucket may reveal it: keys hold `Sealer.tokenKey(id)` (SHA-256, base64url; ids are high-entropy, so the
 * hash cannot be reversed), and every value (artefact or index entry, both of which carry the id) is sealed
 * with the context `realm_identity_oidc/<key>`. A reader of the JetStream store can neither replay a token
 * nor move a sealed entry under another key. Lookups hash what they are given, so they find the same key.
 *
 * Keys: `<Model>.<tokenKey(id)>`, `uid.<tokenKey(uid)>` and `usercode.<tokenKey(userCode)>` (lookups, holding
 * the id), `grant.<tokenKey(grantId)>.<Model>.<tokenKey(id)>` (what revokeByGrantId deletes).
 */
export const OIDC_BUCKET = "realm_identity_oidc";
export const OIDC_BUCKET_MAX_AGE_MS = 15 * 24 * 3600_000;

interface Stored {
  payload: AdapterPayload;
  exp: number | null;
}

export async function openOidcBucket(nc: NatsConnection, replicas = 1): Promise<KV> {
  return openBucket(nc, OIDC_BUCKET, { history: CAS_HISTORY, replicas, ttl: OIDC_BUCKET_MAX_AGE_MS });
}

/** Client metadata comes from the directory (clients registered by command), never from this bucket. */
export type ClientSource = (id: string) => AdapterPayload | undefined;

const tk = Sealer.tokenKey;

export function kvAdapter(kv: KV, clients: ClientSource, sealer: Sealer, nc: NatsConnection): new (name: string) => Adapter {
  const guard = new KvGuard(nc, kv, OIDC_BUCKET);
  const now = () => Math.floor(Date.now() / 1000);
  const context = (key: string) => `${OIDC_BUCKET}/${key}`;

  // A put is a JetStream publish to the bucket's subject; the shared publisher sends the puts of one event
  // loop turn in one socket write and skips nats.js's per-request setup (the token endpoint's hot path).
  const publisher = new AckedPublisher(nc);
  const write = (key: string, stored: Stored) => publisher.publish(writeSubject(kv, key), sealer.seal(JSON.stringify(stored), context(key)));

  async function read(key: string): Promise<{ stored: Stored; revision: number } | undefined> {
    const e = await kv.get(key);
    if (!e || e.operation !== "PUT") return undefined;
    const stored = JSON.parse(sealer.openString(e.string(), context(key))) as Stored;
    if (stored.exp !== null && stored.exp <= now()) return undefined;
    return { stored, revision: e.revision };
  }

  return class KvAdapter implements Adapter {
    constructor(private readonly name: string) {}

    private key(id: string): string {
      return `${this.name}.${tk(id)}`;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const exp = expiresIn ? now() + expiresIn : null;
      const key = this.key(id);
      await write(key, { payload, exp });
      const index: Stored = { payload: { id } as AdapterPayload, exp };
      if (payload.grantId) await write(`grant.${tk(payload.grantId)}.${key}`, index);
      if (payload.uid) await write(`uid.${tk(payload.uid)}`, index);
      if (payload.userCode) await write(`usercode.${tk(payload.userCode)}`, index);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.name === "Client") return clients(id);
      return (await read(this.key(id)))?.stored.payload;
    }

    private async findVia(indexKey: string): Promise<AdapterPayload | undefined> {
      const ix = await read(indexKey);
      const id = ix?.stored.payload.id;
      return typeof id === "string" ? this.find(id) : undefined;
    }

    findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.findVia(`uid.${tk(uid)}`);
    }

    findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.findVia(`usercode.${tk(userCode)}`);
    }

    /** Compare-and-set on the revision read: two replicas redeeming one code cannot both succeed (kv-guard.ts). */
    async consume(id: string): Promise<void> {
      const key = this.key(id);
      const r = await read(key);
      if (!r) return;
      r.stored.payload.consumed = now();
      await guard.putIfRevision(key, sealer.seal(JSON.stringify(r.stored), context(key)), r.revision);
    }

    async destroy(id: string): Promise<void> {
      await kv.delete(this.key(id));
    }

    /** The grant index keys end in the artefact's own key, so no index entry needs to be opened here. */
    async revokeByGrantId(grantId: string): Promise<void> {
      const prefix = `grant.${tk(grantId)}`;
      const keys = await kv.keys(`${prefix}.>`);
      const doomed: string[] = [];
      for await (const k of keys) doomed.push(k);
      for (const k of doomed) {
        await kv.delete(k.slice(prefix.length + 1));
        await kv.delete(k);
      }
    }
  };
}
